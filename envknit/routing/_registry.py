"""What the router knows: installed (distribution, version) pairs, their import names and envs."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from packaging.version import Version

from .. import _configured
from .._dists import main_import, read_installed
from ..lock import load_lock
from ..names import canonical_name, normalize_name, python_tuple
from ..store.layout import find_entry

__all__ = ["ALIAS_ROOT", "Registry", "RoutedPackage", "REGISTRY"]

#: Every routed module lives in ``sys.modules`` under ``_envknit_v.<import name>__<version>``.
ALIAS_ROOT = "_envknit_v"

_NOT_IDENT = re.compile(r"[^0-9A-Za-z]")


@dataclass(frozen=True, kw_only=True, slots=True)
class RoutedPackage:
    """One installed (distribution, version) the router can load, read from its store entry."""

    dist: str
    version: str
    site_dir: Path
    dist_info: Path | None
    import_names: tuple[str, ...]
    extensions: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    #: ``_envknit_v.<namespace>`` is a namespace package whose ``__path__`` is ``site_dir``.
    namespace: str = ""
    #: import name -> its private name below the alias root (``mylib__1_0_0.mylib``).
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.dist, self.version)

    @property
    def main_import(self) -> str:
        """The import name ``use()`` returns (see ``envknit._dists.main_import``)."""
        return main_import(self.dist, self.import_names)


def read_package(
    dist: str, version: str, site: Path, dependencies: Iterable[str] = ()
) -> RoutedPackage:
    """Describe the installed ``dist==version`` whose files live in ``site``."""
    installed = read_installed(dist, site)
    names = installed.import_names
    namespace = f"{dist.replace('-', '_')}__{_NOT_IDENT.sub('_', version)}"
    return RoutedPackage(
        dist=dist,
        version=version,
        site_dir=site,
        dist_info=installed.dist_info,
        import_names=names,
        extensions=installed.extensions,
        dependencies=tuple(dependencies),
        namespace=namespace,
        aliases=MappingProxyType({n: f"{namespace}.{n}" for n in names}),
    )


class Registry:
    """The global, thread-safe table of routable packages (filled by ``configure_from_lock``).

    Readers take no lock: every table is replaced, never mutated, so a reader sees either the
    old or the new one (attribute rebinding is atomic).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.packages: Mapping[tuple[str, str], RoutedPackage] = {}
        #: distribution -> its installed versions, oldest first.
        self.by_dist: Mapping[str, tuple[str, ...]] = {}
        self.import_to_dist: Mapping[str, str] = {}
        self.by_namespace: Mapping[str, RoutedPackage] = {}
        self.envs: Mapping[str, Mapping[str, str]] = {}
        self.pkg_envs: Mapping[tuple[str, str], tuple[str, ...]] = {}
        self.defaults: Mapping[str, str] = {}
        self._closures: dict[tuple[str, str, str | None], Mapping[str, str]] = {}
        #: (name as asked, version as asked) -> (package, import name); makes use() cheap.
        self.lookups: dict[tuple[str, str], tuple[RoutedPackage, str]] = {}
        #: environment -> (its lock, the Python it targets)
        self.env_targets: Mapping[str, tuple[str, tuple[int, int]]] = {}
        #: (dist, version) -> its environment, when every environment that pins it targets
        #: another Python than this one (it loads here, but was resolved for that Python)
        self.other_python: Mapping[tuple[str, str], str] = {}
        #: (dist, version) -> its environment, when it is installed only for that
        #: environment's other Python (compiled for it): use() says so instead of "not installed"
        self.foreign: Mapping[tuple[str, str], str] = {}

    # -- reading -------------------------------------------------------------------------
    def dist_for(self, name: str) -> str | None:
        """The distribution called ``name`` (any spelling), or providing import name ``name``."""
        canonical = canonical_name(name)
        if canonical in self.by_dist:
            return canonical
        return self.import_to_dist.get(name)

    def versions(self, dist: str) -> list[str]:
        """Installed versions of ``dist``, oldest first."""
        return list(self.by_dist.get(dist, ()))

    def owner_pins(self, pkg: RoutedPackage, active_env: str | None) -> Mapping[str, str]:
        """The pins of the environment ``pkg`` belongs to (the active one if it is among them)."""
        envs = self.pkg_envs.get(pkg.key, ())
        if not envs:
            return {}
        env = active_env if active_env in envs else envs[0]
        return self.envs.get(env, {})

    def closure(self, pkg: RoutedPackage, active_env: str | None) -> Mapping[str, str]:
        """``pkg`` pinned together with its locked dependencies, transitively."""
        key = (pkg.dist, pkg.version, active_env)
        cache = self._closures  # the table of this moment: configure() may replace it meanwhile
        cached = cache.get(key)
        if cached is not None:
            return cached
        pins = self.owner_pins(pkg, active_env)
        result = {pkg.dist: pkg.version}
        todo = list(pkg.dependencies)
        while todo:
            dep = todo.pop()
            version = pins.get(dep)
            if dep in result or version is None:
                continue
            result[dep] = version
            dep_pkg = self.packages.get((dep, version))
            if dep_pkg is not None:
                todo.extend(dep_pkg.dependencies)
        frozen = MappingProxyType(result)
        cache[key] = frozen
        return frozen

    # -- writing -------------------------------------------------------------------------
    def set_default(self, dist: str, version: str | None) -> None:
        with self._lock:
            defaults = dict(self.defaults)
            if version is None:
                defaults.pop(dist, None)
            else:
                defaults[dist] = version
            self.defaults = defaults

    def configure(self, lock_path: str | os.PathLike[str], env: str | None) -> int:
        """Learn the installed packages of ``env`` (or every environment) of a lock.

        Locked packages without a complete store entry for the running Python are skipped,
        but stay pinned in their environment: importing them where that environment routes
        raises ``VersionNotInstalledError`` (which says to install) rather than falling back
        to some other copy.
        Returns how many distinct (name, version) pairs of this lock the router now knows.
        """
        path = Path(lock_path).resolve()
        lock = load_lock(path)
        names = [env] if env is not None else sorted(lock.environments)
        python = python_tuple(None)
        found: dict[tuple[str, str], RoutedPackage] = {}
        missing: set[str] = set()
        env_pins: dict[str, dict[str, str]] = {}
        targets: dict[str, tuple[str, tuple[int, int]]] = {}
        foreign: dict[tuple[str, str], str] = {}
        for env_name in names:
            locked = lock.environment(env_name)
            target = python_tuple(locked.python_version)
            targets[env_name] = (str(path), target)
            pins: dict[str, str] = {}
            for pkg in locked.selected():
                entry = find_entry(pkg.name, pkg.version, pkg.hashes, python)
                if entry is None:
                    pins[pkg.name] = pkg.version
                    missing.add(pkg.name)
                    if target != python and find_entry(pkg.name, pkg.version, pkg.hashes,
                                                       target) is not None:
                        foreign[(pkg.name, pkg.version)] = env_name
                    continue
                routed = self.packages.get((pkg.name, pkg.version)) or found.get(
                    (pkg.name, pkg.version)
                )
                if routed is None:
                    routed = read_package(
                        normalize_name(pkg.name), pkg.version, entry.site_dir, pkg.dependencies
                    )
                found[routed.key] = routed
                pins[routed.dist] = routed.version
            env_pins[env_name] = pins
        with self._lock:
            packages = dict(self.packages)
            packages.update(found)
            envs = dict(self.envs)
            envs.update({k: MappingProxyType(v) for k, v in env_pins.items()})
            pkg_envs: dict[tuple[str, str], tuple[str, ...]] = {}
            for env_name, env_map in envs.items():
                for dist, version in env_map.items():
                    pkg_envs[(dist, version)] = (*pkg_envs.get((dist, version), ()), env_name)
            import_to_dist = dict(self.import_to_dist)
            by_namespace = dict(self.by_namespace)
            for dist in missing:  # no dist-info to read: guess the usual import name
                import_to_dist.setdefault(dist.replace("-", "_"), dist)
            for routed in found.values():
                for name in routed.import_names:
                    import_to_dist[name] = routed.dist
                by_namespace[routed.namespace] = routed
            env_targets = {**self.env_targets, **targets}
            other_python = {
                key: envs_of[0] for key, envs_of in pkg_envs.items()
                if all(env_targets.get(e, ("", python))[1] != python for e in envs_of)
            }
            self.env_targets = env_targets
            self.other_python = other_python
            self.foreign = {**self.foreign, **foreign}
            by_dist: dict[str, list[str]] = {}
            for dist, version in packages:
                by_dist.setdefault(dist, []).append(version)
            # Lock versions are normalised PEP 440 (lock.py refuses others): Version sorts them.
            self.by_dist = {d: tuple(sorted(vs, key=Version)) for d, vs in by_dist.items()}
            self.packages = packages
            self.envs = envs
            self.pkg_envs = pkg_envs
            self.import_to_dist = import_to_dist
            self.by_namespace = by_namespace
            self._closures = {}
            self.lookups = {}
            _configured.add_lock(path)
        return len(found)


REGISTRY = Registry()
