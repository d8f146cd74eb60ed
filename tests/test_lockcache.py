"""The per-lock table cache behind configure_from_lock(): a hit equals a miss; doubt misses."""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import envknit
from envknit import _lockcache
from envknit.errors import EntryMissingError
from envknit.routing import _reset_for_tests
from envknit.routing._registry import REGISTRY
from envknit.store.layout import iter_entries

from ._builders import make_store_entry, write_lock
from ._helpers import gen2
from ._routing_fixtures import make_mylib_lock


def _backdate(home: Path) -> None:
    """Age the store's directories past the racy window (a fresh directory is never cached)."""
    old = time.time() - 3600
    for root, dirs, _ in os.walk(home):
        for name in dirs:
            os.utime(os.path.join(root, name), (old, old))
    os.utime(home, (old, old))


def _snapshot() -> dict[str, Any]:
    """Everything configure_from_lock() taught the registry, as plain values."""
    return {
        "packages": {
            key: (p.dist, p.version, p.site_dir, p.dist_info, p.import_names, p.extensions,
                  p.dependencies, p.namespace, dict(p.aliases))
            for key, p in REGISTRY.packages.items()
        },
        "by_dist": dict(REGISTRY.by_dist),
        "import_to_dist": dict(REGISTRY.import_to_dist),
        "by_namespace": sorted(REGISTRY.by_namespace),
        "envs": {env: dict(pins) for env, pins in REGISTRY.envs.items()},
        "pkg_envs": dict(REGISTRY.pkg_envs),
        "env_targets": dict(REGISTRY.env_targets),
        "other_python": dict(REGISTRY.other_python),
        "foreign": dict(REGISTRY.foreign),
        "locks": envknit.routing.configured_locks(),
    }


def _cache_files(home: Path) -> list[Path]:
    return sorted((home / "cache").glob("routes-*.txt"))


class _NoBuild:
    """Stands in for the slow path: a hit must not read the lock or the store."""

    def __call__(self, *args: object) -> None:
        raise AssertionError("the cache was not used")


@pytest.fixture
def lock(envknit_home: Path, tmp_path: Path) -> Path:
    compiled = make_store_entry(envknit_home, "fastlib", "1.0",
                                {"fastlib/__init__.py": "", "fastlib/_speed.so": b"\0"})
    missing = make_store_entry(envknit_home, "gone", "1.0")
    path = make_mylib_lock(envknit_home, tmp_path, {"extra": [compiled, missing]})
    shutil.rmtree(next(e.path for e in iter_entries(envknit_home) if e.name == "gone"))
    _backdate(envknit_home)
    return path


def test_a_hit_configures_exactly_what_a_miss_does(
    lock: Path, envknit_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cache_files(envknit_home) == []
    assert envknit.configure_from_lock(lock) == 5  # mylib 1+2, helper 1+2, fastlib
    missed = _snapshot()
    table = _lockcache.lock_table(lock)
    assert len(_cache_files(envknit_home)) == 1
    _reset_for_tests()
    monkeypatch.setattr(_lockcache, "_build", _NoBuild())
    assert envknit.configure_from_lock(lock) == 5
    assert _snapshot() == missed
    assert _lockcache.lock_table(lock) == table
    assert missed["packages"][("fastlib", "1.0")][5] == ("fastlib/_speed.so",)
    assert missed["envs"]["extra"]["gone"] == "1.0"  # pinned, not installed
    with envknit.use("mylib", "2.0.0") as mylib:
        assert mylib.HELPER_AT_IMPORT == "2.0.0"
    with pytest.raises(envknit.VersionNotInstalledError, match="gone"):
        envknit.use("gone", "1.0")


def test_one_environment_is_cached_apart_from_all(lock: Path, envknit_home: Path) -> None:
    assert envknit.configure_from_lock(lock, env="old") == 2
    assert envknit.configure_from_lock(lock) == 5
    assert len(_cache_files(envknit_home)) == 2
    _reset_for_tests()
    assert envknit.configure_from_lock(lock, env="old") == 2
    assert sorted(REGISTRY.envs) == ["old"]
    with pytest.raises(envknit.UnknownEnvironmentError, match="nope"):
        envknit.configure_from_lock(lock, env="nope")


def test_an_edited_lock_is_a_miss(lock: Path, envknit_home: Path, tmp_path: Path) -> None:
    envknit.configure_from_lock(lock)
    assert len(_cache_files(envknit_home)) == 1
    _reset_for_tests()
    size = lock.stat()
    solo = make_store_entry(envknit_home, "solo", "3.0")
    write_lock(lock, {"only": [solo]})
    os.utime(lock, ns=(size.st_atime_ns, size.st_mtime_ns))  # same mtime: the bytes decide
    assert envknit.configure_from_lock(lock) == 1
    assert sorted(REGISTRY.envs) == ["only"]


def test_a_removed_store_entry_is_not_routed_to(lock: Path, envknit_home: Path) -> None:
    envknit.configure_from_lock(lock)
    _reset_for_tests()
    entry = next(e for e in iter_entries(envknit_home)
                 if (e.name, e.version) == ("mylib", "1.0.0"))
    shutil.rmtree(entry.path)  # what `envknit store gc` does to an entry no project needs
    envknit.configure_from_lock(lock)
    assert ("mylib", "1.0.0") not in REGISTRY.packages
    with pytest.raises(envknit.VersionNotInstalledError, match=r"mylib.*1\.0\.0"):
        envknit.use("mylib", "1.0.0")


def test_a_damaged_entry_is_not_routed_to(lock: Path, envknit_home: Path) -> None:
    envknit.configure_from_lock(lock)
    _reset_for_tests()
    entry = next(e for e in iter_entries(envknit_home)
                 if (e.name, e.version) == ("helper", "2.0.0"))
    _backdate(envknit_home)
    shutil.rmtree(entry.site_dir)  # the version directory's mtime does not change
    envknit.configure_from_lock(lock)
    assert ("helper", "2.0.0") not in REGISTRY.packages


def test_an_entry_installed_since_is_found(lock: Path, envknit_home: Path) -> None:
    envknit.configure_from_lock(lock)
    assert ("gone", "1.0") not in REGISTRY.packages
    _reset_for_tests()
    make_store_entry(envknit_home, "gone", "1.0")  # installed again
    envknit.configure_from_lock(lock)
    assert ("gone", "1.0") in REGISTRY.packages


def test_an_entry_installed_into_a_new_store_is_found(envknit_home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    pkg = make_store_entry(elsewhere, "late", "1.0")
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"a": [pkg]})
    _backdate(envknit_home)
    assert envknit.configure_from_lock(lock) == 0  # the store does not even exist
    _reset_for_tests()
    make_store_entry(envknit_home, "late", "1.0")
    assert envknit.configure_from_lock(lock) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "binary", "version", "home",
                                    "outside", "import name", "python", "unwatched"])
def test_a_corrupt_or_foreign_cache_is_ignored_and_rewritten(
    lock: Path, envknit_home: Path, tmp_path: Path, damage: str
) -> None:
    envknit.configure_from_lock(lock)
    missed = _snapshot()
    (cache,) = _cache_files(envknit_home)
    good = cache.read_text(encoding="utf-8")
    fields = good.split("\0")
    if damage == "garbage":
        text = "envknit-routes 1\0nonsense"
    elif damage == "truncated":
        text = good[: len(good) // 2]
    elif damage == "version":
        text = good.replace(envknit.__version__, "0.0.0-other", 1)
    elif damage == "home":
        text = good.replace(str(envknit_home.resolve()), str(tmp_path), 1)
    elif damage == "outside":
        # an entry elsewhere that looks complete: the cache must not put it on sys.path
        store = str(envknit_home.resolve() / "store")
        entry = next(f for f in fields
                     if f.startswith(store + os.sep) and len(os.path.basename(f)) == 16)
        fake = tmp_path / "fake" / os.path.basename(entry)
        (fake / "site").mkdir(parents=True)
        (fake / "ENTRY.json").write_text("{}")
        text = good.replace(entry, str(fake))
    elif damage == "python":
        py = "{}.{}".format(*sys.version_info[:2])
        text = good.replace(f"\0{py}\0", "\0three\0")
    elif damage == "unwatched":  # the watch list emptied: a store change would go unseen
        at = fields.index(envknit.__version__) + 6  # after the rest of the header
        count = int(fields[at])
        text = "\0".join([*fields[:at], "0", *fields[at + 1 + 2 * count:]])
    elif damage == "import name":
        text = good.replace("\0helper\0" "1\0mylib\0", "\0helper\0" "1\0../mylib\0")
    else:
        text = ""
    if damage == "binary":
        cache.write_bytes(b"\xff\xfe\0\0")
    else:
        assert text != good
        cache.write_text(text, encoding="utf-8")
    _reset_for_tests()
    envknit.configure_from_lock(lock)
    assert _snapshot() == missed
    assert cache.read_text(encoding="utf-8") == good


def test_a_fresh_store_is_not_cached(envknit_home: Path, tmp_path: Path) -> None:
    # a directory changed within the file system's timestamp granularity may change again
    # unseen: its answer is not saved
    lock = make_mylib_lock(envknit_home, tmp_path)
    envknit.configure_from_lock(lock)
    assert _cache_files(envknit_home) == []
    _backdate(envknit_home)
    _reset_for_tests()
    envknit.configure_from_lock(lock)
    assert len(_cache_files(envknit_home)) == 1


def test_a_read_only_home_only_costs_time(
    lock: Path, envknit_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "read-only")

    monkeypatch.setattr(os, "makedirs", refuse)
    assert envknit.configure_from_lock(lock) == 5
    assert _cache_files(envknit_home) == []


def test_a_lock_for_another_python_keeps_its_warning_on_a_hit(
    envknit_home: Path, tmp_path: Path
) -> None:
    other = "3.9" if sys.version_info[:2] != (3, 9) else "3.10"
    pkg = make_store_entry(envknit_home, "plain", "1.0")
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"old": [pkg]}, python_version=other)
    _backdate(envknit_home)
    for _ in range(2):  # a miss, then a hit
        _reset_for_tests()
        with pytest.warns(envknit.TargetPythonWarning):
            envknit.configure_from_lock(lock, env="old")
    assert len(_cache_files(envknit_home)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with envknit.use("plain", "1.0") as plain:
            assert plain.__version__ == "1.0"


@gen2
@pytest.mark.timeout(120)
def test_a_sub_interpreter_gets_the_same_paths_from_a_hit(
    lock: Path, envknit_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = "import sys, mylib\nresult = [mylib.__version__, mylib.HELPER_AT_IMPORT, sys.path]"
    with envknit.SubInterpreterEnv("miss") as interp:
        interp.configure_from_lock(lock, env_name="new")
        missed = interp.eval_json(code)
    assert missed[:2] == ["2.0.0", "2.0.0"]
    assert len(_cache_files(envknit_home)) == 1
    monkeypatch.setattr(_lockcache, "_build", _NoBuild())
    with envknit.SubInterpreterEnv("hit") as interp:
        interp.configure_from_lock(lock, env_name="new")
        assert interp.eval_json(code) == missed
    monkeypatch.undo()
    entry = next(e for e in iter_entries(envknit_home)
                 if (e.name, e.version) == ("helper", "2.0.0"))
    shutil.rmtree(entry.path)
    with envknit.SubInterpreterEnv("gone") as interp, \
            pytest.raises(EntryMissingError, match=r"helper==2\.0\.0.*envknit install"):
        interp.configure_from_lock(lock, env_name="new")
