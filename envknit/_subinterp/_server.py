"""The host's end of the thread that serves timed calls from inside a sub-interpreter."""

from __future__ import annotations

import os
import select
import time

from ._contract import Adapter

__all__ = ["AVAILABLE", "Server"]

# Why a thread parked INSIDE the interpreter, not a host thread, runs calls with a timeout.
# The caller must be able to stop waiting while the code is stuck in a C function, so someone
# else must run it. A host thread that runs it costs two wake-ups, and each comes with a fight
# for the main GIL: the waker still holds it when the woken thread, on the other core, wants it
# back, so the woken thread sleeps a second time on the GIL (measured on 3.12.1 and 3.13.0:
# 5.6-6.0 voluntary context switches per timed call, and 5.5 for a bare two-lock ping-pong
# between two host threads). The serving thread lives in the sub-interpreter and needs only
# that interpreter's GIL, which nobody else holds; the host caller waits with the main GIL
# released. So each side wakes the other exactly once (2.0 context switches per call), and the
# call skips the exec() of a script (binding shared data, on 3.13 a fresh thread state), which
# makes it cost what an untimed call costs.
#
# submit() posts to the same thread (when the interpreter is idle) and the host helper thread,
# waiting in poll() on a pipe of its own, settles the Future: three wake-ups instead of the
# two of a host-thread hop plus its GIL fights, and no exec() either.
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
#: How long a caller looks for its answer before it sleeps (0: sleep at once).
SPIN_SECONDS = 50e-6
# poll() takes at most INT_MAX milliseconds (24.8 days); longer waits go in slices of a day.
_SLICE_SECONDS = 86400.0


class Server:
    """Pipes and a request queue for one interpreter's serving thread (see ``_child.serve``).

    Not thread-safe: the driver uses it under its run lock.
    """

    def __init__(self, adapter: Adapter) -> None:
        self._adapter = adapter
        self._requests = adapter.create_queue()
        self._fds: list[int] = []
        try:
            # (read, write) pairs: host -> thread ("a request is queued"), thread -> host
            # ("an answer is queued") for timed calls, and the same for submitted ones.
            # os.pipe() fds are not inherited by child processes.
            self._fds.extend(os.pipe())
            self._fds.extend(os.pipe())
            self._fds.extend(os.pipe())
        except BaseException:
            self.close()
            raise
        self._poll = select.poll()
        self._poll.register(self._fds[2], select.POLLIN)

    def shared(self) -> dict[str, object]:
        """What the start script needs bound in ``__main__`` (see ``_thread._START_SCRIPT``)."""
        return {
            "__envknit_rq__": self._requests,
            "__envknit_read_fd__": self._fds[0],
            "__envknit_answer_fd__": self._fds[3],
            "__envknit_submit_fd__": self._fds[5],
        }

    def post(self, text: str, *, submitted: bool = False) -> None:
        """Queue one request and wake the serving thread.

        The answer's wake-up goes to ``wait()`` or, ``submitted``, to ``submitted_fd``.
        """
        self._adapter.queue_put(self._requests, text)
        os.write(self._fds[1], b"\1" if submitted else b"\0")

    @property
    def submitted_fd(self) -> int:
        """Readable when a submitted request's answer is queued (see ``take_submitted``)."""
        return self._fds[4]

    def take_submitted(self) -> None:
        os.read(self._fds[4], 1)

    def wait(self, timeout: float | None) -> bool:
        """Wait (at most ``timeout`` seconds) for the next answer; True once it is queued.

        One waiter at a time (the driver's run lock): a poll object refuses concurrent polls.
        """
        # Look for a while first, giving up the core between looks, before sleeping in poll(): a
        # sleeping caller that another core must wake costs tens of microseconds on a VM (the
        # worker protocol's FrameReader does the same, see docs/workers.md).
        poll, spin_until = self._poll.poll, time.perf_counter() + SPIN_SECONDS
        while not poll(0):
            if time.perf_counter() >= spin_until:
                break
            os.sched_yield()
        if timeout is None:
            self._poll.poll(None)
        else:
            deadline = time.monotonic() + timeout
            while True:
                remaining = max(deadline - time.monotonic(), 0.0)
                if self._poll.poll(min(remaining, _SLICE_SECONDS) * 1000.0):
                    break
                if remaining <= _SLICE_SECONDS:
                    return False
        os.read(self._fds[2], 1)
        return True

    def answered(self) -> bool:
        """Whether the next answer is queued, without taking its wake-up (any thread)."""
        peek = select.poll()  # not self._poll: a caller may be waiting in it
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
