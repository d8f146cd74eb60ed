"""The contract every per-version sub-interpreter adapter implements (Adapter, RunFailure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Adapter", "RunFailure"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailure:
    """An exception that escaped a script run in a sub-interpreter (as far as the API tells)."""

    type_name: str
    message: str
    traceback: str = ""


class Adapter(Protocol):
    """What envknit needs from a Python version's sub-interpreter API.

    Handles are opaque to callers. Which thread may call what is decided in ``_thread.py``.
    """

    #: Python statements run once inside the sub-interpreter (with the queue handle from
    #: ``create_queue`` bound as ``__envknit_q__``) that define ``_envknit_send(text)``, putting
    #: a str on that queue.
    send_setup: str
    #: Python statements run once inside (with a second queue from ``create_queue`` bound as
    #: ``__envknit_rq__``) that define ``_envknit_recv()``, taking the oldest str off that queue
    #: (None when it is empty): the requests of the serving thread (see ``_server.py``).
    recv_setup: str

    def create(self) -> object:
        """Create an isolated interpreter with its own GIL and return its handle."""
        ...

    def destroy(self, interp: object) -> None: ...

    def prepare(self, script: str) -> object:
        """``script`` in the form ``run`` executes fastest (3.13: a code object, not the text)."""
        ...

    def run(
        self, interp: object, script: object, shared: dict[str, object] | None
    ) -> RunFailure | None:
        """Bind ``shared`` in ``__main__`` and run a prepared script (or a str); describe an
        escaped exception."""
        ...

    def create_queue(self) -> object:
        """A queue of str; its handle is shareable, so the child can be given it directly."""
        ...

    def queue_get(self, queue: object) -> str | None:
        """The oldest str in ``queue`` without blocking, or None when it is empty."""
        ...

    def queue_put(self, queue: object, text: str) -> None:
        """Put a str on ``queue`` without blocking."""
        ...

    def destroy_queue(self, queue: object) -> None: ...
