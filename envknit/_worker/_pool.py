"""Worker processes: spawning, the request/reply exchange, crash and timeout handling, the pool."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _lane
from ..errors import (
    EnvknitTimeoutError,
    MessageTooLargeError,
    ProtocolError,
    UnsupportedPlatformError,
    WorkerCrashedError,
    WorkerError,
)
from . import _protocol as P
from ._errors import remote_error, too_large

if TYPE_CHECKING:
    from typing import Protocol

    class _Ref(Protocol):
        """What ``Worker.request`` reads of the proxy a request is about (a WorkerProxy)."""

        _ek_worker: Worker
        _ek_gen: int
        _ek_id: int

        def _ek_ref(self, worker: Worker) -> int: ...
        def _ek_wrap(self, ref: dict[str, Any]) -> Any: ...
        def _ek_send(self, value: Any) -> dict[str, int]: ...

__all__ = ["Worker", "WorkerSpec", "get_worker", "shutdown_workers"]

CHILD_SCRIPT = Path(__file__).resolve().with_name("_boot.py")  # runs _child.py
#: The largest message sent or accepted, in bytes (64 MiB); read when a worker is created.
MAX_MESSAGE_SIZE = P.DEFAULT_MAX_MESSAGE_SIZE
#: Once a reply frame has started, the rest must arrive within this many seconds, whatever the
#: call's timeout (stray bytes on the pipe can then never hang the host); read when a worker
#: is created, and sent to the worker for the frames it reads.
FRAME_TIMEOUT = P.DEFAULT_FRAME_TIMEOUT
#: How long each side polls for the other's next frame before it sleeps (seconds; 0: never
#: polls). Read when a worker is created, and sent to the worker (see ``P.SPIN``).
SPIN = P.SPIN
#: How long a new worker may take to start and answer the handshake.
STARTUP_TIMEOUT = 60.0
#: After this many seconds without a reply, check that the worker is alive before a request.
IDLE_RECHECK = 0.05
#: How long a worker may take to exit after its pipe is closed before it is killed.
EXIT_GRACE = 2.0


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerSpec:
    """What makes two workers interchangeable: the interpreter and the ``sys.path`` entries."""

    python: str
    paths: tuple[str, ...]
    label: str = ""

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return (self.python, self.paths)


def _death(returncode: int | None) -> tuple[str, int | None, str | None]:
    """A sentence saying how a process ended, its exit code and its signal name."""
    if returncode is None:
        return "stopped answering", None, None
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}", None, name
    return f"exited with code {returncode}", returncode, None


class Worker:
    """One environment's worker process, replaced transparently after a crash or timeout.

    One request is in flight at a time (the lock); every request carries an id and the reply
    must carry the same one. A worker that timed out or was interrupted is killed, never
    reused, so a late reply can never be read as the answer to a later request.
    """

    def __init__(self, spec: WorkerSpec, limit: int | None = None) -> None:
        self.spec = spec
        self.limit = MAX_MESSAGE_SIZE if limit is None else limit
        self.lock = threading.Lock()
        self.generation = 0
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._wfd = -1
        self._reader: P.FrameReader | None = None
        self._next_id = 0
        self._last_reply = 0.0
        self._released: deque[tuple[int, int]] = deque()
        #: the lane files of the request being sent (``encode`` callbacks describe into it).
        self.outbox = _lane.Outbox(pool=_lane.Pool())

    # -- lifecycle ----------------------------------------------------------------------------
    def _spawn(self) -> None:
        if sys.platform == "win32":  # pass_fds and poll() are POSIX-only
            raise UnsupportedPlatformError(
                "envknit workers need a POSIX system (Linux, macOS); on Windows use "
                "envknit.use() for pure-Python packages"
            )
        host_r, child_w = os.pipe()
        child_r, host_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [self.spec.python, "-I", "-S", str(CHILD_SCRIPT), str(child_r), str(child_w)],
                pass_fds=(child_r, child_w),
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError as exc:
            for fd in (host_r, child_w, child_r, host_w):
                os.close(fd)
            raise WorkerError(f"cannot start a worker for {self.spec.label}: {exc}") from exc
        os.close(child_r)
        os.close(child_w)
        # Non-blocking, so that a request to a worker that stopped reading honours the timeout
        # (write_frame waits for room with a deadline) instead of blocking in write().
        os.set_blocking(host_w, False)
        self._proc, self._wfd = proc, host_w
        self._reader = P.FrameReader(host_r, self.limit, FRAME_TIMEOUT, SPIN)
        self.generation += 1
        self.pid = proc.pid
        self._released.clear()
        with _pool_lock:
            _live.add(self)
        hello = {
            "protocol": P.PROTOCOL_VERSION,
            "limit": self.limit,
            "frame_timeout": FRAME_TIMEOUT,
            "spin": SPIN,
            "path": list(self.spec.paths),
        }
        try:
            P.write_frame(
                self._wfd, P.dumps(hello), self.limit, time.monotonic() + STARTUP_TIMEOUT
            )
            answer = P.loads(self._reader.read(time.monotonic() + STARTUP_TIMEOUT))
        except (P.WireError, OSError) as exc:
            how, code, sig = self._stop()
            if type(exc) is P.WireError:  # a whole answer, but garbled
                raise ProtocolError(
                    f"bad start-up answer from the worker for {self.spec.label}: {exc}"
                ) from None
            if isinstance(exc, P.FrameTimeout):
                how = f"did not answer within {STARTUP_TIMEOUT:g} s"
            raise WorkerCrashedError(
                f"the worker for {self.spec.label} (pid {proc.pid}) {how} while starting",
                exit_code=code, signal=sig,
            ) from None
        if not isinstance(answer, dict) or answer.get("protocol") != P.PROTOCOL_VERSION:
            theirs = answer.get("protocol") if isinstance(answer, dict) else None
            self._stop()
            raise ProtocolError(
                f"the worker for {self.spec.label} speaks protocol {theirs!r}, this envknit "
                f"speaks {P.PROTOCOL_VERSION}; the worker module and envknit are out of step"
            )
        self._last_reply = time.monotonic()

    def _stop(
        self, *, graceful: bool = False, now: bool = False
    ) -> tuple[str, int | None, str | None]:
        """End the process (kill unless ``graceful``), close the pipes, say how it ended.

        ``now`` kills at once: the worker is alive but must not go on (a timeout, a protocol
        error), and given a moment it would only fail to write to the closed pipe.
        """
        proc, self._proc = self._proc, None
        with _pool_lock:
            _live.discard(self)
        assert self.outbox.pool is not None
        self.outbox.pool.close()  # its receiver is gone: what it holds went with it
        if self._wfd >= 0:
            os.close(self._wfd)
            self._wfd = -1
        if self._reader is not None:
            os.close(self._reader.fd)
            self._reader = None
        if proc is None:
            return _death(None)
        if graceful:
            try:
                proc.wait(EXIT_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
        elif now:
            proc.kill()
        elif proc.poll() is None:
            # It may be exiting on its own (a crash we are reporting): give it a moment so the
            # report names the real signal or exit code rather than our SIGKILL.
            try:
                proc.wait(0.5)
            except subprocess.TimeoutExpired:
                proc.kill()
        code = proc.wait()
        if code != 0:
            # Killed or crashed: lane files it made and nobody took would outlive it.
            _lane.sweep(pid=proc.pid)
        return _death(code)

    def close(self) -> None:
        """Ask the worker to exit (it sees end of file) and wait for it, killing it if needed."""
        with self.lock:
            self._stop(graceful=True)

    def hang_up(self) -> None:
        """Close the request pipe so the process starts exiting, without waiting for it.

        A worker busy in another thread for longer than ``EXIT_GRACE`` is killed instead; that
        request then sees the crash. ``close()`` afterwards waits for the exit.
        """
        if self.lock.acquire(timeout=EXIT_GRACE):
            try:
                if self._wfd >= 0:
                    os.close(self._wfd)
                    self._wfd = -1
            finally:
                self.lock.release()
        else:
            proc = self._proc  # read once: the busy thread may be clearing it
            if proc is not None:
                proc.kill()

    def disown(self) -> subprocess.Popen[bytes] | None:
        """In a forked child: drop the parent's process and pipes without touching the process.

        Returns the process object, which the caller must keep (never wait on it, never let it
        be collected: it is the parent's child, not ours).
        """
        self.lock = threading.Lock()
        proc = self._proc
        for fd in (self._wfd, self._reader.fd if self._reader is not None else -1):
            if fd >= 0:
                os.close(fd)
        self._wfd, self._reader, self._proc = -1, None, None
        self.outbox = _lane.Outbox(pool=_lane.Pool())  # the parent's files stay the parent's
        return proc

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- handles ------------------------------------------------------------------------------
    def release(self, generation: int, handle: int) -> None:
        """Forget a handle; sent with the next request. Safe from any thread and from GC."""
        self._released.append((generation, handle))

    def _take_released(self) -> list[int]:
        # deque.append/popleft are atomic: a finalizer may append from any thread meanwhile.
        taken = []
        while self._released:
            generation, handle = self._released.popleft()
            if generation == self.generation:
                taken.append(handle)
        return taken

    # -- the exchange -------------------------------------------------------------------------
    def request(
        self,
        op: str,
        fields: dict[str, Any] | None,
        *,
        timeout: float | None,
        values: dict[str, Any] | None = None,
        ref: _Ref | None = None,
        decode: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Any:
        """Send ``op`` with ``fields`` and the encoded ``values``; return the decoded reply, or
        raise the remote error if it failed.

        ``ref`` is the proxy the request is about: its handle goes in the message, and other
        proxies of this worker may appear in ``values``; ``decode(ref)`` (by default: a new
        proxy) turns the handles of the reply into values. All of it runs under the lock, after
        a respawn if one was needed, so handles are made and checked against the live process.
        """
        with self.lock:
            proc = self._proc
            # Polling costs a system call per request: only look again after a quiet spell. A
            # worker that died sooner than that is reported as crashed by this request. One
            # whose pipe shutdown_workers() closed is on its way out: start a new one.
            if proc is None or self._wfd < 0 or (
                time.monotonic() - self._last_reply > IDLE_RECHECK and proc.poll() is not None
            ):
                if proc is not None:
                    self._stop()
                self._spawn()
            message = {} if fields is None else dict(fields)
            other = None
            if ref is not None:
                if ref._ek_worker is self and ref._ek_gen == self.generation:
                    message["ref"] = ref._ek_id  # the common case, without a method call
                else:
                    message["ref"] = ref._ek_ref(self)
                other = ref._ek_send
                if decode is None:
                    decode = ref._ek_wrap
            if not values:
                return self.request_locked(op, message, timeout=timeout, decode=decode)
            outbox = self.outbox  # one per worker: requests take turns under the lock
            try:
                limit = self.limit
                try:
                    for key, value in values.items():
                        message[key] = P.encode(value, other, 0, limit, outbox)
                except P.FrameTooLarge as exc:  # a bytes argument, caught before encoding
                    raise MessageTooLargeError(exc.size, exc.limit) from None
                except _lane.LaneTooLarge as exc:
                    raise MessageTooLargeError(exc.size, exc.limit, buffers=True) from None
                except _lane.LaneError as exc:
                    raise WorkerError(f"cannot send a buffer to the worker: {exc}") from None
                return self.request_locked(op, message, timeout=timeout, decode=decode)
            finally:
                # Files the worker mapped are already unlinked; this removes the others (a
                # request that failed before or while the worker read it).
                if outbox.total:
                    outbox.discard()

    def request_locked(
        self,
        op: str,
        message: dict[str, Any],
        *,
        timeout: float | None,
        decode: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Any:
        """``request`` for a caller that already holds the lock and has a live process."""
        self._next_id += 1
        rid = message["i"] = self._next_id
        message["op"] = op
        current = self._take_released() if self._released else None
        if current:
            message["rel"] = current
        try:
            payload = P.dumps(message)
        except P.NotPlain:  # an int past the int/str digit limit: a TypeError for the caller
            self._released.extend((self.generation, h) for h in current or ())
            raise
        if len(payload) > self.limit:
            self._released.extend((self.generation, h) for h in current or ())
            raise MessageTooLargeError(len(payload), self.limit)
        reply, raw = self._exchange(payload, op, timeout)
        self._last_reply = time.monotonic()
        if not isinstance(reply, dict) or reply.get("i") != rid:
            self._stop(now=True)
            raise ProtocolError(f"reply {reply!r:.80} does not answer request {rid}")
        if "ok" in reply:
            value = reply["ok"]
            if type(value) in P.SCALARS or not P.is_tagged(raw):
                return value  # nothing to decode: a cheap byte search instead of a walk
            try:
                return P.decode(value, decode, _lane.receive)
            except (P.WireError, _lane.LaneError) as exc:
                # Our encoder never sends a bad value, and a buffer's file is the worker's
                # until taken: this worker is broken (stopping it sweeps its files).
                self._stop(now=True)
                raise ProtocolError(
                    f"bad reply from the worker for {self.spec.label}: {exc}"
                ) from None
        if "big" in reply:
            raise too_large(reply["big"])
        raise remote_error(reply.get("err"))

    def _exchange(self, payload: bytes, op: str, timeout: float | None) -> tuple[Any, bytes]:
        """Send a request frame; return the reply, loaded and as the frame's payload."""
        assert self._reader is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            P.write_frame(self._wfd, payload, self.limit, deadline)
            raw = self._reader.read(deadline)
            return P.loads(raw), raw
        except P.FrameTimeout:
            pid = self.pid
            self._stop(now=True)
            raise EnvknitTimeoutError(
                f"{op!r} in the worker for {self.spec.label} did not finish within {timeout:g} s; "
                f"the worker (pid {pid}) was killed and the next call starts a new one"
            ) from None
        except (P.PeerClosed, BrokenPipeError) as exc:
            pid = self.pid
            how, code, sig = self._stop()
            raise WorkerCrashedError(
                f"the worker for {self.spec.label} (pid {pid}) {how} during {op!r}; "
                "the next call starts a new one",
                exit_code=code, signal=sig,
            ) from exc
        except P.FrameTooLarge as exc:
            self._stop(now=True)  # the stream cannot be resynchronised past an unread payload
            raise MessageTooLargeError(exc.size, exc.limit) from None
        except P.WireError as exc:
            self._stop(now=True)
            raise ProtocolError(f"bad reply from the worker for {self.spec.label}: {exc}") from None
        except BaseException:
            # KeyboardInterrupt (or anything unexpected) mid-request: the reply may still come,
            # so this process can never be trusted to answer the next request in order.
            self._stop(now=True)
            raise


_pool: dict[tuple[str, tuple[str, ...]], Worker] = {}
# Every worker with a process, pooled or not: a proxy kept across shutdown_workers() respawns
# its (no longer pooled) worker, which must still be stopped at exit.
_live: set[Worker] = set()
_pool_lock = threading.Lock()
_hooks_installed = False


def get_worker(spec: WorkerSpec) -> Worker:
    """The pooled worker for ``spec`` (created on first use; its process starts lazily)."""
    global _hooks_installed
    with _pool_lock:
        found = _pool.get(spec.key)
        if found is None:
            found = _pool[spec.key] = Worker(spec)
            if not _hooks_installed:
                # Here rather than at import: importing envknit installs no hook of any kind.
                atexit.register(shutdown_workers)
                os.register_at_fork(after_in_child=_forget_after_fork)
                _hooks_installed = True
        return found


def shutdown_workers() -> None:
    """Stop every pooled worker process. Proxies from them stop working; new calls respawn."""
    with _pool_lock:
        workers = list(set(_pool.values()) | _live)
        _pool.clear()
    for w in workers:
        w.hang_up()  # every pipe first, so that all workers exit in parallel before we wait
    for w in workers:
        w.close()


def live_workers() -> Sequence[Worker]:
    """The workers that have a process (for tests and diagnostics)."""
    with _pool_lock:
        return list(_live)


_not_ours: list[subprocess.Popen[bytes]] = []


def _forget_after_fork() -> None:
    # A forked child shares the parent's pipes: it must neither use nor stop the parent's
    # workers. Close its copies of the descriptors and start with an empty pool.
    global _pool_lock
    _pool_lock = threading.Lock()
    for w in set(_pool.values()) | _live:
        proc = w.disown()
        if proc is not None:
            _not_ours.append(proc)  # not our child: never wait on it, never drop it
    _pool.clear()
    _live.clear()

