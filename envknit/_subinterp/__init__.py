"""Gen 2 hard isolation: SubInterpreterEnv over one adapter per Python version."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from ..errors import (
    CExtIncompatibleError,
    EnvknitTimeoutError,
    InterpreterClosedError,
    SubInterpreterError,
    UnsupportedPlatformError,
)
from ..names import validate_env_name
from . import _safety
from ._adapter import get_adapter
from ._thread import Driver
from ._work import Later, NotStarted, StillRunning

__all__ = ["SubInterpreterEnv", "_reset_for_tests"]

# How long the host waits beyond a call's timeout for the in-interpreter guard to stop it.
HOST_GRACE_SECONDS = 1.0
# Warm interpreters kept per environment name for SubInterpreterEnv(..., reuse=True).
POOL_SIZE_PER_NAME = 4

# The probe process that decides C-extension verdicts (see store/verdicts.py) may take this long.
PROBE_TIMEOUT_SECONDS = 300.0
_PROBE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_probe.py")
_ENVKNIT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_lock = threading.Lock()
_live: set[_Interp] = set()
_pool: dict[str, list[_Interp]] = {}
# Extension modules any child reported as refused (see _child.py). A request carries the ones
# its interpreter has not been told about yet. On 3.12 it starts with the stdlib's single-phase
# modules, so that their init functions never run in a sub-interpreter (see _safety).
_refused: list[str] = _safety.refused_from_the_start()
_atexit_registered = False
_labels = iter(range(1, 1 << 62))


class _Interp:
    """One live interpreter (its driver), its configuration, and whether a call is stuck."""

    def __init__(self, label: str) -> None:
        self.configured: tuple[str, str, tuple[str, ...]] | None = None
        self.refused_sent = len(_refused)
        self.driver = Driver(
            get_adapter(),
            {
                "stdlib": _safety.stdlib_dirs(),
                "refused": list(_refused),
                "probe": {
                    "python": sys.executable,
                    "script": _PROBE_SCRIPT,
                    "envknit_dir": _ENVKNIT_DIR,
                    "timeout": PROBE_TIMEOUT_SECONDS,
                },
            },
            label,
        )

    def busy(self) -> bool:
        return self.driver.busy()


def _new_interp(name: str) -> _Interp:
    global _atexit_registered
    _safety.prepare_host()
    with _lock:
        if not _atexit_registered:
            atexit.register(_shutdown)
            _atexit_registered = True
        label = f"{name}-{next(_labels)}"
    interp = _Interp(label)
    with _lock:
        _live.add(interp)
    return interp


def _close_interp(interp: _Interp, *, wait: bool = True) -> None:
    done = interp.driver.close(None if wait else 0)
    if done:
        with _lock:
            _live.discard(interp)


def _shutdown() -> None:
    """At exit: destroy every interpreter, so the process exits cleanly.

    CPython 3.12 aborts ("remaining subinterpreters") if the process exits while one exists.
    """
    with _lock:
        interps = list(_live)
        _pool.clear()
    for interp in interps:
        interp.driver.close(0)
    for interp in interps:
        if not interp.driver.close(5.0):
            sys.stderr.write(
                "envknit: waiting for a sub-interpreter that is still inside a call that "
                "timed out (it is destroyed when that call returns)\n"
            )
            interp.driver.close(None)
        with _lock:
            _live.discard(interp)


def _reset_for_tests() -> None:
    """Close every interpreter, empty the pool (test isolation).

    The set of refused extension modules is kept: it records process state that a test cannot
    undo (on 3.12 a refused module must never be tried again in this process).
    """
    _shutdown()
    from ..store import verdicts

    verdicts.reset_memory()


class SubInterpreterEnv:
    """An isolated sub-interpreter with its own GIL, driven with JSON values.

    Works on CPython 3.12 (private ``_xxsubinterpreters``), 3.13 (private ``_interpreters``) and
    3.14+ (``concurrent.interpreters``). The interpreter is created on ``with`` (or the first
    call) and destroyed on exit from the block, also when the block raises.

    ``reuse=True`` returns the interpreter to a per-name pool on exit instead of destroying it,
    and takes one from there on entry: module state and ``sys.path`` persist between users.
    ``fallback="worker"`` re-runs an ``eval_json``/``call`` that failed only because a C
    extension cannot load in a sub-interpreter in a worker process for the same environment.
    ``timeout`` is the default timeout (seconds) of every call.
    """

    __module__ = "envknit"

    def __init__(
        self,
        name: str = "default",
        *,
        reuse: bool = False,
        fallback: Literal["worker"] | None = None,
        timeout: float | None = None,
    ) -> None:
        _check_platform(sys.version_info[:3])
        if fallback not in (None, "worker"):
            raise ValueError(f"fallback must be None or 'worker', got {fallback!r}")
        self._name = validate_env_name(name)
        self._reuse = reuse
        self._fallback = fallback
        self._timeout = timeout
        self._interp: _Interp | None = None
        self._closed = False
        self._lock_path: Path | None = None
        self._env_name: str | None = None
        self._mutex = threading.Lock()

    # -- lifetime ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> SubInterpreterEnv:
        self._ensure()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "live" if self._interp else "not started"
        return f"<envknit.SubInterpreterEnv {self._name!r} {state}>"

    def _ensure(self) -> _Interp:
        interp = self._interp
        if interp is not None:
            # Fast path without the mutex: if close() runs concurrently, the driver itself
            # refuses the call with InterpreterClosedError.
            return interp
        with self._mutex:
            if self._closed:
                raise InterpreterClosedError(
                    f"SubInterpreterEnv {self._name!r} is closed; create a new one"
                )
            if self._interp is None:
                interp = None
                if self._reuse:
                    with _lock:
                        pooled = _pool.get(self._name)
                        interp = pooled.pop() if pooled else None
                self._interp = interp or _new_interp(self._name)
                if self._interp.configured is not None:
                    self._lock_path = Path(self._interp.configured[0])
                    self._env_name = self._interp.configured[1]
            return self._interp

    def close(self) -> None:
        """Destroy the interpreter (or return it to the pool when ``reuse=True``).

        After a call that timed out inside a C function the interpreter is still running it:
        close() then returns at once and the interpreter is destroyed when that call returns
        (at the latest, the process waits for it at exit).
        """
        with self._mutex:
            interp, self._interp = self._interp, None
            self._closed = True
        if interp is None:
            return
        if interp.busy():
            _close_interp(interp, wait=False)
            return
        if self._reuse and interp.driver.alive:
            with _lock:
                pooled = _pool.setdefault(self._name, [])
                if len(pooled) < POOL_SIZE_PER_NAME:
                    pooled.append(interp)
                    return
        _close_interp(interp)

    # -- requests ---------------------------------------------------------------------------
    def _request(self, payload: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        interp = self._ensure()
        wait = None if timeout is None else timeout + HOST_GRACE_SECONDS
        try:
            answer = interp.driver.request(_with_news(interp, payload, timeout), wait)
        except NotStarted:
            raise EnvknitTimeoutError(
                f"the call did not start within {timeout:g} s: SubInterpreterEnv "
                f"{self._name!r} is still busy with an earlier call that timed out"
            ) from None
        except StillRunning:
            raise EnvknitTimeoutError(
                f"the call did not finish within {timeout:g} s and is still running inside "
                f"a C function in SubInterpreterEnv {self._name!r}; the interpreter stays busy "
                f"until that function returns (later calls wait for it)"
            ) from None
        _learn(answer)
        return answer

    def _timeout_of(self, timeout: float | None) -> float | None:
        value = self._timeout if timeout is None else timeout
        if value is not None and value < 0:
            raise ValueError(f"timeout must be >= 0, got {value!r}")
        return value

    def eval_json(self, code: str, *, timeout: float | None = None, **inputs: Any) -> Any:
        """Run ``code`` in a fresh namespace with ``inputs`` bound; return its ``result``.

        Inputs and the result are JSON values. An exception inside raises SubInterpreterError
        (a RuntimeError) carrying the remote type, message and traceback; a timeout raises
        EnvknitTimeoutError (a TimeoutError).
        """
        limit = self._timeout_of(timeout)
        payload = {"kind": "eval", "code": code, "inputs": inputs}
        answer = self._request(payload, limit)
        if answer["ok"]:
            return answer["result"]
        return self._failed(answer, limit, fallback=("eval", code, inputs))

    def submit(self, code: str, *, timeout: float | None = None, **inputs: Any) -> Future[Any]:
        """Like eval_json, without waiting: a Future of the result."""
        limit = self._timeout_of(timeout)
        payload = {"kind": "eval", "code": code, "inputs": inputs}
        interp = self._ensure()

        def finish(answer: dict[str, Any]) -> Any:
            _learn(answer)
            if answer["ok"]:
                return answer["result"]
            if self._fallback == "worker" and answer.get("cext"):
                # The worker round trip blocks; keep it off the interpreter's helper thread.
                return Later(lambda: self._failed(answer, limit, ("eval", code, inputs)))
            return self._failed(answer, limit, fallback=None)

        return interp.driver.request_async(_with_news(interp, payload, limit), finish)

    def run_string(self, code: str, *, timeout: float | None = None) -> None:
        """Run ``code`` for its effects in the interpreter's persistent ``__main__``."""
        limit = self._timeout_of(timeout)
        answer = self._request({"kind": "exec_main", "code": code}, limit)
        if not answer["ok"]:
            self._failed(answer, limit, fallback=None)

    def call(self, target: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``"package.module:function"`` inside with JSON args; return its JSON result."""
        limit = self._timeout_of(None)
        payload = {"kind": "call", "target": target, "args": list(args), "kwargs": kwargs}
        answer = self._request(payload, limit)
        if answer["ok"]:
            return answer["result"]
        return self._failed(answer, limit, fallback=("call", target, list(args), kwargs))

    def try_import(self, name: str, raise_on_cext: bool = False) -> bool:
        """True if ``name`` imports inside; False (or CExtIncompatibleError) for a C extension
        that cannot load in a sub-interpreter; ImportError if it is simply missing."""
        limit = self._timeout_of(None)
        answer = self._request({"kind": "import", "name": name}, limit)
        if answer["ok"]:
            return True
        remote = _remote_error(answer)
        if answer.get("cext"):
            if raise_on_cext:
                raise CExtIncompatibleError(name, answer["cext"]) from remote
            return False
        if answer["type"] == "ModuleNotFoundError":
            raise ModuleNotFoundError(answer["message"], name=name) from remote
        if answer["type"] == "ImportError":
            raise ImportError(answer["message"], name=name) from remote
        self._failed(answer, limit, fallback=None)
        return False  # not reached: _failed always raises

    def configure_from_lock(
        self, lock_path: str | os.PathLike[str], env_name: str = "default"
    ) -> None:
        """Set sys.path inside to the store dirs of ``env_name``'s packages + the stdlib.

        Store entries with compiled modules are guarded by their C-extension verdicts (see
        docs/hard-isolation.md, "C extensions: verdicts"). The interpreter runs this process's
        Python: an environment locked for another one raises ``TargetPythonError`` if some of
        its packages are installed for that Python only (compiled for it), and otherwise warns
        ``TargetPythonWarning``.
        """
        from .._lockcache import environment_entries
        from ..store import verdicts

        # the lock's table, cached per lock like Gen 1's (envknit._lockcache)
        entries = environment_entries(lock_path, env_name, stacklevel=2)
        paths = [str(e.site_dir) for e in entries]
        resolved = Path(lock_path).resolve()
        key = (str(resolved), env_name, tuple(paths))
        interp = self._ensure()
        if interp.configured != key:
            limit = self._timeout_of(None)
            payload = {"kind": "configure", "paths": paths,
                       "cext": verdicts.entries_for_child(entries)}
            answer = self._request(payload, limit)
            if not answer["ok"]:
                self._failed(answer, limit, fallback=None)
            interp.configured = key
        self._lock_path = resolved
        self._env_name = env_name

    # -- failures ---------------------------------------------------------------------------
    def _failed(
        self, answer: dict[str, Any], timeout: float | None, fallback: tuple[Any, ...] | None
    ) -> Any:
        remote = _remote_error(answer)
        if answer.get("timeout"):
            raise EnvknitTimeoutError(
                f"the call did not finish within {timeout:g} s; it was stopped inside "
                f"SubInterpreterEnv {self._name!r}, which stays usable"
            ) from remote
        if fallback is not None and answer.get("cext") and self._fallback == "worker":
            return self._run_fallback(remote, timeout, fallback)
        raise remote

    def _run_fallback(
        self, remote: SubInterpreterError, timeout: float | None, request: tuple[Any, ...]
    ) -> Any:
        if self._lock_path is None or self._env_name is None:
            _add_note(
                remote,
                "envknit: fallback='worker' needs configure_from_lock() to know which "
                "environment the worker should run",
            )
            raise remote
        try:
            from .._worker import fallback as worker_fallback
        except ImportError as exc:
            _add_note(remote, f"envknit: the worker fallback is unavailable ({exc})")
            raise remote from None
        if request[0] == "eval":
            return worker_fallback.eval_json(
                self._lock_path, self._env_name, request[1], dict(request[2]), timeout
            )
        return worker_fallback.call(
            self._lock_path, self._env_name, request[1], list(request[2]), dict(request[3]),
            timeout,
        )


def _check_platform(version: tuple[int, ...]) -> None:
    # A function of its own so that mypy, checking for 3.10, does not mark the rest of
    # __init__ unreachable.
    if version < (3, 12):
        raise UnsupportedPlatformError(
            "SubInterpreterEnv needs CPython 3.12 or newer (sub-interpreters with their own "
            f"GIL); this is Python {'.'.join(map(str, version))}. Alternatives that work here: "
            "envknit.use(name, version) to import a version in this interpreter, or "
            "envknit.worker(name, version) to run it in a subprocess."
        )


def _add_note(exc: BaseException, note: str) -> None:
    exc.add_note(note)  # type: ignore[attr-defined,unused-ignore]  # Gen 2: 3.12+ only


def _learn(answer: dict[str, Any]) -> None:
    decided = answer.get("verdicts")
    if decided:
        from ..store import verdicts

        verdicts.learn(decided)
    refused = answer.get("refused")
    if refused:
        with _lock:
            _refused.extend(name for name in refused if name not in _refused)
        _safety.guard_host_imports(refused)


def _with_news(
    interp: _Interp, payload: dict[str, Any], timeout: float | None
) -> dict[str, Any]:
    """The request: payload, timeout, and refused modules this interpreter was not told of."""
    if timeout is not None:
        payload["timeout"] = timeout
    known = len(_refused)  # appended to only, so a length is a version
    if interp.refused_sent != known:
        payload["refused"] = _refused[:known]
        interp.refused_sent = known
    return payload


def _remote_error(answer: dict[str, Any]) -> SubInterpreterError:
    return SubInterpreterError(answer["type"], answer["message"], answer.get("traceback", ""))
