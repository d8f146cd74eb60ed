"""``envknit init / add / remove / lock`` end to end, through the real ``envknit`` executable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from envknit.lock import load_lock
from tests._cli_helpers import ENVKNIT, PY, cli, make_project

pytest_plugins = ("tests._cli_fixtures",)
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Path:
    return make_project(tmp_path / "proj", env)


def test_executable_exists() -> None:
    assert ENVKNIT.is_file(), "the envknit console script is installed next to the interpreter"


def test_init_writes_default_environment(tmp_path: Path, env: dict[str, str]) -> None:
    out = cli("init", cwd=tmp_path, env=env)
    assert "envknit.yaml" in out.stdout
    data = yaml.safe_load((tmp_path / "envknit.yaml").read_text())
    assert data == {
        "environments": {"default": {"python_version": PY, "packages": [], "dev_packages": []}}
    }
    again = cli("init", cwd=tmp_path, env=env, expect=1)
    assert "already exists" in again.stderr


def test_add_remove_keep_comments(project: Path, env: dict[str, str]) -> None:
    path = project / "envknit.yaml"
    path.write_text(path.read_text().replace("  new:\n", "  # the new stack\n  new:\n"))
    cli("add", "gamma>=1", cwd=project, env=env)
    cli("remove", "tool", "--env", "new", cwd=project, env=env)
    text = path.read_text()
    assert "# the new stack" in text and text.startswith("# envknit.yaml")
    envs = yaml.safe_load(text)["environments"]
    assert list(envs) == ["default", "new"]
    assert envs["default"]["packages"] == ["alpha==1.0", "gamma>=1"]
    assert envs["new"]["dev_packages"] == []
    missing = cli("remove", "gamma", "--env", "new", cwd=project, env=env, expect=1)
    assert "'gamma' is not a requirement of environment 'new'" in missing.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["add", "../../etc"],
        ["add", "/abs"],
        ["add", "a;rm -rf ~"],
        ["add", "a\nb"],
        ["add", "alpha", "--env", "../x"],
        ["remove", "../../etc"],
        ["remove", "alpha", "--env", "nope"],
        ["lock", "--env", "nope"],
    ],
)
def test_hostile_input_changes_nothing(
    project: Path, env: dict[str, str], args: list[str]
) -> None:
    before = (project / "envknit.yaml").read_bytes()
    proc = cli(*args, cwd=project, env=env, expect=1)
    assert proc.stderr.startswith("envknit: error: ")
    assert proc.stderr.count("envknit: error") == 1
    assert (project / "envknit.yaml").read_bytes() == before
    assert not (project / "envknit.lock.yaml").exists()
    assert sorted(p.name for p in project.iterdir()) == ["envknit.yaml"]


def test_malformed_yaml_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "envknit.yaml").write_text("environments: [1, 2\n")
    proc = cli("lock", cwd=tmp_path, env=env, expect=1)
    assert "envknit.yaml" in proc.stderr and "malformed YAML" in proc.stderr


def test_lock_two_environments(project: Path, env: dict[str, str], envknit_home: Path) -> None:
    cli("lock", cwd=project, env=env)
    text = (project / "envknit.lock.yaml").read_text()
    lock = load_lock(project / "envknit.lock.yaml")
    assert lock.resolver_version and lock.resolver_version[0].isdigit()
    default, new = lock.environment("default"), lock.environment("new")
    assert {p.name: p.version for p in default.packages} == {"alpha": "1.0", "beta": "1.0"}
    assert {p.name: (p.version, p.dev) for p in new.packages} == {
        "alpha": ("2.0", False), "beta": ("2.0", False), "tool": ("1.0", True)
    }
    alpha = default.package("alpha")
    assert alpha is not None and alpha.dependencies == ("beta",)
    assert [f.name for f in alpha.files] == ["alpha-1.0-py3-none-any.whl"]
    assert default.python_version == PY
    # machine-independent: no absolute paths, no user or home names
    for needle in (str(project), str(envknit_home), env["UV_FIND_LINKS"], os.sep + "tmp"):
        assert needle not in text
    # deterministic
    cli("lock", cwd=project, env=env)
    assert (project / "envknit.lock.yaml").read_text() == text


def test_lock_again_needs_no_yaml_argparse_or_requirement_parser(
    project: Path, env: dict[str, str]
) -> None:
    cli("lock", cwd=project, env=env)
    first = (project / "envknit.lock.yaml").read_text()
    heavy = ("yaml", "argparse", "packaging.requirements")
    if sys.version_info >= (3, 13):  # before 3.13, pathlib imports urllib.parse itself
        heavy += ("urllib.parse",)
    code = ("import sys\nfrom envknit.cli import main\nstatus = main(['lock'])\n"
            f"print(status, sorted(m for m in {heavy!r} if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.splitlines()[-1] == "0 []", proc.stdout + proc.stderr
    assert (project / "envknit.lock.yaml").read_text() == first  # the same bytes


def test_lock_one_environment_keeps_the_others(project: Path, env: dict[str, str]) -> None:
    cli("lock", cwd=project, env=env)
    before = load_lock(project / "envknit.lock.yaml")
    cli("add", "gamma", "--env", "new", cwd=project, env=env)
    cli("add", "gamma", cwd=project, env=env)  # default changes too, but is not re-locked
    cli("lock", "--env", "new", cwd=project, env=env)
    after = load_lock(project / "envknit.lock.yaml")
    assert after.environment("default") == before.environment("default")
    new = after.environment("new")
    assert new.package("gamma") is not None


def test_lock_refuses_unknown_schema_major(project: Path, env: dict[str, str]) -> None:
    cli("lock", cwd=project, env=env)
    path = project / "envknit.lock.yaml"
    path.write_text(path.read_text().replace("schema_version: '1.0'", "schema_version: '2.0'"))
    before = path.read_bytes()
    proc = cli("lock", "--env", "new", cwd=project, env=env, expect=1)
    assert "schema_version '2.0' is not supported" in proc.stderr
    assert path.read_bytes() == before


def test_lock_unresolvable_is_clear(project: Path, env: dict[str, str]) -> None:
    cli("add", "alpha==9.9", cwd=project, env=env)
    proc = cli("lock", cwd=project, env=env, expect=1)
    assert "resolving for Python" in proc.stderr and "alpha" in proc.stderr
    assert not (project / "envknit.lock.yaml").exists()


def test_lock_uses_the_users_index(project: Path, env: dict[str, str]) -> None:
    # UV_INDEX_URL reaches uv: online, uv asks that index too (here: nobody home)
    online = {k: v for k, v in env.items() if k != "UV_OFFLINE"}
    online.update(UV_INDEX_URL="http://127.0.0.1:9/simple", UV_HTTP_RETRIES="0")
    before = (project / "envknit.yaml").read_text()
    proc = cli("lock", cwd=project, env=online, expect=1)
    assert "Failed to fetch: http://127.0.0.1:9/simple/" in proc.stderr
    assert proc.stderr.count("envknit: error:") == 1
    assert not (project / "envknit.lock.yaml").exists()
    assert (project / "envknit.yaml").read_text() == before


def test_new_files_get_the_usual_mode(project: Path, env: dict[str, str]) -> None:
    # envknit.yaml and the lock are project files: readable like any file the user creates
    umask = os.umask(0)
    os.umask(umask)
    cli("lock", cwd=project, env=env)
    for name in ("envknit.yaml", "envknit.lock.yaml"):
        assert (project / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    (project / "envknit.yaml").chmod(0o640)  # a mode the user chose is kept by edits
    cli("add", "gamma", cwd=project, env=env)
    assert (project / "envknit.yaml").stat().st_mode & 0o777 == 0o640
