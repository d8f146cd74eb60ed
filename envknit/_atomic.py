"""Atomic file writes: a temporary file in the same directory, fsync, then rename."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write_text"]


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    A new file gets the mode a plain ``open()`` would give it (0o666 less the umask); a
    replaced file keeps its mode.
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
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        os.replace(tmp, target)
    except BaseException:
        # Any failure (disk full, KeyboardInterrupt) must not leave the temporary file behind.
        tmp.unlink(missing_ok=True)
        raise
