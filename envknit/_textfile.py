"""Reading a user's text file (envknit.yaml, the lock) with bounds, before any parser sees it.

Stdlib only, without PyYAML: the lock's own reader (``_lockread``) parses most locks without
it. A file larger than ``MAX_SIZE``, not UTF-8, or holding NUL bytes is one clear error.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["MAX_SIZE", "read_text"]

MAX_SIZE = 64 * 1024 * 1024  # bytes; a lock of 10,000 packages is about 3 MB


def read_text(
    path: str | Path, error: Callable[..., Exception], *, what: str, missing_hint: str
) -> str:
    """The text of the file at ``path``; any failure is one ``error`` (``ConfigError``,
    ``LockError``: called with the message and ``path=``) naming the file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SIZE + 1)
    except FileNotFoundError:
        raise error(f"{what} not found; {missing_hint}", path=str(path)) from None
    except IsADirectoryError:
        raise error(f"the {what} is a directory", path=str(path)) from None
    except OSError as exc:
        raise error(f"cannot read the {what}: {exc.strerror}", path=str(path)) from None
    if len(raw) > MAX_SIZE:
        raise error(f"the {what} is larger than {MAX_SIZE >> 20} MiB", path=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"the {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8",
            path=str(path),
        ) from None
    if "\0" in text:
        raise error(f"the {what} is not text (it contains NUL bytes)", path=str(path))
    return text
