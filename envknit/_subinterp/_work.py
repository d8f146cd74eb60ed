"""The units of work the helper and serving threads run, and how their Futures get settled."""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .. import _lane

__all__ = ["DirectFuture", "Job", "Later", "NotStarted", "StillRunning", "Submitted"]


class Job:
    """One unit of work for the helper thread, answered through a Future or a one-shot lock.

    ``claim`` decides who owns a job that has not started: the thread (it runs it) or a caller
    that gave up waiting (it is then skipped). ``finished`` is acquired at creation and released
    when the result is in: a plain lock is the cheapest one-shot event.
    """

    __slots__ = ("claim", "done", "finished", "func", "future", "ok", "value")

    def __init__(self, func: Callable[[], Any], future: Future[Any] | None) -> None:
        self.func = func
        self.future = future
        self.claim = _thread.allocate_lock()
        self.finished: Any = None
        if future is None:
            self.finished = _thread.allocate_lock()
            self.finished.acquire()
        self.done = False
        self.ok = False
        self.value: Any = None

    def run(self) -> None:
        try:
            self.value = self.func()
            self.ok = True
        except BaseException as exc:  # noqa: BLE001 - delivered to the waiting caller
            self.value = exc
        self.done = True

    def deliver(self) -> None:
        if self.future is None:
            self.finished.release()
        elif self.ok and type(self.value) is Later:
            # A blocking follow-up (a worker round trip): off this thread, which serves others.
            threading.Thread(
                target=self.value.settle, args=(self.future,), name="envknit-later", daemon=True,
            ).start()
        elif self.ok:
            self.future.set_result(self.value)
        else:
            self.future.set_exception(self.value)


class Later:
    """A job's result that ``func`` computes afterwards, on a thread of its own."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[], Any]) -> None:
        self.func = func

    def settle(self, future: Future[Any]) -> None:
        try:
            future.set_result(self.func())
        except BaseException as exc:  # noqa: BLE001 - delivered through the Future
            future.set_exception(exc)


class Submitted:
    """A submitted request for the serving thread, and the Future its answer settles.

    While it is in flight, ``claimed`` says a caller waits for its answer in ``result()``, and
    ``orphaned`` that such a caller gave up after the serving thread saw its claim (the helper
    thread then takes the answer). Both under the driver's state lock.
    """

    __slots__ = ("call_id", "claimed", "finish", "future", "orphaned", "outbox", "text")

    def __init__(
        self, text: str, call_id: int, outbox: _lane.Outbox | None,
        finish: Callable[[dict[str, Any]], Any], future: DirectFuture,
    ) -> None:
        self.text = text
        self.call_id = call_id
        self.outbox = outbox
        self.finish = finish
        self.future = future
        self.claimed = False
        self.orphaned = False

    def discard(self) -> None:
        if self.outbox is not None:
            self.outbox.discard()
            self.outbox = None


class DirectFuture(Future[Any]):
    """A Future whose ``result()`` and ``exception()`` may wait for the answer themselves.

    While its call is in flight on the serving thread, ``reader`` is set: it waits (at most
    ``timeout``) for the answer on the calling thread and settles the Future, sparing the
    hop through the helper thread, and returns what is left of ``timeout``. Everything else
    is a plain Future's.
    """

    reader: Callable[[float | None], float | None] | None = None

    def result(self, timeout: float | None = None) -> Any:
        reader = self.reader
        if reader is not None:
            timeout = reader(timeout)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        reader = self.reader
        if reader is not None:
            timeout = reader(timeout)
        return super().exception(timeout)


class NotStarted(Exception):
    """The caller's wait ended before the thread started the job (the job will not run)."""


class StillRunning(Exception):
    """The caller's wait ended while the call was running; ``Driver.busy()`` tells when it ends."""
