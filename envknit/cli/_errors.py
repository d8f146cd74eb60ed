"""How the CLI reports a failure: one line, ``envknit: error: ...``, on stderr (stdlib only)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["guarded", "oserror_text", "print_error"]


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


def guarded(command: Callable[[], int]) -> int:
    """``command()``'s exit status; envknit's errors and the file system's are one line, 1."""
    from ..errors import EnvknitError

    try:
        return command()
    except EnvknitError as exc:
        print_error(exc)
        return 1
    except OSError as exc:
        # the file system said no (permissions, disk full...): say what and where, no traceback
        print_error(oserror_text(exc))
        return 1
    except KeyboardInterrupt:
        print("envknit: interrupted", file=sys.stderr)
        return 130
