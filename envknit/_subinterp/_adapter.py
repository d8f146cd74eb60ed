"""The contract every per-version sub-interpreter adapter implements, and the one dispatch."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Adapter", "RunFailure", "get_adapter"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailure:
    """An exception that escaped a script run in a sub-interpreter (as far as the API tells)."""

    type_name: str
    message: str
    traceback: str = ""


class Adapter(Protocol):
    """What envknit needs from a Python version's sub-interpreter API.

    Handles are opaque to callers. Every method except the queue reads must be called on the
    interpreter's own dedicated OS thread (see ``_thread.py``).
    """

    #: Python statements run inside the sub-interpreter that send the str ``_envknit_out`` to
    #: the queue whose token is bound as ``__envknit_q__``.
    send_snippet: str

    def create(self) -> object:
        """Create an isolated interpreter with its own GIL and return its handle."""
        ...

    def destroy(self, interp: object) -> None: ...

    def run(self, interp: object, script: str, shared: Mapping[str, object]) -> RunFailure | None:
        """Bind ``shared`` in ``__main__`` and run ``script``; describe an escaped exception."""
        ...

    def create_queue(self) -> object: ...

    def queue_token(self, queue: object) -> object:
        """A shareable value the child passes to ``send_snippet`` as ``__envknit_q__``."""
        ...

    def queue_get(self, queue: object) -> str | None:
        """The oldest str in ``queue`` without blocking, or None when it is empty."""
        ...

    def destroy_queue(self, queue: object) -> None: ...


def get_adapter() -> Adapter:
    """The adapter for the running Python (3.12+); the only version dispatch of Gen 2."""
    if sys.version_info >= (3, 14):
        from . import _py314

        return _py314.Py314Adapter()
    if sys.version_info >= (3, 13):
        from . import _py313

        return _py313.Py313Adapter()
    if sys.version_info >= (3, 12):
        from . import _py312

        return _py312.Py312Adapter()
    raise RuntimeError("sub-interpreters with their own GIL need CPython 3.12+")
