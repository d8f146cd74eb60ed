"""Installing envknit the ways README says, into fresh environments (needs PyPI for uv & co).

Each install runs README's own command line, from a copy of this checkout. The installed
command then answers ``--version`` and walks README's 30-second example offline (fixture wheels,
``UV_OFFLINE=1``, its own uv cache and ``ENVKNIT_HOME``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from envknit import __version__
from tests._docwalk import (
    README,
    ROOT,
    ShellLine,
    build_doc_wheels,
    doc_env,
    fenced_blocks,
    run_shell,
    shell_lines,
    walk,
)

pytestmark = pytest.mark.timeout(600)

# Each install builds envknit and its dependencies into a fresh environment (40-90 s here), so
# they run on one Python only, the machine's ``python3`` (3.11), as a newcomer would.
once = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11),
    reason="the install tests run once per suite, on CPython 3.11 (the machine's python3)",
)


def test_readme_lists_the_three_installs() -> None:
    lines = readme_install_lines()
    assert sorted(lines) == ["clone", "git", "tool"], lines
    assert all("./envknit" in lines[k].command for k in ("clone", "tool")), lines

_IGNORE = shutil.ignore_patterns(
    ".venvs", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


def readme_install_lines() -> dict[str, ShellLine]:
    """README's install commands: ``clone`` (pip, a path), ``git`` (pip, a URL), ``tool`` (uv)."""
    found: dict[str, ShellLine] = {}
    for block in fenced_blocks(README):
        for line in shell_lines(block) if block.lang == "sh" else []:
            if line.command.startswith("uv tool install"):
                found["tool"] = line
            elif line.command.startswith("pip install"):
                found["git" if "git+" in line.command else "clone"] = line
    return found


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """This checkout's files as README's ``./envknit`` (what a clone holds, build output aside)."""
    dest = tmp_path / "envknit"
    shutil.copytree(ROOT, dest, ignore=_IGNORE)
    return dest


def online_env(tmp_path: Path, bindir: Path) -> dict[str, str]:
    """The environment for an install: the index reachable, ``bindir`` first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
               UV_CACHE_DIR=str(tmp_path / "uv-cache-install"), PIP_NO_INPUT="1")
    return env


def fresh_venv(path: Path) -> Path:
    """A new virtual environment of the running Python; returns its bin directory."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    return path / "bin"


def assert_version(envknit: Path) -> None:
    out = subprocess.run([str(envknit), "--version"], capture_output=True, text=True,
                         cwd=envknit.parent, timeout=60, check=True).stdout
    assert out.strip() == f"envknit {__version__}"


@pytest.mark.network
@pytest.mark.slow
@once
def test_pip_install_from_a_clone_then_the_example_offline(
    clone: Path, tmp_path: Path, envknit_home: Path
) -> None:
    bindir = fresh_venv(tmp_path / "venv")
    run_shell(readme_install_lines()["clone"], cwd=tmp_path,
              env=online_env(tmp_path, bindir), timeout=540)
    assert_version(bindir / "envknit")
    # the distribution is envknit-uv (SPDX licence), and not editable: the package is in the
    # environment, not in the clone
    probe = ("import envknit, importlib.metadata as m; d = m.metadata('envknit-uv'); "
             "print(d['Version'], d['License-Expression'], envknit.__file__)")
    out = subprocess.run([str(bindir / "python"), "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60, check=True).stdout.split()
    assert out[:2] == [__version__, "MIT"], out
    assert out[2].startswith(str(tmp_path / "venv")), out

    project = tmp_path / "project"
    project.mkdir()
    env = doc_env(build_doc_wheels(tmp_path / "wheels"), tmp_path, envknit_home, bindir)
    ran = walk(README, python=bindir / "python", cwd=project, env=env)
    assert len(ran) >= (7 if sys.version_info >= (3, 12) else 6), ran


@pytest.mark.network
@pytest.mark.slow
@once
def test_pip_install_from_a_git_url(clone: Path, tmp_path: Path) -> None:
    git = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "snapshot"]):
        subprocess.run(["git", *args], cwd=clone, env=git, check=True, timeout=60)
    line = readme_install_lines()["git"]
    assert "<repository URL>" in line.command
    url_line = ShellLine(command=line.command.replace("<repository URL>", f"file://{clone}"),
                         expected=None, where=line.where)
    bindir = fresh_venv(tmp_path / "venv")
    run_shell(url_line, cwd=tmp_path, env=online_env(tmp_path, bindir), timeout=540)
    assert_version(bindir / "envknit")


@pytest.mark.network
@pytest.mark.slow
@once
def test_uv_tool_install(clone: Path, tmp_path: Path) -> None:
    tools, toolbin = tmp_path / "tools", tmp_path / "toolbin"
    env = online_env(tmp_path, Path(sys.executable).parent)  # uv comes with envknit
    env.update(UV_TOOL_DIR=str(tools), UV_TOOL_BIN_DIR=str(toolbin),
               UV_PYTHON_DOWNLOADS="never", UV_PYTHON=sys.executable)
    run_shell(readme_install_lines()["tool"], cwd=tmp_path, env=env, timeout=540)
    assert_version(toolbin / "envknit")
