"""``ContextThread``: a thread that carries the active versions (loaded on first use)."""

from __future__ import annotations

import contextvars
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ContextThread"]


class ContextThread(threading.Thread):
    """A ``threading.Thread`` that runs with the active versions of the moment it was created.

    Works for subclasses that override ``run()`` too: the bound ``run`` is wrapped per
    instance, so whatever ``run`` the thread calls executes inside the snapshot.
    """

    __module__ = "envknit"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        snapshot = contextvars.copy_context()
        bound = self.run

        def run() -> None:
            snapshot.run(bound)

        object.__setattr__(self, "run", run)

