"""ContextExecutor: a thread pool whose tasks see the versions active where they were submitted.

Its own module because ``concurrent.futures`` (which imports logging) costs ~5 ms that
``configure_from_lock`` and ``use()`` need not pay; ``envknit.routing`` loads it on first use.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["ContextExecutor"]

R = TypeVar("R")


class ContextExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run with the active versions of their ``submit()``."""

    __module__ = "envknit"

    def submit(
        self, fn: Callable[..., R], /, *args: Any, **kwargs: Any
    ) -> Future[R]:
        snapshot = contextvars.copy_context()
        return super().submit(snapshot.run, fn, *args, **kwargs)
