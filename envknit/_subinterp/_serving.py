"""Runs INSIDE an envknit sub-interpreter (and in the host): the serving thread, and its wait.

Standard library only. The host sends this file compiled when it starts an interpreter's
serving thread (``_child.start_server``), and imports it itself for ``Waiter``: one wait, the
same on both sides of a served call (see envknit/_subinterp/_server.py for the design).
"""

from __future__ import annotations

import os
import select
import time

# typing costs milliseconds to import in a fresh interpreter; mypy still sees it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["SPIN", "Waiter", "serve"]

#: How long a waiter looks for its wake-up before it sleeps (seconds; 0: it sleeps at once).
#: The same figure as the worker's readers (envknit/_worker/_protocol.py, ``SPIN``).
SPIN = 50e-6
# A yield that kept a waiter off its core this long means another process ran there...
_STOLEN = 1e-3
# ... after which the waiter sleeps at once for this long.
_BACK_OFF = 0.01
# poll() takes at most INT_MAX milliseconds (24.8 days); longer waits go in slices of a day.
_SLICE = 86400.0


class Waiter:
    """Waits until one fd is readable: looks for a while, yielding its core, then sleeps.

    A thread that sleeps and is woken from another core costs tens of microseconds on a VM
    before it runs again; one that looks (``poll(0)``) between ``sched_yield()`` calls is
    running when the byte comes, and gives its core to whoever else wants it meanwhile. The
    budget adapts like the worker's ``FrameReader``: a wait that a longer look would have caught
    grows it (up to ``spin``); a long wait shrinks it, down to sleeping at once, so a thread that
    waits for rare requests looks only briefly after each. A look that lost the core for over a
    millisecond (another process wanted it) makes the waiter sleep at once for a while, so it
    never fights a busy core. One thread waits at a time.
    """

    __slots__ = ("_calm", "_poll", "budget", "spin")

    def __init__(self, fd: int, spin: float = SPIN) -> None:
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        #: the longest look before sleeping (0: never look); ``budget`` adapts below it
        self.spin = spin
        self.budget = spin
        self._calm = 0.0  # until then (perf_counter) waits sleep at once

    def wait(self, timeout: float | None = None) -> bool:
        """Wait at most ``timeout`` seconds (None: for ever); True once the fd is readable."""
        poll = self._poll.poll
        clock = time.perf_counter
        start = clock()
        budget = self.budget
        if start < self._calm:
            budget = -1.0  # sleep at once, and leave the budget as it is
        elif budget > 0:
            pause = os.sched_yield
            end = start + (budget if timeout is None else min(budget, timeout))
            before = start
            while not poll(0):
                pause()
                now = clock()
                if now - before > _STOLEN:
                    self._calm = now + _BACK_OFF
                    budget = -1.0
                    break
                if now > end:
                    break
                before = now
            else:
                return True
        if timeout is None:
            while not poll(None):
                pass
        else:
            deadline = start + timeout
            while True:
                remaining = max(deadline - clock(), 0.0)
                if poll(min(remaining, _SLICE) * 1000.0):
                    break
                if remaining <= _SLICE:
                    return False
        if budget >= 0 and self.spin:
            # Like the kernel's guest halt-polling: a wait that ended soon after the longest
            # look (a sleeper's wake-up included) would have been caught by it (grow); a longer
            # one makes looking a waste (shrink, down to sleeping at once, from where short
            # waits grow it back).
            if clock() - start <= 2 * self.spin:
                self.budget = min(self.spin, max(budget * 2, self.spin / 8))
            else:
                self.budget = budget / 2 if budget > self.spin / 8 else 0.0
        return True


def serve(config: dict[str, Any], recv: Any, send: Any, handle: Any) -> None:
    """The serving thread: for each byte on the request pipe, one request in, one answer out.

    ``config`` holds the fds: ``read`` (requests), ``answer`` (timed calls' answers, and
    submitted ones whose caller claimed them), ``submit`` (other submitted answers), ``claim``
    (non-blocking: a byte there means a caller waits for the submitted answer in flight on the
    ``answer`` pipe), and ``spin``. The byte read says which: 0 a timed call, 1 a submitted
    one, 2 a submitted one whose claim is expected (the host's last one was claimed): it is
    looked for up to ``spin`` if it has not come yet, which spares a late claim's detour
    through the host's helper thread. EOF (the host closed the request pipe) ends the thread.
    It holds the interpreter's GIL only while it runs a request or looks for the next one.
    """
    read_fd, answer_fd, submit_fd, claim_fd = (
        config["read"], config["answer"], config["submit"], config["claim"]
    )
    spin = config["spin"]
    waiter = Waiter(read_fd, spin)
    claims = select.poll()
    claims.register(claim_fd, select.POLLIN)
    read, write, wait, claimed = os.read, os.write, waiter.wait, claims.poll
    clock = time.perf_counter
    while wait() and (wake := read(read_fd, 1)):
        text = recv()
        if text is not None:
            send(handle(text))
        fd = answer_fd
        if wake[0]:
            if wake[0] == 2 and not claimed(0):
                end = clock() + spin
                while not claimed(0) and clock() < end:
                    os.sched_yield()
            try:
                if not read(claim_fd, 1):
                    fd = submit_fd
            except BlockingIOError:
                fd = submit_fd
        write(fd, b"\0")
