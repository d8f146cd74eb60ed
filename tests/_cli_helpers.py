"""Helpers for the CLI tests: a folder of fixture wheels and running the real ``envknit``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests._builders import build_wheel, package_files

__all__ = [
    "ENVKNIT",
    "PY",
    "build_fixture_wheels",
    "cli",
    "make_project",
    "make_small_project",
    "uv_env",
]

ENVKNIT = Path(sys.executable).parent / "envknit"
PY = "{}.{}".format(*sys.version_info[:2])

_TOOL_MAIN = "import sys\n\ndef main():\n    print('tool', sys.version_info[:2], sys.argv[1:])\n"


def build_fixture_wheels(dest: Path) -> Path:
    """alpha 1.0 -> beta==1.0, alpha 2.0 -> beta>=2, beta 1.0/2.0, tool 1.0 (console script)."""
    build_wheel(dest, "beta", "1.0", package_files("beta", "1.0"))
    build_wheel(dest, "beta", "2.0", package_files("beta", "2.0"))
    build_wheel(dest, "alpha", "1.0", package_files("alpha", "1.0"), requires=["beta==1.0"])
    build_wheel(dest, "alpha", "2.0", package_files("alpha", "2.0"), requires=["beta>=2"])
    tool = {
        **package_files("tool", "1.0", {"cli.py": _TOOL_MAIN}),
        "tool-1.0.dist-info/entry_points.txt": "[console_scripts]\ntool = tool.cli:main\n",
    }
    build_wheel(dest, "tool", "1.0", tool)
    build_wheel(dest, "gamma", "1.0", package_files("gamma", "1.0"))
    return dest


def uv_env(wheels: Path, cache: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the real CLI: our ENVKNIT_HOME, uv pointed at ``wheels`` only."""
    env = dict(os.environ)
    env.update(
        UV_FIND_LINKS=str(wheels),
        UV_CACHE_DIR=str(cache),
        UV_OFFLINE="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("VIRTUAL_ENV", None)
    env.update(extra or {})
    return env


# what a successful command may write to stderr (progress and summaries), line by line; any
# other line (a warning, a traceback) fails the test, and the other commands write nothing there
_PROGRESS = {
    "lock": re.compile(r"resolving \S+ \.\.\.|note: \S+: no wheel for Python \S+ on this .*"),
    "install": re.compile(
        r"\S+: \d+ package\(s\) for Python \S+ \(.*\)|  installing \d+ package\(s\) with uv|"
        r"  \[\d+/\d+\] installed \S+ \S+|  (\.\.\. still )?building .* from source .*|"
        r"  built .* from source in .*"
    ),
    "verify": re.compile(r"\S+: \d+ entr(y|ies) checked, OK"),
    "store": re.compile(r"\d+ entr(y|ies), .* in .*"),
    "export": re.compile(r"wrote .* \(\d+ packages?, environment '\S+'\)"),
}


def cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str],
    expect: int | None = 0,
    timeout: float = 120,
    stderr: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``envknit ARGS`` in ``cwd``; assert the exit status when ``expect`` is not None.

    On success, stderr must be ``stderr`` if given, else empty (progress lines only for the
    commands of ``_PROGRESS``).
    """
    proc = subprocess.run(
        [str(ENVKNIT), *args], cwd=cwd, env=dict(env), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    if expect is not None:
        assert proc.returncode == expect, (
            f"envknit {' '.join(args)} -> {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    if expect == 0 and stderr is not None:
        assert proc.stderr == stderr
    elif expect == 0 and args[0] in _PROGRESS:
        pattern = _PROGRESS[args[0]]
        extra = [ln for ln in proc.stderr.splitlines() if not pattern.fullmatch(ln)]
        assert extra == [], proc.stderr
    elif expect == 0:
        assert proc.stderr == "", proc.stderr
    return proc


def _lock_install(root: Path, env: Mapping[str, str], lock: bool, install: bool) -> Path:
    if lock or install:
        cli("lock", cwd=root, env=env)
    if install:
        cli("install", cwd=root, env=env)
    return root


def make_project(
    root: Path, env: Mapping[str, str], *, lock: bool = False, install: bool = False
) -> Path:
    """A project: default = alpha==1.0 (beta 1.0); new = alpha==2.0 (beta 2.0) + dev tool.

    ``lock`` / ``install`` also run those commands (``install`` implies ``lock``).
    """
    root.mkdir(parents=True, exist_ok=True)
    cli("init", cwd=root, env=env)
    cli("add", "alpha==1.0", cwd=root, env=env)
    cli("add", "alpha==2.0", "--env", "new", cwd=root, env=env)
    cli("add", "tool", "--env", "new", "--dev", cwd=root, env=env)
    return _lock_install(root, env, lock, install)


def make_small_project(
    root: Path, env: Mapping[str, str], *requirements: str, install: bool = True
) -> Path:
    """``init`` in ``root``, ``add`` each requirement to 'default', ``lock``, then ``install``."""
    root.mkdir(parents=True, exist_ok=True)
    cli("init", cwd=root, env=env)
    for requirement in requirements:
        cli("add", requirement, cwd=root, env=env)
    return _lock_install(root, env, True, install)

