"""What the router knows: installed (distribution, version) pairs, their import names and envs."""

from __future__ import annotations

import _thread
import os
import sys
from types import MappingProxyType

from .. import _configured
from .._lockcache import Package, lock_table

# configure_from_lock() has a start-up budget (docs/benchmarks.md): on a cached lock it imports
# no yaml, packaging, dataclasses, pathlib or re; what only the type checker needs stays here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ALIAS_ROOT", "Registry", "RoutedPackage", "REGISTRY"]

#: Every routed module lives in ``sys.modules`` under ``_envknit_v.<import name>__<version>``.
ALIAS_ROOT = "_envknit_v"


def _namespace(dist: str, version: str) -> str:
    """``mylib__1_0_0``: the version with every character but ASCII letters and digits as _."""
    ident = "".join(c if c.isascii() and c.isalnum() else "_" for c in version)
    return f"{dist.replace('-', '_')}__{ident}"


class RoutedPackage:
    """One installed (distribution, version) the router can load, read from its store entry.

    Immutable by convention. A slotted class rather than a frozen dataclass: the dataclasses
    module (it imports inspect) would cost ``configure_from_lock`` more than all else it does.
    """

    __slots__ = ("aliases", "dependencies", "dist", "dist_info", "extensions", "import_names",
                 "namespace", "site_dir", "version")

    def __init__(
        self, *, dist: str, version: str, site_dir: str, dist_info: str | None,
        import_names: tuple[str, ...], extensions: tuple[str, ...] = (),
        dependencies: tuple[str, ...] = (), namespace: str = "",
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.dist = dist
        self.version = version
        #: the directory on the entry's sys.path (a string: no pathlib on this path)
        self.site_dir = site_dir
        self.dist_info = dist_info
        self.import_names = import_names
        self.extensions = extensions
        self.dependencies = dependencies
        #: ``_envknit_v.<namespace>`` is a namespace package whose ``__path__`` is ``site_dir``.
        self.namespace = namespace
        #: import name -> its private name below the alias root (``mylib__1_0_0.mylib``).
        self.aliases: Mapping[str, str] = aliases if aliases is not None else {}

    def __repr__(self) -> str:
        return f"RoutedPackage({self.dist!r}, {self.version!r}, site_dir={self.site_dir!r})"

    @property
    def key(self) -> tuple[str, str]:
        return (self.dist, self.version)

    @property
    def main_import(self) -> str:
        """The import name ``use()`` returns (see ``envknit._dists.main_import``)."""
        from .._dists import main_import

        return main_import(self.dist, self.import_names)


def _from_row(pkg: Package) -> RoutedPackage:
    """The router's view of a locked package that has a store entry for this Python."""
    site = os.path.join(pkg.entry, "site")
    namespace = _namespace(pkg.name, pkg.version)
    return RoutedPackage(
        dist=pkg.name,
        version=pkg.version,
        site_dir=site,
        dist_info=os.path.join(site, pkg.dist_info) if pkg.dist_info else None,
        import_names=pkg.import_names,
        extensions=pkg.extensions,
        dependencies=pkg.dependencies,
        namespace=namespace,
        aliases=MappingProxyType({n: f"{namespace}.{n}" for n in pkg.import_names}),
    )


def _release(version: str) -> tuple[int, ...] | None:
    """A plain release (``1.10.0``) as PEP 440 orders it (trailing zeros dropped), else None."""
    parts = version.split(".")
    if not all(p.isdigit() and p.isascii() for p in parts):
        return None
    numbers = [int(p) for p in parts]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def _sorted_versions(versions: list[str]) -> tuple[str, ...]:
    """``versions`` oldest first, as packaging's ``Version`` sorts them.

    Lock versions are normalised PEP 440 (lock.py refuses others). Plain releases are ordered
    here; anything else (pre, post, dev, local, epoch) loads packaging.
    """
    if len(versions) < 2:
        return tuple(versions)
    keys = [_release(v) for v in versions]
    if all(k is not None for k in keys):
        order = sorted(range(len(versions)), key=lambda i: keys[i] or ())
        return tuple(versions[i] for i in order)
    from packaging.version import Version

    return tuple(sorted(versions, key=Version))


class Registry:
    """The global, thread-safe table of routable packages (filled by ``configure_from_lock``).

    Readers take no lock: every table is replaced, never mutated, so a reader sees either the
    old or the new one (attribute rebinding is atomic).
    """

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
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
        from ..names import canonical_name  # use() by a name not seen yet: off the start-up path

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
        table = lock_table(lock_path, env)
        python = (sys.version_info.major, sys.version_info.minor)
        found: dict[tuple[str, str], RoutedPackage] = {}
        missing: set[str] = set()
        env_pins: dict[str, dict[str, str]] = {}
        targets: dict[str, tuple[str, tuple[int, int]]] = {}
        foreign: dict[tuple[str, str], str] = {}
        for locked in table.environments:
            major, minor = locked.python_version.split(".")[:2]
            targets[locked.name] = (table.lock, (int(major), int(minor)))
            pins: dict[str, str] = {}
            for pkg in locked.packages:
                if not pkg.entry:
                    pins[pkg.name] = pkg.version
                    missing.add(pkg.name)
                    if pkg.foreign:
                        foreign[(pkg.name, pkg.version)] = locked.name
                    continue
                key = (pkg.name, pkg.version)
                routed = self.packages.get(key) or found.get(key) or _from_row(pkg)
                found[routed.key] = routed
                pins[routed.dist] = routed.version
            env_pins[locked.name] = pins
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
            self.by_dist = {d: _sorted_versions(vs) for d, vs in by_dist.items()}
            self.packages = packages
            self.envs = envs
            self.pkg_envs = pkg_envs
            self.import_to_dist = import_to_dist
            self.by_namespace = by_namespace
            self._closures = {}
            self.lookups = {}
            _configured.add_lock(table.lock)
        return len(found)


REGISTRY = Registry()
