"""One dedicated OS thread per sub-interpreter: it creates, runs and destroys that interpreter."""

from __future__ import annotations

import itertools
import json
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ..errors import InterpreterClosedError, SubInterpreterError
from ._adapter import Adapter, RunFailure

__all__ = ["InterpreterThread"]

T = TypeVar("T")

CHILD_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child.py")

# Fixed scripts: every variable part arrives as shared data bound in __main__.
_BOOT_SCRIPT = """\
import importlib.util as _envknit_u, sys as _envknit_s
_envknit_spec = _envknit_u.spec_from_file_location("_envknit_child", __envknit_child_path__)
_envknit_m = _envknit_u.module_from_spec(_envknit_spec)
_envknit_s.modules["_envknit_child"] = _envknit_m
_envknit_spec.loader.exec_module(_envknit_m)
_envknit_m.bootstrap(__envknit_boot__)
del _envknit_u, _envknit_s, _envknit_spec, _envknit_m, __envknit_child_path__, __envknit_boot__
"""
_REQUEST_HEAD = (
    "_envknit_out = __import__('sys').modules['_envknit_child'].handle(__envknit_req__)\n"
)
_REQUEST_TAIL = "del _envknit_out, __envknit_req__, __envknit_q__\n"

_Job = tuple["Future[Any]", Callable[[], Any]]


class InterpreterThread:
    """Owns one isolated interpreter and the only OS thread that ever touches it.

    CPython 3.12 hangs destroying an interpreter that imported ``threading`` on another OS
    thread (seen on 3.12.1, see docs/hard-isolation.md), and an interpreter runs one thing at a
    time anyway, so every operation is posted here and waited on through a Future.
    """

    def __init__(self, adapter: Adapter, boot_config: dict[str, Any], label: str) -> None:
        self._adapter = adapter
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
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
                {"__envknit_child_path__": CHILD_PATH, "__envknit_boot__": json.dumps(boot_config)},
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
            future, func = job
            if not future.set_running_or_notify_cancel():
                continue  # the caller gave up (timeout) before the job started
            try:
                future.set_result(func())
            except BaseException as exc:  # noqa: BLE001 - delivered to the waiting caller
                future.set_exception(exc)
        self._teardown()

    def _teardown(self) -> None:
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
    def submit(self, func: Callable[[], T]) -> Future[T]:
        """Run ``func`` on this interpreter's thread; its result arrives in the Future."""
        future: Future[T] = Future()
        with self._submit_lock:  # nothing may be queued behind the stop sentinel
            if self._stopping:
                raise InterpreterClosedError("the sub-interpreter is closed")
            self._jobs.put((future, func))
        return future

    def request(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        """Send one request to the child module; the Future gives its decoded answer.

        The payload is encoded here, in the caller's thread, so a value that is not JSON
        raises ``TypeError`` in the caller.
        """
        call_id = next(self._ids)
        text = json.dumps({**payload, "id": call_id})
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
