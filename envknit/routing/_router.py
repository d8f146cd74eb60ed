"""The import router: a ``builtins.__import__`` wrapper, an import_module hook, a finder."""

from __future__ import annotations

import builtins
import os
import sys
from _thread import RLock  # threading's own (C) RLock: threading costs start-up ~1.5 ms
from importlib.machinery import ModuleSpec

from ..errors import CExtensionError, StrictModeError, VersionNotInstalledError
from ._context import ACTIVE, current
from ._registry import ALIAS_ROOT, REGISTRY, RoutedPackage

# configure_from_lock() imports this module and has a start-up budget (docs/benchmarks.md):
# typing and collections.abc only for the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from importlib.metadata import Distribution, DistributionFinder
    from types import FrameType, ModuleType
    from typing import Any

# Each routed (distribution, version) is a private namespace package,
# ``_envknit_v.mylib__1_0_0``, over its store entry's site dir; its modules live in sys.modules
# only under names below it (``_envknit_v.mylib__1_0_0.mylib``), never under their plain names
# (except compiled packages imported from C, see _plain_spec). ``import mylib`` is
# answered by the __import__ wrapper from the caller's globals and the active context;
# importlib.import_module by a hook on importlib._bootstrap; importlib.metadata by the finder's
# find_distributions. Nothing is swapped per context.

__all__ = [
    "choose", "claim_compiled", "disable", "enable", "is_enabled", "load", "park_clear",
    "refresh", "resolve",
]

_PREFIX = ALIAS_ROOT + "."
# importlib's frozen bootstrap module (``importlib._bootstrap`` is ``_frozen_importlib``).
_bootstrap: Any = sys.modules["importlib._bootstrap"]

_LOCK = RLock()
_ENABLED = False
_STRICT = False
#: import name -> distribution, for every managed top-level name; ``{}`` while disabled so a
#: wrapper left in place by someone who wrapped ours stays a pure pass-through.
_MANAGED: Mapping[str, str] = {}
_next_import: Callable[..., ModuleType] = builtins.__import__
_orig_gcd_import: Callable[..., ModuleType] = _bootstrap._gcd_import
#: alias modules taken out of sys.modules by disable(), put back by enable().
_PARKED: dict[str, ModuleType] = {}
#: distribution -> the one version with compiled extensions loaded by routed imports.
_COMPILED: dict[str, str] = {}
#: plain names put in sys.modules for compiled packages imported from C (see _PlainLoader).
_PLAIN: set[str] = set()


# -- which version -------------------------------------------------------------------------
def _owner(globals_: Mapping[str, Any] | None) -> RoutedPackage | None:
    """The routed package whose code owns ``globals_`` (a module under the alias root)."""
    if not globals_:
        return None
    name = globals_.get("__name__")
    if type(name) is not str or not name.startswith(_PREFIX):
        return None
    return REGISTRY.by_namespace.get(name[len(_PREFIX) :].partition(".")[0])


def resolve(dist: str, globals_: Mapping[str, Any] | None) -> RoutedPackage | None:
    """The version of ``dist`` that code with ``globals_`` gets, or None if nothing says.

    Order: the environment of the package whose code imports (transitive routing, also for
    lazy imports after the block ended), then the active context, then ``set_default()``.
    """
    active = ACTIVE.get()
    if active.ended[0]:  # its block exited in another context: skip to what is still open
        active = current()
    owner = _owner(globals_)
    version = None
    if owner is not None:
        if owner.dist == dist:
            return owner
        version = REGISTRY.owner_pins(owner, active.env).get(dist)
    if version is None:
        version = active.pins.get(dist) or REGISTRY.defaults.get(dist)
    if version is None:
        return None
    pkg = REGISTRY.packages.get((dist, version))
    if pkg is None:  # locked in the environment that routes here, but not installed
        raise VersionNotInstalledError(dist, version, REGISTRY.versions(dist))
    return pkg


def choose(
    dist: str, import_name: str, globals_: Mapping[str, Any] | None
) -> RoutedPackage | None:
    """Like ``resolve``; with no answer, strict mode raises and otherwise the import is left
    to the normal import system (None). A package with compiled extensions is loaded by
    routed imports at most in one version per process (see ``claim_compiled``)."""
    pkg = resolve(dist, globals_)
    if pkg is None:
        if _STRICT:
            raise StrictModeError(import_name, REGISTRY.versions(dist))
        return None
    if pkg.extensions:
        claim_compiled(pkg)
    return pkg


def claim_compiled(pkg: RoutedPackage) -> None:
    """Allow ``pkg`` (which has compiled extensions) in-process if it is the first version of
    its distribution to be; a second version raises ``CExtensionError``.

    Extension modules share process-wide C state and cannot be unloaded, so two versions of
    one cannot live side by side; one version, imported as a dependency of a routed pure
    package (``requests`` -> ``charset-normalizer``), is fine.
    """
    loaded = _COMPILED.get(pkg.dist)
    if loaded is None:
        with _LOCK:
            loaded = _COMPILED.setdefault(pkg.dist, pkg.version)
    if loaded != pkg.version:
        raise CExtensionError(pkg.dist, pkg.version, pkg.extensions)


def load(pkg: RoutedPackage, import_name: str, rest: str = "") -> ModuleType:
    """Import ``import_name[.rest]`` of ``pkg`` under its alias and return the leaf module."""
    full = _PREFIX + pkg.aliases[import_name] + ("." + rest if rest else "")
    module = sys.modules.get(full)
    # Fast path for a loaded module; one still initialising (another thread is importing it)
    # goes through the import system, which waits on the module lock.
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        module = _orig_gcd_import(full)
    return module


_INTERNAL = ("importlib", "envknit.routing")


def _walk_out(frame: FrameType | None) -> tuple[FrameType | None, bool]:
    """The first frame from ``frame`` outwards whose code is neither importlib's nor ours, and
    whether ``importlib.util.find_spec`` was on the way (a probe, not an import)."""
    probing = False
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if not (isinstance(name, str) and name.startswith(_INTERNAL)):
            return frame, probing
        probing = probing or (name == "importlib.util" and frame.f_code.co_name == "find_spec")
        frame = frame.f_back
    return None, probing


def _caller_globals() -> Mapping[str, Any] | None:
    """Globals of the first frame outside importlib and envknit.routing (for import_module)."""
    frame, _ = _walk_out(sys._getframe(2))
    return frame.f_globals if frame is not None else None


# -- the hooks -----------------------------------------------------------------------------
def _routed_import(
    name: str, globals_: Mapping[str, Any] | None, fromlist: Any
) -> ModuleType:
    top, _, rest = name.partition(".")
    dist = _MANAGED.get(top)
    if dist is None:
        return _next_import(name, globals_, None, fromlist, 0)
    importer = globals_
    caller = globals_.get("__name__") if globals_ else None
    if not isinstance(caller, str) or caller.startswith("importlib"):
        # C code (an extension module's init, PyImport_ImportModule) imports with the globals
        # of the innermost Python frame, which is importlib loading that extension: the code
        # that really imports is the first frame outside importlib.
        importer = _caller_globals()
    pkg = choose(dist, top, importer)
    if pkg is None:
        return _next_import(name, globals_, None, fromlist, 0)
    alias_top = _PREFIX + pkg.aliases[top]
    if fromlist:
        # The plain import machinery returns the leaf and handles ``from x import submodule``.
        return _next_import(alias_top + ("." + rest if rest else ""), None, None, fromlist, 0)
    leaf = load(pkg, top, rest)
    return sys.modules[alias_top] if rest else leaf


def _import(
    name: str,
    globals: Mapping[str, Any] | None = None,  # the builtin's own signature
    locals: Mapping[str, Any] | None = None,
    fromlist: Any = (),
    level: int = 0,
) -> ModuleType:
    """``builtins.__import__`` while the router is enabled; cheap for unmanaged names."""
    if level == 0 and (
        name in _MANAGED or ("." in name and name.partition(".")[0] in _MANAGED)
    ):
        return _routed_import(name, globals, fromlist)
    return _next_import(name, globals, locals, fromlist, level)


def _gcd_import(name: str, package: str | None = None, level: int = 0) -> ModuleType:
    """Stands in for ``importlib._bootstrap._gcd_import`` (what ``import_module`` calls).

    Private CPython API, present with this signature in 3.10-3.14: routing it is what makes
    ``importlib.import_module("mylib")`` agree with ``import mylib`` without ever putting a
    versioned module under its plain name in ``sys.modules``.
    """
    if _MANAGED:
        absname = _bootstrap._resolve_name(name, package, level) if level > 0 else name
        top, _, rest = absname.partition(".")
        dist = _MANAGED.get(top)
        pkg = choose(dist, top, _caller_globals()) if dist is not None else None
        if pkg is not None:
            return load(pkg, top, rest)
    return _orig_gcd_import(name, package, level)


if TYPE_CHECKING:
    from importlib.abc import Loader as _LoaderBase
else:
    _LoaderBase = object


class _PlainLoader(_LoaderBase):
    """Loads a plain name (``charset_normalizer.md``) as the already-routed module.

    Not an ``importlib.abc.Loader`` subclass: importing importlib.abc loads importlib.resources
    (tempfile, inspect: ~10 ms of every ``configure_from_lock``); the import system needs only
    these two methods. The type checker sees the ``Loader`` it is.
    """

    def __init__(self, pkg: RoutedPackage, top: str, rest: str) -> None:
        self._target = (pkg, top, rest)

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # the default module; exec_module replaces it

    def exec_module(self, module: ModuleType) -> None:
        real = load(*self._target)
        # The import system returns what sys.modules holds under the name after exec_module
        # (documented: a module may replace itself), so the throwaway module is never used.
        sys.modules[module.__name__] = real
        _PLAIN.add(module.__name__)


def _probing() -> bool:
    """True if the meta path is being asked by ``importlib.util.find_spec`` (not an import)."""
    return _walk_out(sys._getframe(2))[1]


def _plain_spec(fullname: str) -> ModuleSpec | None:
    """A spec for a plain managed name that reached the meta path (the wrappers did not see it).

    That happens when C code imports with ``PyImport_ImportModuleLevelObject`` (Cython 3,
    mypyc), which bypasses ``builtins.__import__``. A package with compiled extensions exists
    in at most one version per process, so its plain name may point at that version without
    leaking a version across contexts. A pure package is never loaded under its plain name:
    ``importlib.util.find_spec`` gets a description of the routed version's files, imports
    get the normal import system.
    """
    top, _, rest = fullname.partition(".")
    dist = _MANAGED.get(top)
    if dist is None:
        return None
    version = _COMPILED.get(dist)
    pkg = (
        REGISTRY.packages.get((dist, version))
        if version is not None
        else resolve(dist, _caller_globals())
    )
    if pkg is None:
        return None
    if pkg.extensions:
        claim_compiled(pkg)
        return ModuleSpec(fullname, _PlainLoader(pkg, top, rest))
    if rest or not _probing():  # a submodule's probe is answered through its parent's path
        return None
    # here, not at import: importlib.util is part of configure_from_lock's start-up otherwise
    # (with contextlib, functools and warnings before 3.12); a probe has imported it already
    from importlib.util import spec_from_file_location

    pkg_dir = os.path.join(pkg.site_dir, top)
    init = os.path.join(pkg_dir, "__init__.py")
    if os.path.isfile(init):
        return spec_from_file_location(fullname, init, submodule_search_locations=[pkg_dir])
    if os.path.isdir(pkg_dir):
        spec = ModuleSpec(fullname, None, is_package=True)
        spec.submodule_search_locations = [pkg_dir]
        return spec
    single = os.path.join(pkg.site_dir, f"{top}.py")
    return spec_from_file_location(fullname, single) if os.path.isfile(single) else None


class _Finder:
    """Finds the alias modules, and answers ``importlib.metadata`` for managed names.

    A meta path finder and a ``DistributionFinder`` by protocol (importlib only looks for the
    methods), so that importing envknit does not import ``importlib.metadata``.
    """

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith(ALIAS_ROOT):
            return _plain_spec(fullname) if _MANAGED else None
        if fullname == ALIAS_ROOT:
            spec = ModuleSpec(ALIAS_ROOT, None, is_package=True)
            spec.submodule_search_locations = []
            return spec
        head, dot, _ = fullname[len(_PREFIX) :].partition(".")
        if dot or not fullname.startswith(_PREFIX):
            return None  # deeper names are found through their parent's __path__
        pkg = REGISTRY.by_namespace.get(head)
        if pkg is None:
            return None
        # One namespace package per (distribution, version) whose __path__ is the entry's
        # site dir: the normal path finder then finds its modules (packages, single files,
        # extension modules, whose PyInit_<name> needs the last name component unchanged).
        spec = ModuleSpec(fullname, None, is_package=True)
        spec.submodule_search_locations = [pkg.site_dir]
        return spec

    def find_distributions(
        self, context: DistributionFinder.Context | None = None
    ) -> Iterable[Distribution]:
        name = context.name if context is not None else None
        if not name or not _ENABLED:
            return ()
        from ..names import canonical_name

        canonical = canonical_name(name)
        if canonical not in REGISTRY.by_dist:
            return ()
        pkg = resolve(canonical, _caller_globals())
        if pkg is None or pkg.dist_info is None:
            return ()
        from importlib.metadata import PathDistribution  # loaded: it is the one asking
        from pathlib import Path  # loaded by importlib.metadata

        return (PathDistribution(Path(pkg.dist_info)),)

    def invalidate_caches(self) -> None:
        pass


_FINDER = _Finder()


# -- switching on and off ------------------------------------------------------------------
def is_enabled() -> bool:
    return _ENABLED


def refresh() -> None:
    """Pick up names that ``configure_from_lock`` added while enabled."""
    global _MANAGED
    with _LOCK:
        _MANAGED = REGISTRY.import_to_dist if _ENABLED else {}


def enable(strict: bool = False) -> None:
    """Install the router (idempotent): a ``builtins.__import__`` wrapper, a finder at the
    front of ``sys.meta_path``, and a wrapper of ``importlib._bootstrap._gcd_import`` so that
    ``importlib.import_module`` routes too. With ``strict=True`` a plain import of a managed
    package outside any block (and with no ``set_default()``) raises ``StrictModeError``.

    Rides on private CPython APIs, each unchanged in 3.10-3.14: ``importlib._bootstrap``'s
    ``_gcd_import`` (wrapped) and ``_resolve_name``, the ``ModuleSpec._initializing`` flag
    (a module still being imported by another thread), and ``sys._getframe`` (who imports,
    for ``import_module`` and ``importlib.metadata``).
    """
    global _ENABLED, _STRICT, _MANAGED, _next_import, _orig_gcd_import
    with _LOCK:
        _STRICT = strict
        if not _ENABLED:
            if _FINDER not in sys.meta_path:
                sys.meta_path.insert(0, _FINDER)
            for key, module in _PARKED.items():
                if not key.startswith(ALIAS_ROOT):
                    _PLAIN.add(key)
                sys.modules.setdefault(key, module)
            _PARKED.clear()
            if builtins.__import__ is not _import:
                _next_import = builtins.__import__
                builtins.__import__ = _import
            if _bootstrap._gcd_import is not _gcd_import:
                _orig_gcd_import = _bootstrap._gcd_import
                _bootstrap._gcd_import = _gcd_import
            _ENABLED = True
        _MANAGED = REGISTRY.import_to_dist


def disable() -> None:
    """Remove the router: ``sys.meta_path``, ``builtins.__import__`` and the alias modules in
    ``sys.modules`` go back to how they were before ``enable()``."""
    global _ENABLED, _STRICT, _MANAGED
    with _LOCK:
        if not _ENABLED:
            return
        _MANAGED = {}
        _ENABLED = False
        _STRICT = False
        if builtins.__import__ is _import:
            builtins.__import__ = _next_import
        # else: someone wrapped our wrapper; it stays as a pass-through (_MANAGED is empty).
        if _bootstrap._gcd_import is _gcd_import:
            _bootstrap._gcd_import = _orig_gcd_import
        while _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        for key in list(sys.modules):
            if key == ALIAS_ROOT or key.startswith(_PREFIX) or key in _PLAIN:
                _PARKED[key] = sys.modules.pop(key)
        _PLAIN.clear()


def park_clear() -> None:
    """Forget parked alias modules and loaded compiled versions (tests)."""
    with _LOCK:
        _PARKED.clear()
        _COMPILED.clear()
        _PLAIN.clear()
