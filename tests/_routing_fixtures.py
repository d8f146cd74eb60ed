"""Fixture store entries and locks for the routing tests: mylib 1/2 over helper 1/2."""

from __future__ import annotations

from pathlib import Path

from envknit.lock import LockedPackage

from ._builders import make_store_entry, write_lock

__all__ = ["MYLIB_SRC", "make_mylib_lock"]

MYLIB_SRC = """\
__version__ = {version!r}
import helper as _helper_at_import
HELPER_AT_IMPORT = _helper_at_import.__version__
from mylib import sub
from . import rel


def helper_lazy():
    import helper
    return helper.__version__, helper.__file__


def helper_lazy_import_module():
    import importlib
    return importlib.import_module("helper").__version__
"""


def _mylib(home: Path, version: str) -> LockedPackage:
    files = {
        "mylib/__init__.py": MYLIB_SRC.format(version=version),
        "mylib/sub.py": f"WHO = 'sub {version}'\n",
        "mylib/rel.py": f"WHO = 'rel {version}'\n",
    }
    return make_store_entry(home, "mylib", version, files, dependencies=["helper"])


def _helper(home: Path, version: str) -> LockedPackage:
    files = {"helper/__init__.py": f"__version__ = {version!r}\n"}
    return make_store_entry(home, "helper", version, files)


def make_mylib_lock(
    home: Path, tmp: Path, extra: dict[str, list[LockedPackage]] | None = None
) -> Path:
    """A lock with env ``old`` (mylib 1.0.0 + helper 1.0.0) and ``new`` (2.0.0 + 2.0.0)."""
    envs = {
        "old": [_mylib(home, "1.0.0"), _helper(home, "1.0.0")],
        "new": [_mylib(home, "2.0.0"), _helper(home, "2.0.0")],
    }
    envs.update(extra or {})
    return write_lock(tmp / "envknit.lock.yaml", envs)
