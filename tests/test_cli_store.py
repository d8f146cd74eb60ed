"""``envknit verify / doctor / status / store list / store gc`` end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envknit.store.layout import iter_entries
from tests._cli_helpers import cli, make_project, make_small_project

pytest_plugins = ("tests._cli_fixtures",)
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def installed(tmp_path: Path, env: dict[str, str]) -> Path:
    return make_project(tmp_path / "proj", env, install=True)


def entry_of(home: Path, name: str, version: str) -> Path:
    return next(e.path for e in iter_entries(home) if (e.name, e.version) == (name, version))


def test_verify_names_each_damaged_file(
    tmp_path: Path, env: dict[str, str], envknit_home: Path
) -> None:
    installed = make_project(tmp_path / "proj", env, install=True)
    cli("verify", cwd=installed, env=env)
    beta = entry_of(envknit_home, "beta", "1.0")
    tool = entry_of(envknit_home, "tool", "1.0")
    (beta / "site" / "beta" / "__init__.py").write_text("__version__ = 'evil'\n")
    (beta / "site" / "beta" / "extra.py").write_text("")
    (tool / "site" / "tool" / "cli.py").unlink()
    (tool / "site" / "tool" / "__pycache__").mkdir()  # byte-code caches are not damage
    (tool / "site" / "tool" / "__pycache__" / "x.pyc").write_bytes(b"")
    proc = cli("verify", cwd=installed, env=env, expect=1)
    lines = proc.stdout.splitlines()
    assert f"default: tampered: beta 1.0: {beta}/site/beta/__init__.py" in lines
    assert f"default: added: beta 1.0: {beta}/site/beta/extra.py" in lines
    assert f"new: missing: tool 1.0: {tool}/site/tool/cli.py" in lines
    assert len(lines) == 3
    assert "rm -rf" in proc.stderr and str(beta) in proc.stderr
    only_default = cli("verify", "--env", "default", cwd=installed, env=env, expect=1)
    assert "tool" not in only_default.stdout
    assert "uv cache clean" not in proc.stderr  # the store shares no inode with uv's cache
    # the repair the message suggests works, and the tampered file does not come back
    shutil.rmtree(beta)
    shutil.rmtree(tool)
    missing = cli("verify", cwd=installed, env=env, expect=1)
    assert "not installed: beta 1.0" in missing.stdout
    cli("install", cwd=installed, env=env)
    cli("verify", cwd=installed, env=env)
    out = cli("run", "--", "python", "-c", "import beta; print(beta.__version__)",
              cwd=installed, env=env)
    assert out.stdout.strip() == "1.0"


def _cached_copies(cache: Path, rel: str) -> list[Path]:
    return [p for p in cache.rglob(rel) if p.is_file()]


def test_store_shares_no_inode_with_uv_cache(
    tmp_path: Path, env: dict[str, str], envknit_home: Path
) -> None:
    # what edits a store file in place (a CA-injection step appending to certifi's
    # cacert.pem) must not edit uv's cached copy, and the reverse
    cache = tmp_path / "own-uv-cache"
    env = {**env, "UV_CACHE_DIR": str(cache), "UV_LINK_MODE": "hardlink"}  # the user's choice
    make_small_project(tmp_path / "p", env, "gamma")
    gamma = entry_of(envknit_home, "gamma", "1.0")
    cached = {p.stat().st_ino for p in cache.rglob("*") if p.is_file()}
    for path in gamma.rglob("*"):
        if path.is_file():
            assert path.stat().st_nlink == 1, path
            assert path.stat().st_ino not in cached, path
    (gamma / "site" / "gamma" / "__init__.py").write_text("__version__ = 'patched'\n")
    (copy,) = _cached_copies(cache, "gamma/__init__.py")
    assert "patched" not in copy.read_text()


def test_install_heals_a_changed_uv_cache(
    tmp_path: Path, env: dict[str, str], envknit_home: Path
) -> None:
    # uv's unpacked copy changed (by a venv that uv hard-linked to its cache, then a
    # CA-injection step): install fetches the wheel again, hash-checked, and says so
    cache = tmp_path / "own-uv-cache"
    env = {**env, "UV_CACHE_DIR": str(cache)}
    root = make_small_project(tmp_path / "p", env, "gamma")
    shutil.rmtree(entry_of(envknit_home, "gamma", "1.0"))
    (copy,) = _cached_copies(cache, "gamma/__init__.py")
    copy.write_text("__version__ = 'patched'\n")
    proc = cli("install", cwd=root, env=env, expect=None)
    assert proc.returncode == 0, proc.stderr
    notes = [ln for ln in proc.stderr.splitlines() if "note:" in ln]
    assert notes == ["  note: uv's cached copy of gamma 1.0 was changed (gamma/__init__.py); "
                     "removing it from uv's cache and installing a fresh copy"], proc.stderr
    out = cli("run", "--", "python", "-c", "import gamma; print(gamma.__version__)", cwd=root,
              env=env)
    assert out.stdout.strip() == "1.0"
    cli("verify", cwd=root, env=env)
    assert all("patched" not in p.read_text() for p in _cached_copies(cache, "gamma/__init__.py"))


def test_doctor_and_status(installed: Path, env: dict[str, str], envknit_home: Path) -> None:
    doctor = cli("doctor", cwd=installed, env=env)
    assert "doctor: all good" in doctor.stdout and "[ok] uv " in doctor.stdout
    status = cli("status", cwd=installed, env=env).stdout
    assert "default: Python" in status and "2/2 installed, lock up to date" in status
    assert "  tool 1.0 (dev): installed" in status
    cli("add", "gamma", cwd=installed, env=env)
    shutil.rmtree(entry_of(envknit_home, "alpha", "2.0"))
    doctor = cli("doctor", cwd=installed, env=env, expect=1)
    assert "[FAIL] default: lock is stale: envknit.yaml changed" in doctor.stdout
    assert "run 'envknit lock'" in doctor.stdout
    assert "[FAIL] new: 2/3 locked packages in the store" in doctor.stdout
    status = cli("status", cwd=installed, env=env).stdout
    assert "STALE: envknit.yaml changed since it was locked" in status
    assert "  alpha 2.0: MISSING" in status
    cli("lock", "--env", "default", cwd=installed, env=env)
    assert "lock up to date" in cli("status", cwd=installed, env=env).stdout


def test_doctor_without_lock_or_python(tmp_path: Path, env: dict[str, str]) -> None:
    cli("init", "--python", "3.99", cwd=tmp_path, env=env)
    doctor = cli("doctor", cwd=tmp_path, env=env, expect=1)
    assert "[FAIL] default: no Python 3.99 interpreter found" in doctor.stdout
    assert "[FAIL] lock:" in doctor.stdout and "envknit lock" in doctor.stdout
    lock = cli("lock", cwd=tmp_path, env=env, expect=1)
    assert "no Python 3.99 interpreter found" in lock.stderr


def test_store_list_and_gc(
    tmp_path: Path, installed: Path, env: dict[str, str], envknit_home: Path
) -> None:
    listing = cli("store", "list", cwd=installed, env=env)
    assert len(listing.stdout.splitlines()) == 1 + 5 and "KiB" in listing.stdout  # a header
    assert "5 entries" in listing.stderr
    # a second project needs alpha 1.0 / beta 1.0 too
    other = make_small_project(tmp_path / "other", env, "alpha==1.0")
    assert "0 installed, 2 already in the store" in cli("install", cwd=other, env=env).stdout
    # the first project drops its 'new' environment: alpha 2.0, beta 2.0, tool 1.0 unneeded
    text = (installed / "envknit.yaml").read_text()
    (installed / "envknit.yaml").write_text(text[: text.index("  new:")])
    cli("lock", cwd=installed, env=env)
    dry = cli("store", "gc", "--dry-run", cwd=installed, env=env)
    assert "would remove 3 entries" in dry.stdout
    assert len(list(iter_entries(envknit_home))) == 5
    gc = cli("store", "gc", cwd=installed, env=env)
    assert "removed 3 entries" in gc.stdout and "kept 2" in gc.stdout
    assert sorted(f"{e.name} {e.version}" for e in iter_entries(envknit_home)) == [
        "alpha 1.0", "beta 1.0"
    ]
    assert not (envknit_home / "store" / "tool").exists()
    cli("run", "--", "python", "-c", "import alpha", cwd=other, env=env)


@pytest.mark.parametrize("damage", ["delete", "garble"])
def test_gc_never_deletes_on_missing_or_unreadable_lock(
    tmp_path: Path, installed: Path, env: dict[str, str], envknit_home: Path, damage: str
) -> None:
    other = make_small_project(tmp_path / "other", env, "gamma")
    lock = installed / "envknit.lock.yaml"
    if damage == "delete":
        lock.unlink()
    else:
        lock.write_text("schema_version: [\n")
    before = sorted(e.path for e in iter_entries(envknit_home))
    proc = cli("store", "gc", cwd=other, env=env, expect=1)
    assert str(lock) in proc.stderr and "gc removed nothing" in proc.stderr
    assert sorted(e.path for e in iter_entries(envknit_home)) == before


def test_empty_environment_and_usage(tmp_path: Path, env: dict[str, str]) -> None:
    make_small_project(tmp_path, env)
    out = cli("run", "--", "python", "-c", "import os; print(os.environ.get('PYTHONPATH'))",
              cwd=tmp_path, env={k: v for k, v in env.items() if k != "PYTHONPATH"})
    assert out.stdout.strip() == "None"
    assert "needs a subcommand" in cli("store", cwd=tmp_path, env=env, expect=2).stderr
    assert "no command given" in cli("run", cwd=tmp_path, env=env, expect=2).stderr
    assert "unknown option" in cli("run", "--bogus", "x", cwd=tmp_path, env=env, expect=2).stderr


def test_malformed_lock_is_named(installed: Path, env: dict[str, str]) -> None:
    lock = installed / "envknit.lock.yaml"
    lock.write_text("schema_version: '1.0'\nenvironments: [unclosed\n")
    for args in (["install"], ["run", "--", "true"], ["verify"], ["status"], ["lock", "--env",
                                                                              "new"]):
        proc = cli(*args, cwd=installed, env=env, expect=1)
        assert "malformed YAML" in proc.stderr and str(lock) in proc.stderr, args
