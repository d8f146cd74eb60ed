"""Checking and cleaning the store: per-file verification, sizes, and garbage collection."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import EnvknitError
from ..lock import LockedEnvironment, load_lock
from ..names import python_tuple
from ._locking import clean_stale_builds, discard, entry_lock, locks_root
from .install import manifest
from .layout import KEY_LENGTH, Entry, find_entry, iter_entries
from .projects import registered_projects

__all__ = [
    "GcResult",
    "Problem",
    "collect_garbage",
    "entry_size",
    "leftover_builds",
    "tree_size",
    "verify_entry",
    "verify_environment",
]

ProblemKind = Literal["tampered", "missing", "added", "not installed"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    """One finding of ``verify``: what is wrong, with which package, and where."""

    kind: ProblemKind
    package: str
    path: str
    entry: Path | None = None  # the damaged store entry (None: the package has no entry)

    def __str__(self) -> str:
        return f"{self.kind}: {self.package}: {self.path}"


def verify_entry(entry: Entry) -> list[Problem]:
    """Compare an entry's files with its manifest (``__pycache__`` folders are ignored)."""
    label = f"{entry.name} {entry.version}"
    actual = manifest(entry.path)
    missing = [rel for rel in entry.files if rel not in actual]
    tampered = [rel for rel, sha in entry.files.items() if rel in actual and actual[rel] != sha]
    added = set(actual) - set(entry.files)
    kinds: list[tuple[ProblemKind, list[str]]] = [
        ("missing", sorted(missing)), ("tampered", sorted(tampered)), ("added", sorted(added))
    ]
    return [Problem(kind=kind, package=label, path=str(entry.path / rel), entry=entry.path)
            for kind, rels in kinds for rel in rels]


def verify_environment(
    env: LockedEnvironment, home: Path
) -> tuple[list[Entry], list[Problem]]:
    """Verify every entry ``env`` needs; a package without an entry is a problem too."""
    python = python_tuple(env.python_version)
    checked, problems = [], []
    for pkg in env.selected(include_dev=True):
        entry = find_entry(pkg.name, pkg.version, pkg.hashes, python, home)
        if entry is None:
            problems.append(Problem(kind="not installed", package=f"{pkg.name} {pkg.version}",
                                    path=f"run 'envknit install --env {env.name}'"))
            continue
        checked.append(entry)
        problems += verify_entry(entry)
    return checked, problems


def leftover_builds(home: Path) -> list[Path]:
    """Build directories of killed installs under ``store/.tmp`` (``gc`` removes them)."""
    return clean_stale_builds(home, dry_run=True)


def entry_size(entry: Entry) -> int:
    """Bytes used by the files of an entry."""
    return tree_size(entry.path)


def tree_size(root: Path) -> int:
    """Bytes used by the files under ``root``."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            try:
                total += os.lstat(os.path.join(dirpath, fname)).st_size
            except OSError:
                continue  # removed meanwhile
    return total


@dataclass(frozen=True, kw_only=True, slots=True)
class GcResult:
    """What gc removed (or would remove), what it kept, and why it refused, if it did."""

    removed: tuple[Entry, ...] = ()
    kept: int = 0
    freed: int = 0
    refused: tuple[str, ...] = ()
    leftovers: tuple[Path, ...] = ()  # build directories of killed installs (removed or not)
    leftover_size: int = 0


def _needed(home: Path) -> tuple[set[tuple[str, str, str]], list[str]]:
    needed: set[tuple[str, str, str]] = set()
    problems = []
    for reg in registered_projects(home):
        if reg.lock is None:
            problems.append(f"{reg.record}: unreadable project registration")
            continue
        if not reg.lock.is_file():
            problems.append(f"{reg.lock}: the lock of a registered project is missing")
            continue
        try:
            lock = load_lock(reg.lock)
        except EnvknitError as exc:
            problems.append(f"{reg.lock}: unreadable lock ({exc})")
            continue
        for env in lock.environments.values():
            for pkg in env.packages:
                for sha in pkg.hashes:
                    needed.add((pkg.name, pkg.version, sha))
    return needed, problems


def _stamp(home: Path) -> int:
    """Now, by the store's file-system clock (the one that dates entries)."""
    stamp = locks_root(home) / "gc.stamp"
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_bytes(b"")
    return stamp.stat().st_mtime_ns


def _finished_since(entry: Entry, started: int) -> bool:
    """Was ``entry`` completed or reused by an install after gc began?

    Such an install may work from a lock written after gc read it. (An install reads its lock,
    and registers its project, before it writes or dates an entry: an entry dated earlier was
    needed by a lock that gc read, or by an older one.)
    """
    try:
        # the directory's mtime: set when ENTRY.json, its last file, was written, and by
        # installs that reuse the entry
        return entry.path.stat().st_mtime_ns >= started
    except OSError:
        return True  # vanished or unreadable meanwhile: not ours to judge, leave it


def collect_garbage(home: Path, *, dry_run: bool = False) -> GcResult:
    """Remove entries that no registered project's lock needs.

    If any registered project's lock is missing or unreadable, nothing is removed: gc cannot
    tell what that project needs. Entries completed or reused by an install while gc runs are
    kept (that install may be using a lock written after gc read it).
    """
    started = _stamp(home)  # before any lock is read
    needed, problems = _needed(home)
    if problems:
        return GcResult(refused=tuple(problems))
    removed, kept, freed = [], 0, 0
    for entry in list(iter_entries(home)):
        if (entry.name, entry.version, entry.sha256) in needed or _finished_since(entry, started):
            kept += 1
            continue
        size = entry_size(entry)
        if not dry_run:
            with entry_lock(home, entry.name, entry.version, entry.sha256[:KEY_LENGTH]):
                if not entry.path.is_dir():
                    continue
                if _finished_since(entry, started):  # an install took it up meanwhile
                    kept += 1
                    continue
                discard(home, entry.path)
            for parent in (entry.path.parent, entry.path.parent.parent):
                try:
                    parent.rmdir()  # only succeeds when empty
                except OSError:
                    break
        removed.append(entry)
        freed += size
    leftovers = clean_stale_builds(home, dry_run=True)
    leftover_size = sum(tree_size(p) for p in leftovers)
    if not dry_run:
        leftovers = clean_stale_builds(home)
        from .verdicts import prune  # the C-extension verdicts of removed entries

        prune(home)
    return GcResult(removed=tuple(removed), kept=kept, freed=freed, leftovers=tuple(leftovers),
                    leftover_size=leftover_size)

