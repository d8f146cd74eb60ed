"""Atomic file writes: a temporary file in the same directory, fsync, then rename."""

from __future__ import annotations

import fcntl
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

# on strings: pathlib and re would be most of the cost of writing envknit.lock.yaml

__all__ = ["atomic_write_text", "clean_stale_temporaries"]


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, mode: int | None = None, durable: bool = True
) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    The file gets ``mode`` if given (set before it appears under its name, so a concurrent
    reader never sees it half-made, e.g. not yet executable). Otherwise a new file gets the
    mode a plain ``open()`` would give it (0o666 less the umask) and a replaced one keeps its.
    ``durable=False`` skips the fsync (milliseconds of wall time): for a file whose loss in a
    power cut is harmless; the rename still shows readers the old file or the new one.
    """
    target = os.fspath(path)
    folder, name = os.path.split(target)
    clean_stale_temporaries(target)
    tmp = os.path.join(folder, f".{name}.{os.urandom(8).hex()}.tmp")
    # os.open rather than tempfile.mkstemp: mkstemp makes 0o600 files, which would leave
    # envknit.yaml and the lock unreadable to the user's group
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    # held while this writer lives (the lock dies with the process, even under SIGKILL): how
    # clean_stale_temporaries tells a killed writer's file from a live one's
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif os.path.exists(target):
            os.chmod(tmp, os.stat(target).st_mode & 0o777)
        os.replace(tmp, target)
    except BaseException:
        # Any failure (disk full, KeyboardInterrupt) must not leave the temporary file behind.
        from contextlib import suppress  # here: the usual path needs none of it

        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_STALE_AFTER = 60.0  # seconds; a younger file may be one whose writer has not locked it yet


def _is_temporary(name: str, target_name: str) -> bool:
    """``name`` is ``.TARGET.<16 lower-case hex digits>.tmp``."""
    prefix = f".{target_name}."
    digits = name[len(prefix):-4]
    return (name.startswith(prefix) and name.endswith(".tmp") and len(digits) == 16
            and not digits.strip("0123456789abcdef"))


def clean_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove ``.NAME.<hex>.tmp`` files beside ``target`` left by writers that were killed.

    A file is stale when no process holds its lock and it is older than a minute. Returns
    what was removed; a file that cannot be examined is left alone.
    """
    folder, target_name = os.path.split(os.fspath(target))
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    removed = []
    now = time.time()
    for name in names:
        if not _is_temporary(name, target_name):
            continue
        from pathlib import Path  # here: only when such a file is found (rare)

        tmp = Path(folder, name)
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # vanished meanwhile, a symlink, or unreadable: not ours to judge
        try:
            if now - os.fstat(fd).st_mtime < _STALE_AFTER:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            continue  # a live writer holds it (BlockingIOError), or it is gone already
        finally:
            os.close(fd)
    return removed
