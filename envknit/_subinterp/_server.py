"""The host's end of the thread that serves timed calls from inside a sub-interpreter."""

from __future__ import annotations

import json
import os
import select

from . import _serving
from ._contract import Adapter

__all__ = ["AVAILABLE", "SERVING_PATH", "SPIN_SECONDS", "Server"]

# Why a thread parked INSIDE the interpreter, not a host thread, runs calls with a timeout.
# The caller must be able to stop waiting while the code is stuck in a C function, so someone
# else must run it. A host thread that runs it costs two wake-ups, and each comes with a fight
# for the main GIL: the waker still holds it when the woken thread, on the other core, wants it
# back, so the woken thread sleeps a second time on the GIL (measured on 3.12.1 and 3.13.0:
# 5.6-6.0 voluntary context switches per timed call, and 5.5 for a bare two-lock ping-pong
# between two host threads). The serving thread lives in the sub-interpreter and needs only
# that interpreter's GIL, which nobody else holds; the host caller waits with the main GIL
# released. So each side wakes the other at most once (2.0 context switches per call), and
# the call skips the exec() of a script (binding shared data, on 3.13 a fresh thread state),
# which makes it cost what an untimed call costs.
#
# Even one wake-up is costly on a VM: a thread that sleeps and is woken from the other core
# takes tens of microseconds to run again, which on a quiet machine made a timed call 2.5x the
# floor. So both ends look before they sleep (_serving.Waiter): the caller polls for its
# answer, the serving thread, after each answer, for the next request, each yielding its core
# between looks, for up to SPIN_SECONDS, adapting like the worker's readers. Calls in a row
# then wake nobody (0 context switches per call); an idle serving thread sleeps in poll().
#
# submit() posts to the same thread (when the interpreter is idle). A caller waiting in
# result() claims the answer (one byte on a claim pipe): the serving thread, which looks for a
# claim once it has answered, wakes that caller directly, as for a timed call. Unclaimed
# answers (nobody in result() yet: done(), callbacks, futures.wait) wake the host helper
# thread, waiting in poll(), which settles the Future. Who takes which answer, when a claim
# comes late or its caller gives up: see _thread.Driver._read_own.
#
# Wake-ups travel through pipes (one byte per request, one per answer): a sub-interpreter
# cannot share a lock with the host, and the cross-interpreter queues of 3.12/3.13 cannot be
# waited on. The texts travel through queues like every other answer. Closing the request
# pipe's write end is the stop signal (the thread reads EOF).
#
# Windows has no poll() on pipes: there, calls with a timeout use the host helper thread.
# On 3.12 the serving thread was off for a while: CI's stress test (four interpreters, two
# driver threads) died once of SIGSEGV with nothing on stderr. The cause was the teardown: the
# host closed the request pipe, then entered the interpreter to join the thread, and 3.12.1's
# run_string() walks the interpreter's thread list without a lock before entering, so the thread
# freeing its thread state meanwhile made the walk read freed memory (core dump: a freed
# PyThreadState's `next`). The thread is now stopped from inside (Driver._teardown); see
# docs/hard-isolation.md and tests/test_subinterp_safety.py for the reproducer.
AVAILABLE = hasattr(select, "poll")
#: How long either end of a served call looks for its wake-up before it sleeps (0: at once).
SPIN_SECONDS = _serving.SPIN
#: The serving thread's loop, which the host sends compiled (see ``_thread._start_server``).
SERVING_PATH = os.path.abspath(_serving.__file__)


class Server:
    """Pipes and a request queue for one interpreter's serving thread (see ``_serving.serve``).

    Not thread-safe: the driver uses it under its run lock, or, for a submitted call in
    flight, under its state lock.
    """

    def __init__(self, adapter: Adapter) -> None:
        self._adapter = adapter
        self._requests = adapter.create_queue()
        self._fds: list[int] = []
        try:
            # (read, write) pairs: host -> thread ("a request is queued"), thread -> host
            # ("an answer is queued") for timed calls and claimed submitted ones, the same for
            # other submitted ones, and host -> thread ("a caller waits for the submitted
            # answer in flight": see claim()). os.pipe() fds are not inherited by child
            # processes.
            for _ in range(4):
                self._fds.extend(os.pipe())
            os.set_blocking(self._fds[6], False)
        except BaseException:
            self.close()
            raise
        self._waiter = _serving.Waiter(self._fds[2], SPIN_SECONDS)
        #: whether the last submitted answer was claimed (its caller waited in result()): the
        #: next one probably will be too (see ``post``)
        self.expect_claim = False

    def shared(self) -> dict[str, object]:
        """What the start script needs bound in ``__main__`` (see ``_thread._START_SCRIPT``)."""
        fds = self._fds
        config = {"read": fds[0], "answer": fds[3], "submit": fds[5], "claim": fds[6],
                  "spin": SPIN_SECONDS}
        return {"__envknit_rq__": self._requests, "__envknit_serve_config__": json.dumps(config)}

    def post(self, text: str, *, submitted: bool = False) -> None:
        """Queue one request and wake the serving thread.

        The answer's wake-up goes to ``wait()`` or, ``submitted``, to ``submitted_fd`` (unless
        the request is claimed first; with ``expect_claim`` the serving thread looks for a
        claim for a moment before it gives up).
        """
        self._adapter.queue_put(self._requests, text)
        os.write(self._fds[1], (b"\2" if self.expect_claim else b"\1") if submitted else b"\0")

    @property
    def submitted_fd(self) -> int:
        """Readable when an unclaimed submitted answer is queued (see ``take_submitted``)."""
        return self._fds[4]

    def take_submitted(self) -> None:
        os.read(self._fds[4], 1)

    @property
    def answer_fd(self) -> int:
        """Readable when a timed or claimed answer is queued (see ``wait``)."""
        return self._fds[2]

    def take_answer(self) -> None:
        os.read(self._fds[2], 1)

    def wait(self, timeout: float | None) -> bool:
        """Wait (at most ``timeout`` seconds) for the next answer; True once it is queued.

        One waiter at a time (the driver's run lock, or the claim of the call in flight).
        """
        if not self._waiter.wait(timeout):
            return False
        os.read(self._fds[2], 1)
        return True

    def claim(self) -> None:
        """Ask that the submitted answer in flight wake ``wait()`` rather than ``submitted_fd``.

        The serving thread looks for a claim once the call has answered: if it finds none, the
        answer goes to ``submitted_fd`` and the claim stays in the pipe (``unclaim`` takes it).
        """
        os.write(self._fds[7], b"\0")

    def unclaim(self) -> bool:
        """Take back a claim; False if the serving thread (or ``forward``) already took it."""
        try:
            return bool(os.read(self._fds[6], 1))
        except BlockingIOError:
            return False

    def forward(self) -> None:
        """An answer that came to ``submitted_fd`` was claimed too late: send it to ``wait()``."""
        self.unclaim()  # the serving thread, having found no claim, left it there
        os.write(self._fds[3], b"\0")

    def answered(self) -> bool:
        """Whether the next answer is queued, without taking its wake-up (any thread)."""
        peek = select.poll()  # not the waiter's: a caller may be waiting in it
        peek.register(self._fds[2], select.POLLIN)
        return bool(peek.poll(0))

    def hand_over_stop(self) -> int | None:
        """The request pipe's write end, now the caller's to close (None if already handed over).

        Closing it stops the thread once it is idle (it reads EOF). The script that prepares the
        destroy closes it from inside the interpreter, not the host: see ``Driver._teardown``.
        """
        fd, self._fds[1] = self._fds[1], -1
        return None if fd < 0 else fd

    def close(self) -> None:
        """Release the pipes and the queue (after the serving thread has ended)."""
        fds, self._fds = self._fds, [-1] * len(self._fds)
        for fd in fds:
            if fd >= 0:
                os.close(fd)
        if self._requests is not None:
            requests, self._requests = self._requests, None
            self._adapter.destroy_queue(requests)
