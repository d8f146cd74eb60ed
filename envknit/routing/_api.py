"""The public Gen 1 calls: use(), import_version(), set_default(), configure_from_lock()."""

from __future__ import annotations

import contextvars
import os
import sys
from types import MappingProxyType

from .._configured import any_locks
from ..errors import (
    CExtensionError,
    TargetPythonError,
    TargetPythonWarning,
    UnknownEnvironmentError,
    VersionNotInstalledError,
)
from . import _router
from ._context import ACTIVE, Active, current
from ._registry import REGISTRY, RoutedPackage

# configure_from_lock() has a start-up budget (docs/benchmarks.md): no typing, pathlib,
# packaging or lock model (yaml) at import; what only the type checker needs stays here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType, TracebackType
    from typing import Any

#: ``envknit.lock.LOCK_FILENAME`` (importing envknit.lock would import yaml)
LOCK_FILENAME = "envknit.lock.yaml"

__all__ = ["configure_from_lock", "import_version", "set_default", "use"]


def configure_from_lock(
    lock_path: str | os.PathLike[str] = LOCK_FILENAME, env: str | None = None
) -> int:
    """Make the installed packages of a lock (every environment, or just ``env``) known.

    Each locked package is looked up in the store for the running Python; packages that are
    not installed are skipped (asking for them later raises ``VersionNotInstalledError``).
    Import names come from each installed dist-info (``top_level.txt`` or ``RECORD``), so
    ``PyYAML`` routes ``import yaml``. Returns how many distinct (name, version) pairs of this
    lock are now known. Does not enable the router.

    An environment locked for another Python than this one is noticed: naming it in ``env``
    warns ``TargetPythonWarning`` at once; otherwise ``use()`` of its packages does (or raises
    ``TargetPythonError`` for a package installed only for that Python). A lock may hold such
    environments on purpose, for workers, which run each environment's own Python.
    """
    count = REGISTRY.configure(lock_path, env)
    _router.refresh()
    if env is not None:
        lock, target = REGISTRY.env_targets[env]
        running = (sys.version_info.major, sys.version_info.minor)
        if target != running:
            foreign = sorted(f"{d} {v}" for (d, v), e in REGISTRY.foreign.items() if e == env)
            import warnings

            warnings.warn(TargetPythonWarning(env=env, lock_path=lock, target=target,
                                              running=running, foreign=foreign), stacklevel=2)
    return count


def _target_error(dist: str, version: str, env: str) -> TargetPythonError:
    lock, target = REGISTRY.env_targets[env]
    return TargetPythonError(env=env, lock_path=lock, target=target,
                             running=(sys.version_info.major, sys.version_info.minor),
                             foreign=(f"{dist} {version}",))


def _warn_other_python(pkg: RoutedPackage) -> None:
    """``pkg`` loads here, but every environment pinning it was resolved for another Python."""
    import warnings

    env = REGISTRY.other_python[pkg.key]
    lock, target = REGISTRY.env_targets[env]
    warnings.warn(TargetPythonWarning(env=env, lock_path=lock, target=target,
                                      running=(sys.version_info.major, sys.version_info.minor)),
                  stacklevel=3)


def _configure_local_lock() -> None:
    """Convenience: with no lock configured yet, the working directory's lock, if any."""
    if not any_locks() and os.path.isfile(LOCK_FILENAME):
        configure_from_lock()


def _lookup(name: str, version: str) -> tuple[RoutedPackage, str]:
    """The installed package ``name==version`` and the import name to return for it."""
    lookups = REGISTRY.lookups  # the table of this moment: configure() may replace it meanwhile
    hit = lookups.get((name, version))
    if hit is not None:
        return hit
    from ..names import normalize_version  # a first lookup: off the start-up path

    wanted = normalize_version(version)
    _configure_local_lock()
    dist = REGISTRY.dist_for(name)
    pkg = REGISTRY.packages.get((dist, wanted)) if dist is not None else None
    if pkg is None and dist is not None:
        # "1.0" asks for what is installed as "1.0.0": equal under PEP 440
        from packaging.version import Version

        same = [v for v in REGISTRY.versions(dist) if Version(v) == Version(wanted)]
        pkg = REGISTRY.packages.get((dist, same[0])) if same else None
    if pkg is None:
        env = REGISTRY.foreign.get((dist or "", wanted))
        if env is not None:
            raise _target_error(dist or name, wanted, env)
        raise VersionNotInstalledError(name, wanted, REGISTRY.versions(dist) if dist else ())
    hit = (pkg, name if name in pkg.import_names else pkg.main_import)
    lookups[(name, version)] = hit
    return hit


def _check_env(env: str) -> None:
    if env not in REGISTRY.envs:
        raise UnknownEnvironmentError(
            env, sorted(REGISTRY.envs), source="the locks given to configure_from_lock()"
        )


class _Use:
    """What ``use()`` returns: a context manager. One object may be entered from several
    threads or tasks at once: each exit finds the entry made in its own context.

    An exit in a context that did not make the entry (a generator suspended inside the block
    and finished in another thread) ends that entry where it was made: the context that
    entered reverts to its earlier versions at its next import (see ``_context.current``).
    """

    __slots__ = ("_auto_worker", "_entries", "_env", "_import_name", "_pkg")

    def __init__(
        self, pkg: RoutedPackage | None, import_name: str, env: str | None, auto_worker: bool
    ) -> None:
        self._pkg = pkg
        self._import_name = import_name
        self._env = env
        self._auto_worker = auto_worker
        self._entries: dict[int, tuple[Active, contextvars.Token[Active], Any]] = {}

    def __enter__(self) -> Any:
        pkg = self._pkg
        if pkg is not None and pkg.extensions and not self._auto_worker:
            raise CExtensionError(pkg.dist, pkg.version, pkg.extensions)
        if not _router._ENABLED:
            _router.enable()
        outer = ACTIVE.get()
        if outer.ended[0]:  # its block exited in another context: build on what is still open
            outer = current()
        env = self._env or outer.env
        pins: Mapping[str, str]
        if pkg is not None and not outer.pins and self._env is None:
            pins = REGISTRY.closure(pkg, env)  # already immutable: the common case, no copy
        else:
            merged = dict(outer.pins)
            if self._env is not None:
                merged.update(REGISTRY.envs.get(self._env, {}))
            if pkg is not None:
                merged.update(REGISTRY.closure(pkg, env))
            pins = MappingProxyType(merged)
        # A new object per entry (__exit__ finds its entry by identity); tuple.__new__ skips
        # the NamedTuple's Python-level __new__, this being the hot path of use().
        active = tuple.__new__(Active, (pins, env, outer, [False]))
        token = ACTIVE.set(active)
        worker_cm: Any = None
        try:
            if pkg is None or not self._import_name:
                result: Any = None  # an environment, or a distribution without modules
            elif pkg.extensions:
                # The one edge between the two packages, lazily (workers start processes):
                # routing uses the worker package's public API; workers never import routing.
                from .._worker import worker

                worker_cm = worker(pkg.dist, pkg.version)
                result = worker_cm.__enter__()
            else:
                result = _router.load(pkg, self._import_name)
        except BaseException:  # whatever failed (even KeyboardInterrupt): undo, then re-raise
            ACTIVE.reset(token)
            raise
        self._entries[id(active)] = (active, token, worker_cm)
        return result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        # Keyed by the identity of the state this entry set, which is what this context sees
        # now; the state stays alive in the entry, so its id cannot be reused meanwhile.
        here = ACTIVE.get()
        entry = self._entries.pop(id(here), None)
        own = entry is not None
        if entry is None:
            entry = self._entry_elsewhere(here)
        active, token, worker_cm = entry
        try:
            if worker_cm is not None:
                return bool(worker_cm.__exit__(exc_type, exc, tb))
            return None
        finally:
            if own:
                ACTIVE.reset(token)
            else:
                # Entered in another context (or under a block still open here): that context
                # cannot be reset from here, so the state is marked ended and skipped there.
                active.ended[0] = True

    def _entry_elsewhere(self, here: Active) -> tuple[Active, contextvars.Token[Active], Any]:
        """The entry an exit belongs to when it is not this context's newest state: one
        further down this context's chain (exits out of order), else the newest entry."""
        node = here.parent
        while node is not None:
            entry = self._entries.pop(id(node), None)
            if entry is not None:
                return entry
            node = node.parent
        try:
            return self._entries.popitem()[1]  # atomic: another thread may exit meanwhile
        except KeyError:
            raise RuntimeError("envknit.use(): __exit__ without a matching __enter__") from None


def use(
    name: str | None = None,
    version: str | None = None,
    *,
    env: str | None = None,
    auto_worker: bool = False,
) -> _Use:
    """Route imports to ``name==version`` (and its locked dependencies) inside a ``with`` block.

    ``with envknit.use("mylib", "1.0.0") as mylib:`` gives the module; inside the block
    ``import mylib``, ``importlib.import_module("mylib")`` and
    ``importlib.metadata.version("mylib")`` all answer 1.0.0, in this thread or task only.
    ``use(env="old")`` activates every package of a locked environment (``__enter__`` returns
    None); ``use("mylib", env="old")`` takes the version from that environment.

    A package with compiled extensions (per its dist-info RECORD) cannot be loaded twice in
    one process: it raises ``CExtensionError``, or with ``auto_worker=True`` the block yields
    a proxy of ``envknit.worker(name, version)`` instead. Enables the router on first use.
    """
    if env is not None:
        _configure_local_lock()
        _check_env(env)
    if name is None:
        if env is None:
            raise TypeError("use() needs a package name and version, or env=")
        return _Use(None, "", env, auto_worker)
    if version is None:
        dist = REGISTRY.dist_for(name)
        pinned = REGISTRY.envs.get(env, {}).get(dist or "") if env is not None else None
        if pinned is None:
            if env is None:
                raise TypeError(f"use({name!r}) needs a version (or env= to take it from)")
            raise VersionNotInstalledError(
                name, f"<locked in {env!r}>", REGISTRY.versions(dist) if dist else ()
            )
        version = pinned
    pkg, import_name = _lookup(name, version)
    if pkg.key in REGISTRY.other_python:
        _warn_other_python(pkg)
    return _Use(pkg, import_name, env, auto_worker)


def import_version(name: str, version: str) -> ModuleType:
    """Return ``name`` at ``version`` without a block (its own imports still route by its
    environment). Raises ``VersionNotInstalledError`` or ``CExtensionError``."""
    pkg, import_name = _lookup(name, version)
    if pkg.extensions:
        raise CExtensionError(pkg.dist, pkg.version, pkg.extensions)
    if not import_name:
        raise ModuleNotFoundError(
            f"{pkg.dist}=={pkg.version} installs no importable module", name=name
        )
    if not _router.is_enabled():
        _router.enable()
    return _router.load(pkg, import_name)


def set_default(name: str, version: str | None) -> None:
    """Choose what a plain ``import name`` gets outside any block (None: forget the choice)."""
    if version is None:
        dist = REGISTRY.dist_for(name)
        if dist is not None:
            REGISTRY.set_default(dist, None)
        return
    pkg, _ = _lookup(name, version)
    REGISTRY.set_default(pkg.dist, pkg.version)
