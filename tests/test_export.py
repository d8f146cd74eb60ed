"""``envknit export``: PEP 751 pylock.toml that validates, installs offline with uv, re-exports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envknit import wheelhouse
from envknit.lock import DistFile, LockedEnvironment, LockedPackage, load_lock
from envknit.pylock import build_pylock, pylock_filename
from tests._cli_helpers import cli, make_project

pytest_plugins = ("tests._cli_fixtures",)
pytestmark = pytest.mark.timeout(180)

UV = Path(sys.executable).parent / "uv"


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Path:
    """default: alpha 1.0 + beta 1.0; new: alpha 2.0 + beta 2.0 + dev tool 1.0 (fixture wheels)."""
    return make_project(tmp_path / "proj", env, lock=True)


def _load_toml(path: Path) -> dict[str, object]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # 3.10 has no tomllib; pip (in every test venv) vendors the same parser, tomli
        from pip._vendor import tomli as tomllib
    data: dict[str, object] = tomllib.loads(path.read_text(encoding="utf-8"))
    return data


def test_export_writes_valid_pep751_files(project: Path, env: dict[str, str]) -> None:
    cli("export", cwd=project, env=env)
    cli("export", "--env", "new", cwd=project, env=env)
    assert (project / "pylock.toml").is_file() and (project / "pylock.new.toml").is_file()
    pylock = pytest.importorskip("packaging.pylock", reason="packaging >= 25.0 has pylock")
    lock = load_lock(project / "envknit.lock.yaml")
    for name, file in (("default", "pylock.toml"), ("new", "pylock.new.toml")):
        data = _load_toml(project / file)
        parsed = pylock.Pylock.from_dict(data)
        assert str(parsed.lock_version) == "1.0"
        assert parsed.created_by == "envknit"
        assert str(parsed.requires_python) == f"=={lock.environment(name).python_version}.*"
        locked = {p.name: p for p in lock.environment(name).packages}
        assert {p.name: str(p.version) for p in parsed.packages} == {
            n: p.version for n, p in locked.items()
        }
        for pkg in parsed.packages:
            files = {w.filename: w.hashes["sha256"] for w in pkg.wheels or ()}
            assert files == {f.name: f.sha256 for f in locked[pkg.name].files}
            for wheel in pkg.wheels or ():  # paths are relative to the pylock file and exist
                assert wheel.path is not None and not wheel.path.startswith("/")
                assert (project / wheel.path).is_file()
    new = pylock.Pylock.from_dict(_load_toml(project / "pylock.new.toml"))
    dev = {p.name: p.tool for p in new.packages}
    assert dev["tool"] == {"envknit": {"dev": True}}


def test_reexport_is_byte_identical(project: Path, env: dict[str, str]) -> None:
    cli("export", "--env", "new", cwd=project, env=env)
    first = (project / "pylock.new.toml").read_bytes()
    cli("export", "--env", "new", cwd=project, env=env)
    assert (project / "pylock.new.toml").read_bytes() == first
    out = cli("export", "--env", "new", "-o", "-", cwd=project, env=env)
    assert out.stdout.encode() == first


def test_no_dev_leaves_dev_packages_out(project: Path, env: dict[str, str]) -> None:
    out = cli("export", "--env", "new", "--no-dev", "-o", "-", cwd=project, env=env).stdout
    assert 'name = "alpha"' in out and 'name = "tool"' not in out


def test_uv_installs_exactly_the_locked_versions_offline(
    project: Path, env: dict[str, str], tmp_path: Path
) -> None:
    cli("export", "--env", "new", "--no-dev", cwd=project, env=env)
    offline = {**env, "UV_CACHE_DIR": str(tmp_path / "fresh-cache"), "UV_OFFLINE": "1"}
    offline.pop("UV_FIND_LINKS")  # the pylock's own paths are all uv gets
    venv = tmp_path / "venv"
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)],
                   env=offline, check=True, timeout=120)
    py = venv / "bin" / "python"
    done = subprocess.run(
        [str(UV), "pip", "install", "--python", str(py), "-r", "pylock.new.toml"],
        cwd=project, env=offline, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [str(UV), "pip", "list", "--python", str(py), "--format", "json"],
        env=offline, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert {d["name"]: d["version"] for d in json.loads(listed)} == {"alpha": "2.0", "beta": "2.0"}
    imported = subprocess.run([str(py), "-c", "import alpha, beta; print(alpha.__version__, "
                               "beta.__version__)"], capture_output=True, text=True, check=True)
    assert imported.stdout.split() == ["2.0", "2.0"]


def test_files_not_found_locally_get_their_index_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = "a" * 64
    env = LockedEnvironment(name="web", python_version="3.12.1", packages=(LockedPackage(
        name="attrs", version="23.1.0",
        files=(DistFile(name="attrs-23.1.0-py3-none-any.whl", sha256=sha),
               DistFile(name="attrs-23.1.0.tar.gz", sha256="b" * 64)),
    ),))
    monkeypatch.delenv("UV_FIND_LINKS", raising=False)
    monkeypatch.setenv("UV_INDEX_URL", "https://example.invalid/simple/")
    seen = []

    def fake_index(name: str, filename: str) -> str:
        seen.append((name, filename))
        return f"https://files.example.invalid/{filename}"

    monkeypatch.setattr(wheelhouse, "index_file_url", fake_index)
    text = build_pylock(env, base_dir=tmp_path)
    assert 'requires-python = "==3.12.1"' in text
    assert 'index = "https://example.invalid/simple"' in text
    assert ('sdist = {name = "attrs-23.1.0.tar.gz", url = "https://files.example.invalid/'
            'attrs-23.1.0.tar.gz", hashes = {sha256 = "' + "b" * 64 + '"}}') in text
    assert 'url = "https://files.example.invalid/attrs-23.1.0-py3-none-any.whl"' in text
    assert sorted(seen) == [("attrs", "attrs-23.1.0-py3-none-any.whl"),
                            ("attrs", "attrs-23.1.0.tar.gz")]


def test_pylock_filename() -> None:
    assert pylock_filename("default") == "pylock.toml"
    assert pylock_filename("ml") == "pylock.ml.toml"


def test_help_and_errors(project: Path, env: dict[str, str]) -> None:
    out = cli("export", "--help", cwd=project, env=env).stdout
    assert "PEP 751" in out and "pylock.<NAME>.toml" in out and "--find-links" in out
    bad = cli("export", "--env", "nope", cwd=project, env=env, expect=1)
    assert bad.stderr.strip().splitlines() == [
        "envknit: error: unknown environment 'nope' in the lock; environments: 'default', 'new'"
    ]
