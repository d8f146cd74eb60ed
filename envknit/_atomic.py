"""Atomic file writes: a temporary file in the same directory, fsync, then rename."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write_text"]


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, mode: int | None = None
) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    The file gets ``mode`` if given (set before it appears under its name, so a concurrent
    reader never sees it half-made, e.g. not yet executable). Otherwise a new file gets the
    mode a plain ``open()`` would give it (0o666 less the umask) and a replaced one keeps its.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.urandom(8).hex()}.tmp")
    # os.open rather than tempfile.mkstemp: mkstemp makes 0o600 files, which would leave
    # envknit.yaml and the lock unreadable to the user's group
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        os.replace(tmp, target)
    except BaseException:
        # Any failure (disk full, KeyboardInterrupt) must not leave the temporary file behind.
        tmp.unlink(missing_ok=True)
        raise
