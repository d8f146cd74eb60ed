"""How the CLI reports a failure: one line, ``envknit: error: ...``, on stderr (stdlib only)."""

from __future__ import annotations

import sys

__all__ = ["oserror_text", "print_error"]


def _one_line(message: str) -> str:
    # a message built from several lines (uv's output, a nested error) is joined, and any
    # control character left in it is escaped: no input can start a line of its own, e.g. a
    # fake "envknit: ok"
    parts = [part.strip() for part in message.splitlines() if part.strip()]
    text = parts[0] if parts else ""
    for part in parts[1:]:
        text += (" " if text.endswith(":") else "; ") + part
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text


def print_error(message: object) -> None:
    """Print ``envknit: error: MESSAGE`` as exactly one line on stderr."""
    print(f"envknit: error: {_one_line(str(message))}", file=sys.stderr, flush=True)


def oserror_text(exc: OSError) -> str:
    """What the file system said and where (``exc.filename`` quoted), without a traceback."""
    where = f": {exc.filename!r}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"
