"""From a locked environment to the store entries (and ``sys.path`` directories) it needs.

Named for what it returns: where a locked environment lives in the store. (uv's resolution is
``_uv.compile_environment``; choosing a version at import time is the router's.)
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import EntryMissingError
from ..lock import LockedEnvironment, load_lock
from ..names import python_tuple
from .layout import Entry, find_entry

__all__ = ["environment_entries", "environment_paths"]


def environment_entries(
    env: LockedEnvironment,
    *,
    include_dev: bool = True,
    python: tuple[int, int] | None = None,
    home: Path | None = None,
) -> list[Entry]:
    """The store entries of every package of ``env``, sorted by name.

    ``python`` defaults to the environment's target version. A locked package without a complete
    entry raises ``EntryMissingError`` naming it and saying to run ``envknit install``.
    """
    target = python if python is not None else python_tuple(env.python_version)
    entries = []
    for pkg in env.selected(include_dev=include_dev):
        entry = find_entry(pkg.name, pkg.version, pkg.hashes, target, home)
        if entry is None:
            raise EntryMissingError(pkg.name, pkg.version, env=env.name)
        entries.append(entry)
    return entries


def environment_paths(
    lock_path: str | os.PathLike[str],
    env_name: str = "default",
    *,
    include_dev: bool = True,
    python: tuple[int, int] | None = None,
    home: Path | None = None,
) -> list[Path]:
    """The ``site`` directories of ``env_name`` in the lock at ``lock_path``, in a stable order."""
    env = load_lock(lock_path).environment(env_name)
    entries = environment_entries(env, include_dev=include_dev, python=python, home=home)
    return [e.site_dir for e in entries]
