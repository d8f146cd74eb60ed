"""Runs INSIDE an envknit sub-interpreter: isolates sys.path, runs requests, answers in JSON.

Standard library only. The host loads this file by path (never through its own ``sys.path``),
calls ``bootstrap`` once, then ``handle`` once per request. Requests and answers are JSON
strings; code and values are never spliced into source text.
"""

from __future__ import annotations

import _thread
import importlib
import json
import os
import sys
import time

# typing costs milliseconds to import in a fresh interpreter; mypy still sees it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# traceback, linecache and threading are imported only when needed: each costs several
# milliseconds in a fresh interpreter, and creating an interpreter should cost what CPython's
# own create() costs.

__all__ = ["before_destroy", "bootstrap", "handle"]

# The text CPython puts in the ImportError of an extension module that refuses to load in an
# isolated interpreter (Python/import.c, _PyImport_CheckSubinterpIncompatibleExtensionAllowed).
CEXT_MARKER = "does not support loading in subinterpreters"

_OWN_FILE = os.path.normcase(os.path.abspath(__file__))
_stdlib_dirs: list[str] = []
_env_dirs: list[str] = []
# Extension modules that refused to load in some sub-interpreter of this process. On CPython
# 3.12 a refused single-phase module has already run its init function, and running it again
# in another interpreter aborts the process (python/cpython#113218), so a refused module is
# never offered to the import system a second time: the host shares this set with every child.
_refused: set[str] = set()
_newly_refused: list[str] = []


def bootstrap(config_json: str) -> None:
    """Hide the host's site-packages, install the extension guard, keep only the stdlib."""
    config = json.loads(config_json)
    _stdlib_dirs[:] = config["stdlib"]
    _refused.update(config.get("refused", ()))
    _install_extension_guard()
    _set_path([])


def before_destroy() -> None:
    """Stop the watchdog thread; run threading's exit hooks while the interpreter is whole.

    Finalizing a 3.13.0 sub-interpreter runs these hooks (e.g. ThreadPoolExecutor's) from a
    fresh thread state; ``Thread.join`` there creates a ``_DummyThread`` whose ``__del__`` runs
    after the threading module was torn down and prints "Exception ignored in
    _DeleteDummyThreadOnDel.__del__ ... TypeError". Running them here avoids that noise.

    On 3.12 it also ends the "main thread" that ``threading`` recorded when it was imported here,
    if that was another OS thread than the one destroying the interpreter (see
    ``_end_recorded_main_thread``).
    """
    global _watchdog
    if _watchdog is not None:
        _watchdog.close()
        _watchdog = None
    threading = sys.modules.get("threading")
    if threading is None:
        return
    if sys.version_info < (3, 13):
        _end_recorded_main_thread(threading)
        return
    hooks = getattr(threading, "_threading_atexits", None)
    if isinstance(hooks, list):
        for hook in reversed(hooks):
            hook()
        hooks.clear()


def _end_recorded_main_thread(threading: Any) -> None:
    """3.12: let destroy() finish whichever OS thread imported ``threading`` in here.

    ``threading`` records the OS thread that imports it as ``_main_thread`` and holds that
    thread's ``_tstate_lock`` until the thread state dies. destroy() runs ``threading._shutdown``,
    which releases that lock only when it runs on the recorded thread and otherwise waits for it
    forever; the lock is tied to the interpreter's first thread state, which 3.12 reuses for
    every call and deletes only after ``_shutdown`` returns. So destroying from another OS
    thread than the importer hung (bug #3 of the machine's facts; python/cpython#109860 is the
    shared-thread-state issue). This does the release ``_shutdown`` would do on the right thread;
    the C-level release at thread-state deletion checks ``locked`` first, so it stays a no-op.
    Measured on 3.12.1: without it 2/2 runs hung, with it 24/24 exited cleanly.
    """
    main = getattr(threading, "_main_thread", None)
    if main is None or main.ident == _thread.get_ident():
        return  # _shutdown releases it itself
    lock = getattr(main, "_tstate_lock", None)
    if lock is not None and lock.locked():
        lock.release()
    stop = getattr(main, "_stop", None)
    if stop is not None:
        stop()


# Requests are json.dumps() output: raw_decode skips json.loads's BOM and whitespace checks.
_decode = json.JSONDecoder().raw_decode


def handle(request_json: str) -> str:
    """Run one request and return its JSON answer (always returns; never raises)."""
    request: dict[str, Any] = {}
    try:
        request = _decode(request_json)[0]
        if "refused" in request:
            _refused.update(request["refused"])
        if _newly_refused:
            del _newly_refused[:]
        value = _dispatch(request)
        answer = {"ok": True, "result": value, "id": request.get("id")}
        if _newly_refused:
            answer["refused"] = list(_newly_refused)
        try:
            text = json.dumps(answer)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"the result must be a JSON value (dict, list, str, int, float, bool, None), "
                f"got {type(value).__name__}: {exc}"
            ) from None
    except BaseException as exc:  # noqa: BLE001 - everything, SystemExit included, is reported
        text = json.dumps(_describe(exc, request))
    return text


def _dispatch(request: dict[str, Any]) -> Any:
    kind = request["kind"]
    if kind == "configure":
        _set_path(request["paths"])
        return None
    timeout = request.get("timeout")
    watchdog = None
    if timeout is not None:
        watchdog = _get_watchdog()
        watchdog.arm(timeout)
    try:
        if kind == "eval":
            return _run_eval(request["code"], request["inputs"])
        if kind == "exec_main":
            main = sys.modules["__main__"].__dict__
            exec(_compile(request["code"], "<envknit run_string>"), main)
            return None
        if kind == "call":
            return _run_call(request["target"], request["args"], request["kwargs"])
        if kind == "import":
            importlib.import_module(request["name"])
            return True
        raise ValueError(f"unknown request kind {kind!r}")
    finally:
        if watchdog is not None:
            watchdog.disarm()


def _is_own(filename: str) -> bool:
    return os.path.normcase(os.path.abspath(filename)) == _OWN_FILE


_sources: dict[str, str] = {}
_compiled: dict[tuple[str, str], Any] = {}
_COMPILED_MAX = 256


def _compile(code: str, filename: str) -> Any:
    # Kept so that a traceback can show the failing lines of the caller's code.
    _sources[filename] = code
    # The same snippet is often sent again and again; compiling is most of a tiny call's cost.
    key = (code, filename)
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = compile(code, filename, "exec")
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        _compiled[key] = compiled
    return compiled


def _run_eval(code: str, inputs: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = {"__name__": "__envknit_eval__", "__builtins__": __builtins__}
    namespace.update(inputs)
    exec(_compile(code, "<envknit eval_json>"), namespace)
    return namespace.get("result")


def _run_call(target: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj(*args, **kwargs)


def _describe(exc: BaseException, request: dict[str, Any]) -> dict[str, Any]:
    kind = type(exc)
    module = getattr(kind, "__module__", "builtins")
    name = kind.__qualname__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    # Drop this module's own frames: the traceback starts at the caller's code.
    frames = exc.__traceback__
    while frames is not None and _is_own(frames.tb_frame.f_code.co_filename):
        frames = frames.tb_next
    exc.__traceback__ = frames
    import linecache
    import traceback

    for filename, code in _sources.items():
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        tb = "".join(traceback.format_exception(exc))
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the original failure
        tb = f"{name}: <traceback unavailable>"
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - same reason
        message = "<unprintable exception>"
    return {
        "ok": False,
        "type": name,
        "message": message,
        "traceback": tb,
        "timeout": isinstance(exc, TimeoutError) and bool(getattr(exc, "_envknit_deadline", False)),
        "module_not_found": isinstance(exc, ModuleNotFoundError),
        "cext": CEXT_MARKER in tb,
        "refused": list(_newly_refused),
        "id": request.get("id"),
    }


def _set_path(env_dirs: list[str]) -> None:
    """sys.path = env dirs + stdlib; forget modules and finders that came from anywhere else."""
    old_env = [os.path.normcase(d) for d in _env_dirs]
    _env_dirs[:] = env_dirs
    sys.path[:] = list(env_dirs) + list(_stdlib_dirs)
    # site ran in this interpreter and may have added .pth finders (editable installs,
    # _distutils_hack); only the import system's own finders stay.
    sys.meta_path[:] = [f for f in sys.meta_path if _is_core_finder(f)]
    # Clearing the cache is enough for new path entries to be searched afresh;
    # importlib.invalidate_caches() would import importlib.metadata (milliseconds) for nothing.
    sys.path_importer_cache.clear()
    allowed = [os.path.normcase(d) for d in _stdlib_dirs]
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or name == "__main__":
            continue
        path = os.path.normcase(os.path.abspath(path))
        if path == _OWN_FILE:
            continue
        if any(path.startswith(d + os.sep) for d in old_env) or not any(
            path.startswith(d + os.sep) for d in allowed
        ):
            del sys.modules[name]


def _is_core_finder(finder: object) -> bool:
    module = getattr(finder, "__module__", None) if isinstance(finder, type) else None
    module = module or type(finder).__module__
    return module in ("_frozen_importlib", "_frozen_importlib_external", "importlib._bootstrap",
                      "importlib._bootstrap_external", "importlib.machinery")


def _install_extension_guard() -> None:
    from importlib.machinery import ExtensionFileLoader

    original = ExtensionFileLoader.create_module

    def create_module(self: Any, spec: Any) -> Any:
        if spec.name in _refused:
            raise ImportError(f"module {spec.name} {CEXT_MARKER} (refused earlier in this "
                              "process; envknit does not try it again)", name=spec.name)
        try:
            return original(self, spec)
        except ImportError as exc:
            if CEXT_MARKER in str(exc):
                _refused.add(spec.name)
                _newly_refused.append(spec.name)
            raise

    # Patching the class only affects this interpreter: each interpreter has its own copy of
    # the import machinery's classes.
    ExtensionFileLoader.create_module = create_module  # type: ignore[method-assign]


class _Watchdog:
    """A lazy deadline: one watchdog thread per interpreter, and nothing on the hot path.

    ``arm`` records a deadline; the watchdog thread sleeps until it. If the call is still
    running then, it turns on sys.monitoring events for this interpreter, and the callback raises
    TimeoutError in the thread that runs the request (not in this module's own frames), again
    on every event until ``disarm``. Code blocked inside a C call is only stopped when it
    returns to Python. Created on the first call with a timeout; stopped by ``before_destroy``
    (isolated interpreters allow no daemon threads, and destroy waits for the others).
    """

    _EVENTS_NAMES = ("JUMP", "LINE", "PY_START", "PY_RESUME")

    def __init__(self) -> None:
        import threading

        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._sleeping_until: float | None = None  # what the watchdog waits for right now
        self._target = 0
        self._seconds = 0.0
        self._raising = False
        self._tool: int | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="envknit-timeout")
        self._thread.start()

    def arm(self, seconds: float) -> None:
        with self._cond:
            self._seconds = seconds
            self._target = _thread.get_ident()
            self._deadline = time.monotonic() + max(seconds, 0.0)
            # Wake the watchdog only if it would not wake up by this deadline on its own.
            if self._sleeping_until is None or self._sleeping_until > self._deadline:
                self._cond.notify()

    def disarm(self) -> None:
        # First, before entering Python-level code (Condition), so the callback stops raising.
        self._raising = False
        with self._cond:
            self._deadline = None
            self._raising = False
            self._monitoring_off()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join()

    def _loop(self) -> None:
        with self._cond:
            while not self._stop:
                deadline = self._deadline
                if deadline is None:
                    self._sleeping_until = None
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._sleeping_until = deadline
                    self._cond.wait(remaining)
                    continue
                self._deadline = None  # fire once per arm
                self._monitoring_on()

    def _monitoring_on(self) -> None:
        monitoring = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
        for tool in (4, 3):
            try:
                monitoring.use_tool_id(tool, "envknit-timeout")
            except ValueError:  # taken by a debugger or profiler in this interpreter
                continue
            self._tool = tool
            break
        else:
            return
        events = 0
        for event_name in self._EVENTS_NAMES:
            event = getattr(monitoring.events, event_name)
            monitoring.register_callback(self._tool, event, self._callback)
            events |= event
        self._raising = True
        monitoring.set_events(self._tool, events)

    def _monitoring_off(self) -> None:
        tool, self._tool = self._tool, None
        if tool is None:
            return
        monitoring = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
        monitoring.set_events(tool, 0)
        for event_name in self._EVENTS_NAMES:
            monitoring.register_callback(tool, getattr(monitoring.events, event_name), None)
        monitoring.free_tool_id(tool)

    def _callback(self, code: Any, *args: Any) -> Any:
        if not self._raising or _thread.get_ident() != self._target:
            return None
        if _is_own(code.co_filename):
            return None
        exc = TimeoutError(f"envknit: the call did not finish within {self._seconds:g} s")
        exc._envknit_deadline = True  # type: ignore[attr-defined]
        raise exc


_watchdog: _Watchdog | None = None


def _get_watchdog() -> _Watchdog:
    global _watchdog
    if _watchdog is None:
        _watchdog = _Watchdog()
    return _watchdog
