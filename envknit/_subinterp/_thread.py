"""Who runs code in a sub-interpreter: the calling thread, its serving thread, or a helper."""

from __future__ import annotations

import collections
import functools
import itertools
import json
import marshal
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from .. import _lane
from ..errors import (
    EnvknitError,
    InterpreterClosedError,
    MessageTooLargeError,
    SubInterpreterError,
)
from . import _server
from ._contract import Adapter, RunFailure
from ._work import DirectFuture, Job, Later, NotStarted, StillRunning, Submitted

__all__ = ["Driver"]

T = TypeVar("T")

# Where code runs. A call without a timeout runs INLINE on the calling thread, holding the
# interpreter's run lock. A call with a timeout is run by a thread parked inside the
# interpreter (the serving thread, see _server.py), because the caller must be able to stop
# waiting while the code is blocked in C; the caller holds the run lock while it waits, and a
# call it gave up on leaves the interpreter "stuck" until its answer arrives (every later user
# waits for that first). submit() posts to the same serving thread; a caller waiting in the
# Future's result() takes the answer itself, else the interpreter's host helper thread (started
# on first need) takes it and settles the Future; where poll() is missing (Windows), timed
# calls and submit() run on the helper thread, which takes the run lock for each job. Why any
# OS thread may create, run and destroy an interpreter:
#
# * CPython 3.13+ gives every exec() a fresh thread state, so which OS thread calls does not
#   matter. Checked on 3.13.0 in fresh processes: threading, threads and ThreadPoolExecutor used
#   inside from 4 OS threads in turn, then destroy from the main thread or a third thread: 30/30
#   clean (tests/test_subinterp_safety.py::test_inline_calls_from_many_threads_then_destroy).
# * CPython 3.12 reuses the interpreter's first thread state whatever OS thread calls
#   (python/cpython#109860). The one thing that broke was destroy() hanging forever when the
#   interpreter had imported ``threading`` on another OS thread than the destroying one
#   (measured on 3.12.1): the child's before_destroy() releases what threading
#   recorded (see _child._end_recorded_main_thread), which made the same experiment 24/24 clean.

_HERE = os.path.dirname(os.path.abspath(__file__))
CHILD_PATH = os.path.join(_HERE, "_child.py")
# The runner shared with the worker child; the child imports it as _envknit_runner.
RUNNER_PATH = os.path.join(os.path.dirname(_HERE), "_runner.py")

# Fixed scripts: every variable part arrives as shared data bound in __main__. The adapter's
# send_setup (appended) defines _envknit_send(text) over the interpreter's result queue. The boot
# script installs the runner before the child, which imports it.
_BOOT_SCRIPT = """\
import marshal as _envknit_ma, sys as _envknit_s
for _envknit_n in ("runner", "child"):
    _envknit_m = type(_envknit_s)("_envknit_" + _envknit_n)
    _envknit_m.__file__ = globals().pop(f"__envknit_{_envknit_n}_path__")
    _envknit_s.modules[_envknit_m.__name__] = _envknit_m
    exec(_envknit_ma.loads(globals().pop(f"__envknit_{_envknit_n}_code__")), _envknit_m.__dict__)
_envknit_m.bootstrap(__envknit_boot__)
_envknit_handle = _envknit_m.handle
_envknit_start = _envknit_m.start_server
del _envknit_ma, _envknit_s, _envknit_m, _envknit_n, __envknit_boot__
"""
# Appended after send_setup: one request = one call of _envknit_run(), which takes the request
# text out of __main__ (so it is not kept alive), runs it and sends the answer. 3.12 compiles the
# script text on every call: this one-call script measured 7.1 us against 11.0 us for the same
# work spelled out as two statements.
_BOOT_TAIL = """\
def _envknit_run(_g=globals(), _handle=_envknit_handle, _send=_envknit_send):
    _send(_handle(_g.pop("__envknit_req__")))
def _envknit_serve(_g=globals(), _start=_envknit_start, _send=_envknit_send):
    _start(_g.pop("__envknit_serving_code__"), _g.pop("__envknit_serving_path__"),
           _g.pop("__envknit_serve_config__"), _g.pop("_envknit_recv"), _send)
del _envknit_handle, _envknit_send, _envknit_start
"""
_REQUEST_SCRIPT = "_envknit_run()\n"
# Run once, on the first timed call, after the adapter's recv_setup (which defines
# _envknit_recv over the request queue): starts the serving thread (_child.start_server), whose
# loop (_serving.py) arrives compiled like the child's code.
_START_SCRIPT = "_envknit_serve()\n"
# Buffers (bytes, arrays) in requests and answers travel on the binary lane (envknit/_lane.py)
# as {key: descriptor} objects; the key is random and given to each child at boot, so no value
# of user code is ever read as one. The child's answers are json.dumps() output: JsonText
# decodes them with raw_decode, which skips json.loads's BOM and whitespace checks (0.6 us
# instead of 1.3 us for a small answer).
_JSON = _lane.JsonText(f"$envknit-buffer-{os.urandom(8).hex()}")
_BEFORE_DESTROY_SCRIPT = "__import__('sys').modules['_envknit_child'].before_destroy()\n"
# With a serving thread: first close its request pipe from inside (see Driver._teardown), as the
# script's first statement, so that the script running at all means the thread was told to stop.
_STOP_SERVER_SCRIPT = "__import__('os').close(__envknit_stop_fd__)\n" + _BEFORE_DESTROY_SCRIPT


@functools.cache
def child_code(path: str) -> bytes:
    """``_child.py`` or ``_runner.py`` compiled once by the host, marshalled for each interpreter.

    Both load from envknit's directory as data, never through the host's sys.path, and without
    compiling or reading them again per interpreter (milliseconds each).
    """
    with open(path, encoding="utf-8") as source:
        return marshal.dumps(compile(source.read(), path, "exec"))


class Driver:
    """Owns one isolated interpreter: creates it, runs requests in it, destroys it.

    ``_run_lock`` is held while anything runs in the interpreter, which runs one thing at a time
    (a second concurrent exec fails with "interpreter already running"): inline calls from many
    threads take turns; a timed caller holds it while the serving thread runs its request, and
    a submitted request in flight holds it until its answer is taken. The child module is
    booted on the first request, so an interpreter that is entered and left without a call
    costs what CPython's create() + destroy() cost; the serving thread inside starts with the
    first call that has a timeout or is submitted.
    """

    def __init__(self, adapter: Adapter, boot_config: dict[str, Any], label: str) -> None:
        self._adapter = adapter
        self._boot_config = boot_config
        self._label = label
        self._ids = itertools.count(1)
        self._interp: object = None
        self._queue: object = None
        self._booted = False
        self._script = adapter.prepare(_REQUEST_SCRIPT)
        self._run_lock = threading.Lock()
        self._state_lock = threading.Lock()  # guards _stopping and starting the thread
        self._stopping = False
        self._jobs: queue.SimpleQueue[Job | None] | None = None
        self._thread: threading.Thread | None = None
        # With poll() (see _server.py) the helper thread takes its work from _backlog (None:
        # stop), woken through the _kick pipe, and settles the one submitted request in flight
        # on the serving thread (_inflight), which holds _run_lock until its answer is read.
        # All under _state_lock.
        self._backlog: collections.deque[Job | Submitted | None] = collections.deque()
        self._kick: tuple[int, int] | None = None
        self._inflight: Submitted | None = None
        self._posting = False  # the helper thread is posting the backlog's head
        self._helper_polls_server = False  # it polls the serving thread's submitted answers
        self._server: _server.Server | None = None
        # A timed call the caller gave up on while it ran (served: its answer is still due and
        # the request's lane files are removed once it arrives; or a helper-thread Job).
        self._stuck = False
        self._stuck_outbox: _lane.Outbox | None = None
        self._stuck_job: Job | None = None
        #: warm files for the buffers of requests (see _lane.Pool), removed after destroy
        self._pool = _lane.Pool()
        self._create()

    # -- on whichever thread owns the interpreter (under _run_lock) ------------------------------
    def _create(self) -> None:
        self._interp = self._adapter.create()
        try:
            self._queue = self._adapter.create_queue()
        except BaseException:
            self._teardown()
            raise

    def _boot(self) -> None:
        adapter = self._adapter
        failure = adapter.run(
            self._interp,
            adapter.prepare(_BOOT_SCRIPT + adapter.send_setup + _BOOT_TAIL),
            {
                "__envknit_runner_path__": RUNNER_PATH,
                "__envknit_runner_code__": child_code(RUNNER_PATH),
                "__envknit_child_path__": CHILD_PATH,
                "__envknit_child_code__": child_code(CHILD_PATH),
                "__envknit_boot__": json.dumps({**self._boot_config, "lane_key": _JSON.key}),
                "__envknit_q__": self._queue,
            },
        )
        if failure is not None:
            raise _as_error(failure)
        self._booted = True

    def _teardown(self) -> None:
        adapter = self._adapter
        self._settle(None)  # a served call given up on: wait until it returns
        server, self._server = self._server, None
        # The serving thread is told to stop from INSIDE the interpreter (the script closes its
        # request pipe, then before_destroy joins it): no thread of the interpreter may end while
        # this thread is outside it. CPython 3.12's run_string() walks the interpreter's thread
        # list without a lock before entering (to find the gh-109860 "main" thread state), so a
        # thread freeing its thread state at that moment made the walk read freed memory
        # (SIGSEGV, nothing on stderr; tests/test_subinterp_safety.py widens the window). Once
        # join() returns inside, the thread is off that list.
        stop_fd = None if server is None else server.hand_over_stop()
        try:
            if self._interp is not None and self._booted:
                # Best effort: a failure here must not keep the interpreter from being destroyed.
                # A RunFailure means the script ran, so its first statement closed stop_fd.
                if stop_fd is None:
                    adapter.run(self._interp, _BEFORE_DESTROY_SCRIPT, None)
                else:
                    adapter.run(self._interp, _STOP_SERVER_SCRIPT, {"__envknit_stop_fd__": stop_fd})
                    stop_fd = None
        finally:
            if stop_fd is not None:  # the script did not run: stop the thread from here
                os.close(stop_fd)
            if server is not None:
                server.close()
        if self._queue is not None:
            adapter.destroy_queue(self._queue)
            self._queue = None
        if self._interp is not None:
            interp, self._interp = self._interp, None
            adapter.destroy(interp)
        self._pool.close()

    def _request(self, text: str, call_id: int) -> dict[str, Any]:
        """Run one request inline on this thread (under ``_run_lock``)."""
        self._settle(None)
        if not self._booted:
            self._boot()
        adapter = self._adapter
        failure = adapter.run(self._interp, self._script, {"__envknit_req__": text})
        if failure is not None:
            raise _as_error(failure)
        return self._answer(call_id)

    def _served(
        self, text: str, call_id: int, outbox: _lane.Outbox | None, timeout: float
    ) -> dict[str, Any]:
        """Hand one request to the serving thread and wait at most ``timeout`` for its answer.

        Raises NotStarted when the run lock or an earlier call given up on takes all the time,
        StillRunning when the request itself does.
        """
        deadline = time.monotonic() + timeout
        try:
            if not self._run_lock.acquire(timeout=min(timeout, threading.TIMEOUT_MAX)):
                raise NotStarted()
            try:
                if self._stopping or self._interp is None:
                    raise InterpreterClosedError("the sub-interpreter is closed")
                if not self._settle(deadline - time.monotonic()):
                    raise NotStarted()
                server = self._start_server()
                server.post(text)
                answered = False
                try:
                    answered = server.wait(deadline - time.monotonic())
                finally:
                    if not answered:  # also when the wait was interrupted (KeyboardInterrupt)
                        self._stuck = True
                        self._stuck_outbox, outbox = outbox, None
                if not answered:
                    raise StillRunning()
                return self._answer(call_id)
            finally:
                self._run_lock.release()
        finally:
            if outbox is not None:
                outbox.discard()

    def _start_server(self) -> _server.Server:
        """The serving thread's host end; starts the thread on first use (under _run_lock)."""
        server = self._server
        if server is None:
            if not self._booted:
                self._boot()
            adapter = self._adapter
            server = _server.Server(adapter)
            shared = server.shared()
            shared["__envknit_serving_code__"] = child_code(_server.SERVING_PATH)
            shared["__envknit_serving_path__"] = _server.SERVING_PATH
            failure = adapter.run(self._interp, adapter.recv_setup + _START_SCRIPT, shared)
            if failure is not None:
                server.close()
                raise _as_error(failure)
            self._server = server
        return server

    def _settle(self, timeout: float | None) -> bool:
        """Wait (at most ``timeout``) until a served call given up on has answered; drop it.

        False if it is still running. Under ``_run_lock``.
        """
        if not self._stuck:
            return True
        assert self._server is not None
        if not self._server.wait(timeout):
            return False
        self._stuck = False
        outbox, self._stuck_outbox = self._stuck_outbox, None
        try:
            self._answer(None)
        except SubInterpreterError:
            pass  # nothing (usable) came back for a call whose caller has gone
        finally:
            if outbox is not None:
                outbox.discard()
        return True

    def busy(self) -> bool:
        """Whether a timed call that the caller gave up on is still running inside."""
        if self._stuck_job is not None and not self._stuck_job.done:
            return True
        server = self._server
        return self._stuck and server is not None and not server.answered()

    def _answer(self, call_id: int | None) -> dict[str, Any]:
        """The answer to ``call_id`` from the result queue (None: whichever comes first)."""
        adapter = self._adapter
        # Answers carry the request id: one left behind by an interrupted earlier call is skipped,
        # so a call never returns an earlier call's result. Decoding takes an answer's lane files.
        while True:
            raw = adapter.queue_get(self._queue)
            if raw is None:
                raise SubInterpreterError(
                    "envknit.ProtocolError", "the sub-interpreter sent no answer for this call"
                )
            try:
                answer: dict[str, Any] = _JSON.loads(raw)
            except _lane.LaneError as exc:
                raise SubInterpreterError(
                    "envknit.ProtocolError", f"a buffer in the answer was lost: {exc}"
                ) from None
            if call_id is None or answer.get("id") == call_id:
                return answer

    # -- the helper thread ------------------------------------------------------------------------
    def _start_thread(self) -> None:
        """Start the helper thread (under _state_lock)."""
        if _server.AVAILABLE:
            self._kick = os.pipe()
            target = self._collect
        else:
            self._jobs = queue.SimpleQueue()
            target = self._main
        # Daemon: a non-daemon thread would make the interpreter wait for it before atexit
        # handlers run, and the atexit handler is what closes it (see __init__.py).
        self._thread = threading.Thread(
            target=target, name=f"envknit-subinterp-{self._label}", daemon=True,
        )
        try:
            self._thread.start()
        except BaseException:
            self._thread = self._jobs = None
            self._close_kick()
            raise

    def _enqueue(self, item: Job | Submitted | None) -> None:
        """Hand ``item`` to the helper thread (None: stop after the rest); under _state_lock."""
        if self._kick is not None:
            self._backlog.append(item)
            os.write(self._kick[1], b"\0")
        else:
            assert self._jobs is not None and not isinstance(item, Submitted)
            self._jobs.put(item)

    def _close_kick(self) -> None:
        kick, self._kick = self._kick, None
        if kick is not None:
            os.close(kick[0])
            os.close(kick[1])

    def _collect(self) -> None:
        """The helper thread where poll() exists: runs the backlog, settles submitted calls."""
        assert self._kick is not None
        kick = self._kick[0]
        poller = select.poll()
        poller.register(kick, select.POLLIN)
        polled: _server.Server | None = None
        orphan = False  # the answer pipe is polled for a claimed call whose caller gave up
        while True:
            with self._state_lock:
                item: Job | Submitted | bool | None = False  # False: nothing to start now
                inflight = self._inflight
                if inflight is None and self._backlog:
                    item = self._backlog.popleft()
                    self._posting = item is not None
                orphaned = inflight is not None and inflight.orphaned
            if item is None:
                break
            if isinstance(item, Job):
                with self._run_lock:
                    item.run()
                with self._state_lock:
                    self._posting = False
                item.deliver()  # outside the lock: callbacks may call the interpreter
                continue
            if isinstance(item, Submitted):
                self._post_submitted(item)
                continue
            server = self._server
            if server is not polled and server is not None:
                poller.register(server.submitted_fd, select.POLLIN)
                polled = server
                with self._state_lock:
                    self._helper_polls_server = True
            if polled is not None and orphaned != orphan:
                if orphaned:
                    poller.register(polled.answer_fd, select.POLLIN)
                else:
                    poller.unregister(polled.answer_fd)
                orphan = orphaned
            for fd, _ in poller.poll():
                if fd == kick:
                    os.read(kick, 4096)
                elif polled is not None and fd == polled.submitted_fd:
                    polled.take_submitted()
                    self._settle_submitted(polled)
                elif orphan and polled is not None and fd == polled.answer_fd:
                    polled.take_answer()
                    self._settle_submitted(None)
        # Work queued before close() ran first; a call stuck in C is waited for here.
        with self._run_lock:
            self._teardown()
        with self._state_lock:
            self._close_kick()

    def _post_submitted(self, item: Submitted) -> None:
        """Post the backlog's head to the serving thread; its answer releases _run_lock."""
        if not item.future.set_running_or_notify_cancel():
            item.discard()  # cancelled while it waited
            with self._state_lock:
                self._posting = False
            return
        self._run_lock.acquire()
        try:
            if self._interp is None:
                raise InterpreterClosedError("the sub-interpreter is closed")
            self._settle(None)
            server = self._start_server()
        except BaseException as exc:  # noqa: BLE001 - delivered through the Future
            self._run_lock.release()
            with self._state_lock:
                self._posting = False
            item.discard()
            item.future.set_exception(exc)
            return
        with self._state_lock:
            self._inflight = item
            self._posting = False
        server.post(item.text, submitted=True)

    def _settle_submitted(self, server: _server.Server | None) -> None:
        """The submitted call in flight has answered (to ``server.submitted_fd``, or to the
        answer pipe of an orphaned call): take its answer and settle it."""
        with self._state_lock:
            item = self._inflight
            assert item is not None
            if server is not None:
                if item.claimed:
                    server.forward()  # claimed too late: the claiming caller takes it
                    return
                server.expect_claim = False
            self._inflight = None
        self._finish_submitted(item)

    def _finish_submitted(self, item: Submitted) -> None:
        """Take ``item``'s answer, release _run_lock, settle its Future (no longer in flight)."""
        item.future.reader = None
        try:
            try:
                value = item.finish(self._answer(item.call_id))
            finally:
                self._run_lock.release()
                item.discard()
                with self._state_lock:
                    if self._backlog and self._kick is not None:
                        os.write(self._kick[1], b"\0")  # the helper posts the next one
        except BaseException as exc:  # noqa: BLE001 - delivered through the Future
            item.future.set_exception(exc)
            return
        if type(value) is Later:
            threading.Thread(
                target=value.settle, args=(item.future,), name="envknit-later", daemon=True,
            ).start()
        else:
            item.future.set_result(value)

    def _read_own(self, item: Submitted, timeout: float | None) -> float | None:
        """``result()`` of a submitted call: wait on this thread for its answer if in flight.

        The caller claims the answer (see ``Server.claim``), so the serving thread wakes it
        directly: two wake-ups, as for a timed call, instead of three through the helper
        thread. Returns what is left of ``timeout`` for the Future's own wait.
        """
        with self._state_lock:
            server = self._server
            if self._inflight is not item or item.claimed or item.orphaned or server is None:
                return timeout  # queued, settled, or another caller waits: the Future tells
            item.claimed = True
            server.claim()
            server.expect_claim = True
        start = time.monotonic()
        answered = False
        try:
            answered = server.wait(timeout)
        finally:
            with self._state_lock:
                item.claimed = False
                if answered:
                    self._inflight = None
                elif not server.unclaim():
                    # The serving thread (or the helper thread, forwarding) took the claim: the
                    # answer comes to the answer pipe, which the helper thread watches now.
                    item.orphaned = True
                    if self._kick is not None:
                        os.write(self._kick[1], b"\0")
        if answered:
            self._finish_submitted(item)
        return None if timeout is None else max(timeout - (time.monotonic() - start), 0.0)

    def _main(self) -> None:
        jobs = self._jobs
        assert jobs is not None
        while True:
            job = jobs.get()
            if job is None:
                break
            with self._run_lock:
                if not job.claim.acquire(blocking=False):
                    continue  # the caller gave up (timeout) before the job started
                job.run()
            # Outside the lock: a Future's callbacks run here and may call the interpreter.
            job.deliver()
        # Jobs queued before close() ran first; a job stuck in C is waited for here, not by close().
        with self._run_lock:
            self._teardown()

    def _post(self, job: Job) -> None:
        with self._state_lock:  # nothing may be queued behind the stop sentinel
            if self._stopping:
                raise InterpreterClosedError("the sub-interpreter is closed")
            if self._thread is None:
                self._start_thread()
            self._enqueue(job)

    # -- any thread ------------------------------------------------------------------------------
    def submit(self, func: Callable[[], T]) -> Future[T]:
        """Run ``func`` on the helper thread; its result arrives in the Future."""
        future: Future[T] = Future()
        self._post(Job(func, future))
        return future

    def call(self, func: Callable[[], T], timeout: float | None = None) -> T:
        """Run ``func`` on the helper thread and wait for its result.

        Raises NotStarted or StillRunning when ``timeout`` (seconds) passes first.
        """
        job = Job(func, None)
        self._post(job)
        if not job.finished.acquire(timeout=-1 if timeout is None else timeout):
            if job.claim.acquire(blocking=False):
                raise NotStarted()
            self._stuck_job = job
            raise StillRunning()
        if job.ok:
            return cast(T, job.value)
        raise job.value

    def request(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request to the child module and wait (at most ``timeout``) for its answer."""
        call_id = next(self._ids)
        payload["id"] = call_id
        # Encoded in the caller's thread, so a value that is not JSON raises TypeError there.
        text, outbox = _encode(payload, self._pool)
        if timeout is None:
            try:
                with self._run_lock:
                    if self._stopping or self._interp is None:
                        raise InterpreterClosedError("the sub-interpreter is closed")
                    return self._request(text, call_id)
            finally:
                if outbox is not None:
                    outbox.discard()
        if _server.AVAILABLE:
            return self._served(text, call_id, outbox, timeout)
        try:
            return self.call(_discarding(lambda: self._request(text, call_id), outbox), timeout)
        except StillRunning:
            raise  # the job removes them when it ends
        except BaseException:
            if outbox is not None:  # also when the job never ran (NotStarted, closed)
                outbox.discard()
            raise

    def request_async(
        self, payload: dict[str, Any], finish: Callable[[dict[str, Any]], T]
    ) -> Future[T]:
        """Like request(), without waiting: a Future of ``finish(answer)``.

        ``finish`` runs on the helper thread as part of the job (one Future per call, no
        callback chain); it may return a ``Later`` for a follow-up that blocks.
        """
        call_id = next(self._ids)
        payload["id"] = call_id
        text, outbox = _encode(payload, self._pool)
        if _server.AVAILABLE:
            item = Submitted(text, call_id, outbox, finish, DirectFuture())
            item.future.reader = functools.partial(self._read_own, item)
            return self._submit_served(item)
        try:
            return self.submit(
                _discarding(lambda: finish(self._request(text, call_id)), outbox)
            )
        except BaseException:  # closed: the job never runs
            if outbox is not None:
                outbox.discard()
            raise

    def _submit_served(self, item: Submitted) -> Future[Any]:
        """Post ``item`` to the serving thread now if the interpreter is idle, else queue it.

        Posting from here skips one hand-off: the helper thread, already waiting in poll(),
        is woken by the answer only.
        """
        with self._state_lock:
            if self._stopping:
                item.discard()
                raise InterpreterClosedError("the sub-interpreter is closed")
            if self._thread is None:
                self._start_thread()
            server = self._server
            if (
                server is not None
                and self._helper_polls_server
                and self._inflight is None
                and not self._backlog
                and not self._posting
                and self._run_lock.acquire(blocking=False)
            ):
                if self._stuck or self._interp is None:
                    self._run_lock.release()
                else:
                    item.future.set_running_or_notify_cancel()
                    self._inflight = item
                    server.post(item.text, submitted=True)
                    return item.future
            self._enqueue(item)
        return item.future

    def close(self, timeout: float | None = None) -> bool:
        """Destroy the interpreter after the calls already queued; True when it is destroyed.

        If the helper thread was started, it destroys the interpreter after its queued jobs (and
        after a call still stuck in C); otherwise the closing thread does, once no inline call is
        running, or, when a timed call the caller gave up on still runs, the helper thread is
        started to destroy it once that call returns.
        """
        with self._state_lock:
            first = not self._stopping
            self._stopping = True
            thread = self._thread
            if first and thread is not None:
                self._enqueue(None)
        if thread is None:
            if not self._run_lock.acquire(timeout=-1 if timeout is None else timeout):
                return False
            try:
                if self.busy() and timeout is not None:
                    thread = self._start_closer()
                    if thread is None and not self._settle(timeout):
                        return False  # at exit: the exit handler waits longer
                if thread is None:
                    self._teardown()
                    return True
            finally:
                self._run_lock.release()
        assert thread is not None
        if threading.current_thread() is not thread:
            thread.join(timeout)
        return not thread.is_alive()

    def _start_closer(self) -> threading.Thread | None:
        """The helper thread, started to destroy the interpreter once a stuck call returns.

        None at interpreter shutdown, when no thread can start.
        """
        with self._state_lock:
            if self._thread is None:
                try:
                    self._start_thread()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    return None
                self._enqueue(None)
            return self._thread

    @property
    def alive(self) -> bool:
        if self._stopping:
            return False
        return self._thread is None or self._thread.is_alive()


def _encode(payload: dict[str, Any], pool: _lane.Pool) -> tuple[str, _lane.Outbox | None]:
    """The request text, and the lane files its buffers went to (None without buffers)."""
    outbox = None
    packed = payload
    if _may_pack(payload):
        # Long lists of numbers travel packed (a list of 100,000 floats: one buffer).
        outbox = _lane.Outbox(pool=pool)
        packed = _JSON.pack(payload, outbox)
        if packed is payload:
            outbox = None
    if outbox is None:
        try:
            return json.dumps(payload), None
        except TypeError:  # not plain JSON: buffers go on the lane (anything else fails again)
            outbox = _lane.Outbox(pool=pool)
    try:
        return _JSON.dumps(packed, outbox), outbox
    except _lane.LaneTooLarge as exc:
        outbox.discard()
        raise MessageTooLargeError(exc.size, exc.limit, buffers=True) from None
    except _lane.LaneError as exc:  # no room in /dev/shm, a bad ENVKNIT_LANE_PREFIX
        outbox.discard()
        raise EnvknitError(f"cannot send a buffer to the sub-interpreter: {exc}") from None
    except BaseException:
        outbox.discard()
        raise


def _may_pack(payload: dict[str, Any]) -> bool:
    """Whether an input may hold a long list of numbers (cheap: one look per input)."""
    for group in (payload.get("inputs"), payload.get("kwargs")):
        if group:
            for v in group.values():
                if type(v) is dict or (type(v) is list and len(v) >= _lane.NUMBERS_MIN):
                    return True
    for v in payload.get("args") or ():
        if type(v) is dict or (type(v) is list and len(v) >= _lane.NUMBERS_MIN):
            return True
    return False


def _discarding(func: Callable[[], T], outbox: _lane.Outbox | None) -> Callable[[], T]:
    """``func``, removing the request's lane files the child did not take once it ran."""
    if outbox is None:
        return func

    def run() -> T:
        try:
            return func()
        finally:
            outbox.discard()

    return run


def _as_error(failure: RunFailure) -> SubInterpreterError:
    return SubInterpreterError(failure.type_name, failure.message, failure.traceback)
