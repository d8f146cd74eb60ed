"""One dedicated OS thread per sub-interpreter: it creates, runs and destroys that interpreter."""

from __future__ import annotations

import _thread
import functools
import itertools
import json
import marshal
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from ..errors import InterpreterClosedError, SubInterpreterError
from ._adapter import Adapter, RunFailure

__all__ = ["InterpreterThread", "Job", "NotStarted", "StillRunning"]

T = TypeVar("T")

CHILD_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child.py")

# Fixed scripts: every variable part arrives as shared data bound in __main__.
_BOOT_SCRIPT = """\
import marshal as _envknit_ma, sys as _envknit_s
_envknit_m = type(_envknit_s)("_envknit_child")
_envknit_m.__file__ = __envknit_child_path__
_envknit_s.modules["_envknit_child"] = _envknit_m
exec(_envknit_ma.loads(__envknit_child_code__), _envknit_m.__dict__)
_envknit_m.bootstrap(__envknit_boot__)
_envknit_handle = _envknit_m.handle
del _envknit_ma, _envknit_s, _envknit_m, __envknit_child_path__, __envknit_child_code__
del __envknit_boot__
"""
_REQUEST_HEAD = (
    "_envknit_out = _envknit_handle(__envknit_req__)\n"
)
_BEFORE_DESTROY_SCRIPT = "__import__('sys').modules['_envknit_child'].before_destroy()\n"
_REQUEST_TAIL = "del _envknit_out, __envknit_req__, __envknit_q__\n"


@functools.cache
def child_code() -> bytes:
    """``_child.py`` compiled once by the host, marshalled for every new interpreter.

    The child module is loaded from this file's directory as data, never through the host's
    sys.path, and without compiling or reading it again per interpreter (milliseconds each).
    """
    with open(CHILD_PATH, encoding="utf-8") as source:
        return marshal.dumps(compile(source.read(), CHILD_PATH, "exec"))


class Job:
    """One unit of work for the interpreter's thread, answered through a Future or a queue.

    ``claim`` decides who owns a job that has not started: the thread (it runs it) or a caller
    that gave up waiting (it is then skipped). A plain lock is the cheapest way to settle that.
    """

    __slots__ = ("claim", "done", "func", "future", "reply")

    def __init__(self, func: Callable[[], Any], future: Future[Any] | None) -> None:
        self.func = func
        self.future = future
        self.reply: queue.SimpleQueue[tuple[bool, Any]] | None = (
            None if future is not None else queue.SimpleQueue()
        )
        self.claim = _thread.allocate_lock()
        self.done = False

    def deliver(self, ok: bool, value: Any) -> None:
        self.done = True
        if self.future is not None:
            if ok:
                self.future.set_result(value)
            else:
                self.future.set_exception(value)
        elif self.reply is not None:
            self.reply.put((ok, value))


class NotStarted(Exception):
    """The caller's wait ended before the thread started the job (the job will not run)."""


class StillRunning(Exception):
    """The caller's wait ended while the job was running; ``job.done`` tells when it ends."""

    def __init__(self, job: Job) -> None:
        super().__init__("still running")
        self.job = job


class InterpreterThread:
    """Owns one isolated interpreter and the only OS thread that ever touches it.

    CPython 3.12 hangs destroying an interpreter that imported ``threading`` on another OS
    thread (seen on 3.12.1, see docs/hard-isolation.md), and an interpreter runs one thing at a
    time anyway, so every operation is posted here and waited on through a Future.
    """

    def __init__(self, adapter: Adapter, boot_config: dict[str, Any], label: str) -> None:
        self._adapter = adapter
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._ids = itertools.count(1)
        self._interp: object = None
        self._queue: object = None
        self._script = _REQUEST_HEAD + adapter.send_snippet + _REQUEST_TAIL
        self._stopping = False
        self._submit_lock = threading.Lock()
        ready: Future[None] = Future()
        # Daemon: a non-daemon thread would make the interpreter wait for it before atexit
        # handlers run, and the atexit handler is what closes it (see __init__.py).
        self._thread = threading.Thread(
            target=self._main, args=(boot_config, ready), name=f"envknit-subinterp-{label}",
            daemon=True,
        )
        self._thread.start()
        ready.result()

    # -- on the dedicated thread ------------------------------------------------------------
    def _main(self, boot_config: dict[str, Any], ready: Future[None]) -> None:
        adapter = self._adapter
        try:
            self._interp = adapter.create()
            self._queue = adapter.create_queue()
            failure = adapter.run(
                self._interp,
                _BOOT_SCRIPT,
                {
                    "__envknit_child_path__": CHILD_PATH,
                    "__envknit_child_code__": child_code(),
                    "__envknit_boot__": json.dumps(boot_config),
                },
            )
            if failure is not None:
                raise _as_error(failure)
        except BaseException as exc:  # noqa: BLE001 - handed to the creator, who re-raises it
            self._teardown()
            ready.set_exception(exc)
            return
        ready.set_result(None)
        while True:
            job = self._jobs.get()
            if job is None:
                break
            if not job.claim.acquire(blocking=False):
                continue  # the caller gave up (timeout) before the job started
            try:
                value = job.func()
            except BaseException as exc:  # noqa: BLE001 - delivered to the waiting caller
                job.deliver(False, exc)
            else:
                job.deliver(True, value)
        self._teardown()

    def _teardown(self) -> None:
        if self._interp is not None and self._queue is not None:
            # Best effort: a failure here must not keep the interpreter from being destroyed.
            self._adapter.run(self._interp, _BEFORE_DESTROY_SCRIPT, {})
        if self._queue is not None:
            self._adapter.destroy_queue(self._queue)
            self._queue = None
        if self._interp is not None:
            self._adapter.destroy(self._interp)
            self._interp = None

    def _request(self, text: str, call_id: int) -> dict[str, Any]:
        adapter, q = self._adapter, self._queue
        while adapter.queue_get(q) is not None:  # never read an earlier call's answer
            pass
        shared = {"__envknit_req__": text, "__envknit_q__": adapter.queue_token(q)}
        failure = adapter.run(self._interp, self._script, shared)
        if failure is not None:
            raise _as_error(failure)
        while True:
            raw = adapter.queue_get(q)
            if raw is None:
                raise SubInterpreterError(
                    "envknit.ProtocolError", "the sub-interpreter sent no answer for this call"
                )
            answer: dict[str, Any] = json.loads(raw)
            if answer.get("id") == call_id:
                return answer

    # -- any thread ------------------------------------------------------------------------
    def _post(self, job: Job) -> None:
        with self._submit_lock:  # nothing may be queued behind the stop sentinel
            if self._stopping:
                raise InterpreterClosedError("the sub-interpreter is closed")
            self._jobs.put(job)

    def submit(self, func: Callable[[], T]) -> Future[T]:
        """Run ``func`` on this interpreter's thread; its result arrives in the Future."""
        future: Future[T] = Future()
        self._post(Job(func, future))
        return future

    def call(self, func: Callable[[], T], timeout: float | None = None) -> T:
        """Run ``func`` on this interpreter's thread and wait for its result.

        Raises NotStarted or StillRunning when ``timeout`` (seconds) passes first.
        """
        job = Job(func, None)
        self._post(job)
        assert job.reply is not None
        try:
            ok, value = job.reply.get(timeout=timeout)
        except queue.Empty:
            if job.claim.acquire(blocking=False):
                raise NotStarted() from None
            raise StillRunning(job) from None
        if ok:
            return cast(T, value)
        raise value

    def _encode(self, payload: dict[str, Any]) -> tuple[str, int]:
        # Encoded in the caller's thread, so a value that is not JSON raises TypeError there.
        call_id = next(self._ids)
        return json.dumps({**payload, "id": call_id}), call_id

    def request(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request to the child module and wait for its decoded answer."""
        text, call_id = self._encode(payload)
        return self.call(lambda: self._request(text, call_id), timeout)

    def request_async(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        """Like request(), without waiting: a Future of the decoded answer."""
        text, call_id = self._encode(payload)
        return self.submit(lambda: self._request(text, call_id))

    def close(self, timeout: float | None = None) -> bool:
        """Destroy the interpreter (after queued jobs) and end the thread; True when done."""
        with self._submit_lock:
            if not self._stopping:
                self._stopping = True
                self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping


def _as_error(failure: RunFailure) -> SubInterpreterError:
    return SubInterpreterError(failure.type_name, failure.message, failure.traceback)
