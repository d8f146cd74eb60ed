"""File locks (fcntl) for store writers, and the temporary directories entries are built in.

A writer of an entry holds ``locks/<name>-<version>-<key>.lock``. A build directory under
``store/.tmp`` is held by an exclusive lock on the directory itself for as long as its builder
lives; the lock dies with the process (even under SIGKILL), which is how a cleaner tells a
stale directory from a live one. ``locks/tmp.lock`` closes the window between creating a build
directory and locking it: builders hold it shared for that moment, cleaners exclusively.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["build_dir", "clean_stale_builds", "discard", "entry_lock", "locks_root", "tmp_root"]


def locks_root(home: Path) -> Path:
    return home / "locks"


def tmp_root(home: Path) -> Path:
    return home / "store" / ".tmp"


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def entry_lock(
    home: Path, name: str, version: str, key: str, *, shared: bool = False
) -> contextlib.AbstractContextManager[None]:
    """Serialise writers (install, gc) of one entry; ``shared`` for an install reusing it.

    Names are already validated.
    """
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    return _flock(locks_root(home) / f"{name}-{version}-{key}.lock", mode)


@contextlib.contextmanager
def build_dir(home: Path) -> Iterator[Path]:
    """A fresh directory under ``store/.tmp``, locked while in use and removed afterwards.

    If the caller renamed it into place, there is nothing left to remove.
    """
    root = tmp_root(home)
    root.mkdir(parents=True, exist_ok=True)
    path = root / os.urandom(16).hex()
    with _flock(locks_root(home) / "tmp.lock", fcntl.LOCK_SH):
        path.mkdir()
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield path
    finally:
        os.close(fd)
        _rmtree(path)


def _rmtree(path: Path) -> None:
    """Remove the directory ``path``; what is left of a finished build goes without shutil.

    A build directory that did its job holds empty folders and uv's ``.lock`` file: they are
    removed here (symbolic links unlinked, never followed). Anything deeper goes to
    ``shutil.rmtree``, imported only then: it loads zlib, bz2 and lzma (~1.5 ms).
    """
    try:
        with os.scandir(path) as children:
            for child in children:
                if not child.is_dir(follow_symlinks=False):
                    os.unlink(child.path)
                    continue
                with os.scandir(child.path) as inner:
                    for item in inner:
                        if item.is_dir(follow_symlinks=False):
                            raise IsADirectoryError(item.path)  # deeper: shutil's job
                        os.unlink(item.path)
                os.rmdir(child.path)
        os.rmdir(path)
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def discard(home: Path, path: Path) -> None:
    """Remove the directory ``path`` of the store: gone at once (one rename), deleted after.

    Readers never see it half-deleted; if the deletion is interrupted, the next
    ``clean_stale_builds`` finishes it.
    """
    with build_dir(home) as trash:
        os.rename(path, trash / "old")
        _rmtree(trash / "old")


def clean_stale_builds(home: Path, *, dry_run: bool = False) -> list[Path]:
    """Remove build directories whose builder is gone (killed installs); return them.

    With ``dry_run``, only find them (``doctor``, ``store gc --dry-run``).
    """
    root = tmp_root(home)
    if not root.is_dir():
        return []
    removed = []
    with _flock(locks_root(home) / "tmp.lock", fcntl.LOCK_EX):
        for child in sorted(root.iterdir()):
            try:
                fd = os.open(child, os.O_RDONLY)
            except OSError:
                continue  # vanished meanwhile, or not something we can open: leave it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live builder holds it
            try:
                if dry_run:
                    pass
                elif child.is_dir() and not child.is_symlink():
                    _rmtree(child)
                else:
                    child.unlink(missing_ok=True)
                removed.append(child)
            finally:
                os.close(fd)
    return removed
