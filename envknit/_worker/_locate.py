"""Finding the locked, installed environment that holds ``name==version``, and its worker spec."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import _configured
from .._dists import read_installed
from ..errors import EntryMissingError, InterpreterNotFoundError, VersionNotInstalledError
from ..lock import LOCK_FILENAME, LockedEnvironment, load_lock
from ..names import normalize_name, normalize_version, python_tuple
from ..pythons import find_python
from ..store.layout import Entry
from ..store.paths import environment_entries
from ._pool import WorkerSpec

__all__ = ["Located", "candidate_locks", "locate", "spec_for_environment"]

_log = logging.getLogger("envknit")


@dataclass(frozen=True, kw_only=True, slots=True)
class Located:
    """Where a worker for a package runs, and the module to import there."""

    spec: WorkerSpec
    module: str


def candidate_locks() -> list[Path]:
    """Locks given to ``configure_from_lock()`` (in order), then ``./envknit.lock.yaml``."""
    paths = list(_configured.configured_locks())
    local = Path.cwd() / LOCK_FILENAME
    if local.is_file():
        paths.append(local)
    return list(dict.fromkeys(path.resolve() for path in paths))


def _spec(
    lock_path: Path, env: LockedEnvironment, entries: Sequence[Entry], what: str
) -> WorkerSpec:
    """A worker runs the environment's own Python, whichever this process runs."""
    try:
        python = find_python(env.python_version)
    except InterpreterNotFoundError as exc:
        raise InterpreterNotFoundError(
            exc.version, exc.searched, places=exc.places,
            needed_by=f"environment {env.name!r} of {lock_path}",
        ) from None
    paths = tuple(str(e.site_dir) for e in entries)
    label = f"{what} (environment {env.name!r} of {lock_path})"
    if python_tuple(env.python_version) != python_tuple(None):
        _log.info("%s: the worker runs Python %s (%s), the environment's target, not this "
                  "process's %d.%d", label, env.python_version, python, *sys.version_info[:2])
    return WorkerSpec(python=str(python), paths=paths, label=label)


def spec_for_environment(lock_path: str | os.PathLike[str], env_name: str) -> WorkerSpec:
    """The worker spec for a whole environment (raises like ``environment_paths``)."""
    path = Path(lock_path).resolve()
    env = load_lock(path).environment(env_name)
    return _spec(path, env, environment_entries(env), f"environment {env_name!r}")


def _module_name(dist: str, entry: Entry | None) -> str:
    """The top-level module to import for ``dist`` (``PyYAML`` -> ``yaml``), read from its
    dist-info as the router reads it; the usual spelling if the entry installs none."""
    guess = dist.replace("-", "_").replace(".", "_")
    if entry is None:
        return guess
    return read_installed(dist, entry.site_dir).main_import or guess


# Successful look-ups, keyed by what they were read from: re-entering ``worker()`` for the same
# package would otherwise parse every candidate lock and read every ENTRY.json again (3 ms for a
# 30-package lock, where a warm call round trip costs ~20 us). Complete store entries never
# change, so a hit stays valid while the locks are unchanged and its entries still exist.
_found: dict[tuple[object, ...], Located] = {}


def _signature(locks: Sequence[Path]) -> tuple[tuple[str, int, int, int], ...]:
    # The inode too: file times are coarse (a few ms), but locks are replaced by rename.
    stats = [(str(p), p.stat()) for p in locks]
    return tuple((path, st.st_ino, st.st_mtime_ns, st.st_size) for path, st in stats)


def forget() -> None:
    """Drop every cached look-up (tests; a store emptied behind our back)."""
    _found.clear()


def locate(name: str, version: str) -> Located:
    """The worker spec and module for ``name==version`` from the known locks.

    A version that no known lock pins raises ``VersionNotInstalledError`` naming the versions
    that are locked; a locked one that is not installed raises ``EntryMissingError`` (and one
    whose Python is not on this machine ``InterpreterNotFoundError``).
    """
    canonical = normalize_name(name)
    wanted = normalize_version(version)
    locks = candidate_locks()
    try:
        key = (canonical, wanted, os.environ.get("ENVKNIT_HOME"), _signature(locks))
    except OSError:  # a lock vanished: let the uncached look-up report it as a LockError
        return _locate(canonical, wanted, locks)
    hit = _found.get(key)
    if hit is not None and all(os.path.isdir(p) for p in hit.spec.paths):
        return hit
    found = _locate(canonical, wanted, locks)
    _found[key] = found
    return found


def _locate(canonical: str, wanted: str, locks: Sequence[Path]) -> Located:
    available: set[str] = set()
    missing: EntryMissingError | InterpreterNotFoundError | None = None
    for lock_path in locks:
        lock = load_lock(lock_path)
        for env_name in sorted(lock.environments):
            env = lock.environments[env_name]
            pkg = env.package(canonical)
            if pkg is None:
                continue
            if pkg.version != wanted:
                available.add(pkg.version)
                continue
            try:
                entries = environment_entries(env)
                spec = _spec(lock_path, env, entries, f"{canonical}=={wanted}")
            except (EntryMissingError, InterpreterNotFoundError) as exc:
                missing = missing or exc  # another environment may pin it too: keep looking
                continue
            entry = next((e for e in entries if normalize_name(e.name) == canonical), None)
            return Located(spec=spec, module=_module_name(canonical, entry))
    if missing is not None:
        raise missing
    raise VersionNotInstalledError(canonical, wanted, sorted(available))

