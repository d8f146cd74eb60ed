"""Store layout: entry paths are validated, complete entries found, incomplete ones ignored."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from envknit.errors import EntryMissingError, InvalidNameError
from envknit.store.layout import ENTRY_FILE, entry_dir, find_entry, iter_entries, store_root
from envknit.store.paths import environment_paths

from ._builders import make_store_entry, write_lock

PY = (sys.version_info.major, sys.version_info.minor)


@pytest.mark.parametrize(
    ("name", "version"),
    [("../../etc", "1.0"), ("/abs", "1.0"), ("a;rm -rf ~", "1"), ("ok", "1\n2")],
)
def test_hostile_names_refused(name: str, version: str, envknit_home: Path) -> None:
    with pytest.raises(InvalidNameError):
        entry_dir(name, version, "a" * 64, envknit_home)


def test_entry_paths_stay_in_store(envknit_home: Path) -> None:
    path = entry_dir("My_Lib", "1.0", "b" * 64, envknit_home)
    assert path.is_relative_to(store_root(envknit_home))
    assert path.parts[-3:] == ("my-lib", "1.0", "b" * 16)


def test_complete_and_incomplete_entries(envknit_home: Path) -> None:
    pkg = make_store_entry(envknit_home, "mylib", "1.0.0")
    entry = find_entry("mylib", "1.0.0", pkg.hashes, PY, envknit_home)
    assert entry is not None
    assert (entry.site_dir / "mylib" / "__init__.py").read_text() == "__version__ = '1.0.0'\n"
    assert find_entry("mylib", "1.0.0", frozenset({"c" * 64}), PY, envknit_home) is None
    # no hash names no entry (it never meant "any entry of this version")
    assert find_entry("mylib", "1.0.0", frozenset(), PY, envknit_home) is None
    (entry.path / ENTRY_FILE).unlink()  # what a killed install would leave
    assert find_entry("mylib", "1.0.0", pkg.hashes, PY, envknit_home) is None
    assert list(iter_entries(envknit_home)) == []


def test_incompatible_wheel_tag_not_chosen(envknit_home: Path) -> None:
    pkg = make_store_entry(envknit_home, "cext", "1.0", tag="cp39-cp39-manylinux_2_17_x86_64")
    assert find_entry("cext", "1.0", pkg.hashes, PY, envknit_home) is None
    assert find_entry("cext", "1.0", pkg.hashes, (3, 9), envknit_home) is not None


def test_environment_paths(tmp_path: Path, envknit_home: Path) -> None:
    a = make_store_entry(envknit_home, "alpha", "1.0")
    b = make_store_entry(envknit_home, "beta", "2.0")
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": [b, a]})
    paths = environment_paths(lock, "default")
    assert [p.parts[-4] for p in paths] == ["alpha", "beta"]
    shutil.rmtree(paths[1].parent)
    with pytest.raises(EntryMissingError, match=r"beta==2.0 .*run 'envknit install --env default'"):
        environment_paths(lock, "default")
