"""What a lock's environments hold in the store for this Python, cached per lock file.

``configure_from_lock()`` needs, for every locked package, its store entry for the running
Python (or that there is none) and what the entry installed (import names, compiled files).
Working that out through the lock model, packaging and ``store.layout`` costs ~60 ms of
imports in a fresh process; ``_lockfast`` works it out with os and str for the locks and
entries envknit writes (declining anything else to those models). An unchanged lock over an
unchanged store gives the same answer, so the answer is kept under ``$ENVKNIT_HOME/cache``
(``routes-*.txt``) and a fresh process that finds it valid reads neither.

The cache is trusted only as far as it is checked, since it feeds ``sys.path``: it is
NUL-separated text (no path or name can hold a NUL; no json, whose ``re`` and ``enum`` cost
~3 ms); it names the format, envknit's version, the Python build, ``ENVKNIT_HOME``, the lock's
real path and a checksum of the lock's bytes (zlib: hashlib's import alone costs ~3 ms); every
store directory whose contents decide the answer is listed with its mtime (installing or
removing an entry changes its version directory); every entry routed to must still be complete
and lie where the store would put it. Anything else (a corrupt or foreign file, a changed
lock, a changed store) is a miss: the answer is worked out again and the file rewritten.
"""

from __future__ import annotations

import os
import sys
import time
import zlib

from ._version import __version__
from ._where import home as _home

# The hit path has a start-up budget (tests/test_import_budget.py): no typing, pathlib,
# dataclasses or re here; the slow path imports what it needs when it runs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .lock import LockedEnvironment
    from .store.layout import Entry

__all__ = ["Environment", "Package", "Table", "cache_path", "environment_entries", "lock_table"]

_FORMAT = "envknit-routes 1"
#: A directory modified this recently (ns) may change again within the same timestamp tick
#: unnoticed (coarse file-system clocks): its answer is not saved (the next process saves it).
_RACY_NS = 2_000_000_000
_KEY_LENGTH = 16  # store.layout.KEY_LENGTH: the entry directory's name


class Package:
    """One locked package and where the store holds it for the running Python."""

    __slots__ = ("dependencies", "dist_info", "entry", "extensions", "foreign", "import_names",
                 "name", "version")

    # Plain slotted classes, not dataclasses: the dataclasses module (it imports inspect)
    # would cost the cached path more than everything else it does.
    def __init__(
        self, *, name: str, version: str, dependencies: tuple[str, ...], entry: str,
        foreign: bool, dist_info: str, import_names: tuple[str, ...],
        extensions: tuple[str, ...],
    ) -> None:
        self.name = name
        self.version = version
        self.dependencies = dependencies
        #: the complete store entry for this Python; "" when there is none
        self.entry = entry
        #: not installed for this Python, but for the environment's (another) target Python
        self.foreign = foreign
        #: the dist-info directory's name inside ``site`` ("" when there is none)
        self.dist_info = dist_info
        self.import_names = import_names
        self.extensions = extensions

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Package) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable slots: not hashable

    def __repr__(self) -> str:
        return f"Package({self.name!r}, {self.version!r}, entry={self.entry!r})"


class Environment:
    """One environment of the lock: its target Python and its packages, sorted by name."""

    __slots__ = ("name", "packages", "python_version")

    def __init__(self, *, name: str, python_version: str, packages: tuple[Package, ...]) -> None:
        self.name = name
        self.python_version = python_version
        self.packages = packages

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Environment) and (
            (self.name, self.python_version, self.packages)
            == (other.name, other.python_version, other.packages)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Environment({self.name!r}, {self.python_version!r}, {len(self.packages)} packages)"


class Table:
    """The environments asked for (every one, or one) of the lock at ``lock`` (a real path)."""

    __slots__ = ("environments", "lock")

    def __init__(self, *, lock: str, environments: tuple[Environment, ...]) -> None:
        self.lock = lock
        self.environments = environments

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (
            (self.lock, self.environments) == (other.lock, other.environments)
        )

    __hash__ = None  # type: ignore[assignment]


# -- keys -------------------------------------------------------------------------------------
def _python_key() -> str:
    """The running Python build: which entries fit it (ABI, platform tags) depends on it."""
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):  # not glibc, or no confstr (Windows)
        libc = ""
    return "|".join((sys.version, sys.platform, sys.implementation.cache_tag or "",
                     getattr(sys, "abiflags", ""), libc))


def _selection(env: str | None) -> str:
    return "*" if env is None else "=" + env


def cache_path(home: str, lock: str, env: str | None) -> str:
    """The cache file of (``lock``, ``env`` or every environment, this Python) under ``home``."""
    key = zlib.crc32(f"{lock}\0{_selection(env)}\0{_python_key()}".encode())
    return os.path.join(home, "cache", f"routes-{key:08x}.txt")


def _checksum(lock: str) -> str | None:
    """Size and checksums of the lock's bytes (None if it cannot be read)."""
    try:
        with open(lock, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return f"{len(data)} {zlib.crc32(data):08x} {zlib.adler32(data):08x}"


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


# -- reading ----------------------------------------------------------------------------------
def _is_name(text: str) -> bool:
    """A canonical distribution name or a normalised version: no separator, no dot-dot."""
    return bool(text) and "/" not in text and "\\" not in text and text not in (".", "..")


def _is_python_version(text: str) -> bool:
    """``3.12`` or ``3.12.1`` (what the lock model accepts), without re."""
    parts = text.split(".")
    return 2 <= len(parts) <= 3 and all(p.isascii() and p.isdigit() for p in parts)


def _is_import_name(text: str) -> bool:
    """``[0-9A-Za-z_]+`` (what ``_dists`` keeps), without re."""
    return text.isascii() and text.replace("_", "a").isalnum()


def _entry_ok(store: str, pkg: Package) -> bool:
    """``pkg.entry`` is where the store puts entries of ``pkg`` and is still complete."""
    parent, key = os.path.split(pkg.entry)
    if (parent != os.path.join(store, pkg.name, pkg.version) or len(key) != _KEY_LENGTH
            or not all(c in "0123456789abcdef" for c in key)):
        return False
    if pkg.dist_info and (not pkg.dist_info.endswith(".dist-info") or not _is_name(pkg.dist_info)):
        return False
    if not all(_is_import_name(n) for n in pkg.import_names):
        return False
    # what store.layout.read_entry requires of a complete entry (gc or a hand may remove it)
    return (os.path.isdir(os.path.join(pkg.entry, "site"))
            and os.path.isfile(os.path.join(pkg.entry, "ENTRY.json")))


class _Fields:
    """A cursor over the cache's fields; any malformation raises ``ValueError``."""

    def __init__(self, fields: list[str]) -> None:
        self._fields = fields
        self._at = 0

    def take(self) -> str:
        if self._at >= len(self._fields):
            raise ValueError("truncated")
        self._at += 1
        return self._fields[self._at - 1]

    def count(self) -> int:
        text = self.take()
        if not text.isdigit():
            raise ValueError(f"not a count: {text!r}")
        return int(text)

    def many(self) -> tuple[str, ...]:
        return tuple(self.take() for _ in range(self.count()))

    def done(self) -> bool:
        return self._at == len(self._fields)


def _parse(text: str, header: list[str], home: str) -> Table | None:
    """The table ``_dump`` wrote with this ``header``, if the store still matches it."""
    fields = _Fields(text.split("\0"))
    for expected in header:
        if fields.take() != expected:
            return None
    watched = set()
    for _ in range(fields.count()):
        path, mtime = fields.take(), fields.take()
        if str(_mtime(path)) != mtime:
            return None
        watched.add(path)
    lock = header[4]
    store = os.path.join(home, "store")
    envs = []
    for _ in range(fields.count()):
        env_name, python_version = fields.take(), fields.take()
        if not _is_python_version(python_version):
            return None
        packages = []
        for _ in range(fields.count()):
            pkg = Package(
                name=fields.take(), version=fields.take(), entry=fields.take(),
                foreign=fields.take() == "1", dist_info=fields.take(),
                dependencies=fields.many(), import_names=fields.many(), extensions=fields.many(),
            )
            if not _is_name(pkg.name) or not _is_name(pkg.version):
                return None
            if os.path.join(store, pkg.name, pkg.version) not in watched:
                return None  # a change there would go unnoticed
            if pkg.entry and not _entry_ok(store, pkg):
                return None
            packages.append(pkg)
        envs.append(Environment(name=env_name, python_version=python_version,
                                packages=tuple(packages)))
    if not fields.done():
        return None
    return Table(lock=lock, environments=tuple(envs))


def _header(home: str, lock: str, env: str | None, checksum: str) -> list[str]:
    return [_FORMAT, __version__, _python_key(), home, lock, _selection(env), checksum]


def _dump(header: list[str], watched: dict[str, int], table: Table) -> str:
    fields = [*header, str(len(watched))]
    for path, mtime in watched.items():
        fields += [path, str(mtime)]
    fields.append(str(len(table.environments)))
    for env in table.environments:
        fields += [env.name, env.python_version, str(len(env.packages))]
        for pkg in env.packages:
            fields += [pkg.name, pkg.version, pkg.entry, "1" if pkg.foreign else "0",
                       pkg.dist_info]
            for many in (pkg.dependencies, pkg.import_names, pkg.extensions):
                fields += [str(len(many)), *many]
    return "\0".join(fields)


def _load(cache: str, header: list[str], home: str) -> Table | None:
    try:
        with open(cache, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, ValueError):  # ValueError: not UTF-8
        return None
    try:
        return _parse(text, header, home)
    except ValueError:  # malformed: a counted field missing or not a count
        return None


# -- working it out ---------------------------------------------------------------------------
def _environment(env: LockedEnvironment, home: str) -> Environment:
    """Find each package of ``env`` in the store for the running Python (the slow path)."""
    from pathlib import Path

    from ._dists import read_installed
    from .names import python_tuple
    from .store.layout import find_entry

    python = python_tuple(None)
    target = python_tuple(env.python_version)
    store_home = Path(home)
    packages = []
    for pkg in env.selected():
        entry = find_entry(pkg.name, pkg.version, pkg.hashes, python, store_home)
        foreign = False
        dist_info = ""
        import_names: tuple[str, ...] = ()
        extensions: tuple[str, ...] = ()
        if entry is None:
            foreign = target != python and find_entry(
                pkg.name, pkg.version, pkg.hashes, target, store_home) is not None
        else:
            installed = read_installed(pkg.name, entry.site_dir)
            dist_info = installed.dist_info.name if installed.dist_info is not None else ""
            import_names, extensions = installed.import_names, installed.extensions
        packages.append(Package(
            name=pkg.name, version=pkg.version, dependencies=pkg.dependencies,
            entry=str(entry.path) if entry is not None else "", foreign=foreign,
            dist_info=dist_info, import_names=import_names, extensions=extensions,
        ))
    return Environment(name=env.name, python_version=env.python_version,
                       packages=tuple(packages))


def _watch(home: str, table: Table) -> dict[str, int]:
    """The directories whose change could change ``table``, with their mtimes (-1: absent).

    Per package its version directory: an entry built or removed there changes its mtime, and
    one made where there was none makes it exist.
    """
    store = os.path.join(home, "store")
    return {path: _mtime(path) for path in dict.fromkeys(
        os.path.join(store, pkg.name, pkg.version)
        for env in table.environments for pkg in env.packages)}


def _tags_fit(tags: tuple[str, ...], python: tuple[int, int]) -> bool:
    """``store.layout.Entry.compatible_with`` for tags that are not pure Python."""
    from packaging.tags import parse_tag

    from .store.layout import tag_ranks

    ranks = tag_ranks(python)
    return any(str(tag) in ranks for text in tags for tag in parse_tag(text))


def _build_fast(lock: str, env: str | None, home: str) -> Table:
    """``_build`` for a lock in envknit's own layout, without the lock model or pathlib (and
    packaging only for compiled entries); ``_lockfast.Decline`` for anything else."""
    from ._lockfast import Decline, entry_dir, installed, lock_packages
    from ._lockread import parse_lock_text
    from ._textfile import read_text
    from .errors import LockError, UnknownEnvironmentError

    if os.path.normpath(home) != home:
        raise Decline  # find_entry's paths are pathlib's spelling of it
    text = read_text(lock, LockError, what="lock file", missing_hint="run 'envknit lock'")
    data = parse_lock_text(text)
    if data is None:
        raise Decline
    locked = lock_packages(data)
    if env is not None and env not in locked:
        raise UnknownEnvironmentError(env, sorted(locked))
    python = (sys.version_info.major, sys.version_info.minor)
    store = os.path.join(home, "store")
    envs = []
    for name in [env] if env is not None else sorted(locked):
        python_version, selected = locked[name]
        major, minor = python_version.split(".")[:2]
        target = (int(major), int(minor))
        packages = []
        for pkg_name, version, dependencies, hashes in selected:
            entry = entry_dir(store, pkg_name, version, hashes, python, fits=_tags_fit)
            foreign = False
            dist_info = ""
            import_names: tuple[str, ...] = ()
            extensions: tuple[str, ...] = ()
            if not entry:
                foreign = target != python and entry_dir(
                    store, pkg_name, version, hashes, target, fits=_tags_fit) != ""
            else:
                dist_info, import_names, extensions = installed(
                    pkg_name, os.path.join(entry, "site"))
            packages.append(Package(
                name=pkg_name, version=version, dependencies=dependencies, entry=entry,
                foreign=foreign, dist_info=dist_info, import_names=import_names,
                extensions=extensions,
            ))
        envs.append(Environment(name=name, python_version=python_version,
                                packages=tuple(packages)))
    return Table(lock=lock, environments=tuple(envs))


def _build(lock: str, env: str | None, home: str) -> Table:
    from ._lockfast import Decline

    try:
        return _build_fast(lock, env, home)
    except Decline:
        pass  # not plainly valid or not plain: the models read it (and name what is wrong)
    from .lock import load_lock

    locked = load_lock(lock)
    names = [env] if env is not None else sorted(locked.environments)
    envs = tuple(_environment(locked.environment(name), home) for name in names)
    return Table(lock=lock, environments=envs)


def _save(cache: str, text: str) -> None:
    from ._atomic import atomic_write_text

    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        atomic_write_text(cache, text)
    except OSError:
        pass  # a cache that cannot be written (read-only home) only costs the next process


def lock_table(lock_path: str | os.PathLike[str], env: str | None = None) -> Table:
    """What ``env`` (or every environment) of the lock at ``lock_path`` holds in the store.

    From the cache when it is valid; otherwise read from the lock and the store (raising what
    ``load_lock`` and ``Lock.environment`` raise) and saved for the next process.
    """
    lock = os.path.realpath(lock_path)
    home = _home()
    checksum = _checksum(lock)
    cache = cache_path(home, lock, env)
    if checksum is not None:
        header = _header(home, lock, env, checksum)
        table = _load(cache, header, home)
        if table is not None:
            return table
    started = time.time_ns()
    table = _build(lock, env, home)
    watched = _watch(home, table)
    after = _checksum(lock)
    if (checksum is not None and after == checksum
            and all(m < started - _RACY_NS for m in watched.values())):
        _save(cache, _dump(_header(home, lock, env, checksum), watched, table))
    return table


def environment_entries(
    lock_path: str | os.PathLike[str], env_name: str, *, stacklevel: int = 2
) -> list[Entry]:
    """The store entries of ``env_name`` for the running Python, sorted by name (Gen 2).

    What ``_target.check_target`` and ``store.paths.environment_entries(python=running)`` do
    (``TargetPythonError`` or ``TargetPythonWarning`` for an environment locked for another
    Python, then ``EntryMissingError`` for a package not installed), from the table.
    """
    from pathlib import Path

    from ._target import TargetMismatch, report_mismatch
    from .errors import EntryMissingError
    from .store.layout import read_entry

    (env,) = lock_table(lock_path, env_name).environments
    running = (sys.version_info.major, sys.version_info.minor)
    major, minor = env.python_version.split(".")[:2]
    target = (int(major), int(minor))
    if target != running:
        foreign = tuple(f"{p.name} {p.version}" for p in env.packages if p.foreign)
        report_mismatch(TargetMismatch(env=env.name, lock_path=os.fspath(lock_path),
                                       target=target, running=running, foreign=foreign),
                        stacklevel=stacklevel + 1)
    entries = []
    for pkg in env.packages:
        entry = read_entry(Path(pkg.entry)) if pkg.entry else None
        if entry is None:
            raise EntryMissingError(pkg.name, pkg.version, env=env.name)
        entries.append(entry)
    return entries
