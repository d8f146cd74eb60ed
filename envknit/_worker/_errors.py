"""Turning a worker's error report into a ``WorkerRemoteError`` that is also the builtin it was."""

from __future__ import annotations

import builtins
import threading
from typing import Any

from ..errors import MessageTooLargeError, WorkerRemoteError

__all__ = ["remote_error", "too_large"]

_classes: dict[str, type[WorkerRemoteError]] = {}
_classes_lock = threading.Lock()


def _text(self: BaseException) -> str:
    # Several builtins (KeyError, OSError, UnicodeError...) format str() from their own fields,
    # which are unset here; the message RemoteError built is the one to show.
    return str(BaseException.__str__(self))


def _class_for(builtin_name: str | None) -> type[WorkerRemoteError]:
    """``WorkerRemoteError[ValueError]`` (a subclass of both) for a builtin Exception name."""
    base = getattr(builtins, builtin_name, None) if builtin_name else None
    # Exception groups need constructor arguments that a remote report cannot supply.
    if not isinstance(base, type) or not issubclass(base, Exception) or "Group" in base.__name__:
        return WorkerRemoteError
    with _classes_lock:
        cls = _classes.get(base.__name__)
        if cls is None:
            cls = _build(base)
            _classes[base.__name__] = cls
        return cls


def _build(base: type[Exception]) -> type[WorkerRemoteError]:
    name = f"WorkerRemoteError[{base.__name__}]"
    namespace: dict[str, Any] = {"__str__": _text, "__module__": "envknit"}

    def __new__(kind: type, *args: Any, **kwargs: Any) -> Any:
        # OSError and its subclasses have their own C layout and __new__: RuntimeError's
        # __new__ (reached first through WorkerRemoteError) refuses to build them.
        return base.__new__(kind)

    for extra in ({}, {"__new__": __new__}):
        try:
            cls = type(name, (WorkerRemoteError, base), {**namespace, **extra})
            cls("probe", "probe", "")
        except TypeError:  # lay-out conflict or a __new__ that refuses: try the next recipe
            continue
        return cls
    return WorkerRemoteError


def remote_error(report: Any) -> Exception:
    """The host exception for a worker's ``err`` (or ``big``) report."""
    if not isinstance(report, dict):
        return WorkerRemoteError("unknown", repr(report))
    cls = _class_for(report.get("builtin") if isinstance(report.get("builtin"), str) else None)
    return cls(
        str(report.get("type", "unknown")),
        str(report.get("message", "")),
        str(report.get("traceback", "")),
    )


def too_large(report: Any) -> MessageTooLargeError:
    """The host exception for a reply the worker could not send because of its size."""
    fields = report if isinstance(report, dict) else {}
    size, limit = fields.get("size"), fields.get("limit")
    return MessageTooLargeError(
        size if type(size) is int else 0,
        limit if type(limit) is int else 0,
        buffers=fields.get("lane") is True,
    )
