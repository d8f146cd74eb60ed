"""Runs INSIDE an envknit sub-interpreter: isolates sys.path, runs requests, answers in JSON.

Standard library only. The host loads this file by path (never through its own ``sys.path``),
after the runner it shares with the worker child (``envknit/_runner.py``, as ``_envknit_runner``),
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

    from .. import _runner as R
else:
    import _envknit_runner as R  # the host installs the shared runner before this module runs

# traceback, linecache and threading are imported only when needed: each costs several
# milliseconds in a fresh interpreter, and creating an interpreter should cost what CPython's
# own create() costs.

__all__ = ["before_destroy", "bootstrap", "handle", "start_server"]

# The text CPython puts in the ImportError of an extension module that refuses to load in an
# isolated interpreter (Python/import.c, _PyImport_CheckSubinterpIncompatibleExtensionAllowed).
CEXT_MARKER = "does not support loading in subinterpreters"

# This file and the shared runner: their frames are hidden from remote tracebacks and the
# watchdog never raises in them.
_OWN_FILES = frozenset((R.normalize(__file__), R.OWN_FILE))
_stdlib_dirs: list[str] = []
_env_dirs: list[str] = []
# Extension modules that refused to load in some sub-interpreter of this process. On CPython
# 3.12 a refused single-phase module has already run its init function, and running it again
# in another interpreter aborts the process (python/cpython#113218), so a refused module is
# never offered to the import system a second time: the host shares this set with every child.
_refused: set[str] = set()
_newly_refused: list[str] = []
# Store entries of the configured environment that hold compiled modules: site dir ->
# {"label", "file" (its verdict file), "tops" (top-level import names), "verdict" (a record
# or None)}. Set by configure; see _verdict_allows.
_cext_entries: dict[str, dict[str, Any]] = {}
# How to start a probe: {"python", "script", "envknit_dir", "timeout"} (from the boot config).
_probe_cmd: dict[str, Any] = {}
# Verdicts decided (or read from disk) by this interpreter since the last answer.
_new_verdicts: dict[str, dict[str, Any]] = {}
# In a probe process: the one entry's site dir whose compiled modules are recorded, and what
# happened to each ({"ok": bool, "error": str}).
_probe_site: list[str] = []
_probe_results: dict[str, dict[str, Any]] = {}
# Buffers (bytes, arrays) travel on the binary lane (envknit/_lane.py, loaded on first need)
# as {key: descriptor} objects under the host's random key.
_lane_key: str | None = None
_lane_text: Any = None
_lane_module: Any = None
_lane_pool: Any = None  # warm files for answers' buffers (see _lane.Pool)
_outbox: Any = None  # the lane files of the last answer (the host takes them as it decodes)


def bootstrap(config_json: str) -> None:
    """Hide the host's site-packages, install the extension guard, keep only the stdlib."""
    global _lane_key
    config = json.loads(config_json)
    _lane_key = config.get("lane_key")
    _stdlib_dirs[:] = config["stdlib"]
    _refused.update(config.get("refused", ()))
    _probe_cmd.update(config.get("probe", {}))
    if config.get("probe_site"):
        _probe_site[:] = [config["probe_site"]]
    _install_extension_guard()
    _set_path([])


def before_destroy() -> None:
    """Stop the serving and watchdog threads; run threading's exit hooks while all is whole.

    The host's script closed the serving thread's request pipe just before: the thread reads
    EOF and is joined here, so it ends while the host is inside this interpreter (see
    ``Driver._teardown`` for the 3.12 crash this avoids).

    Finalizing a 3.13.0 sub-interpreter runs these hooks (e.g. ThreadPoolExecutor's) from a
    fresh thread state; ``Thread.join`` there creates a ``_DummyThread`` whose ``__del__`` runs
    after the threading module was torn down and prints "Exception ignored in
    _DeleteDummyThreadOnDel.__del__ ... TypeError". Running them here avoids that noise.

    On 3.12 it also ends the "main thread" that ``threading`` recorded when it was imported here,
    if that was another OS thread than the one destroying the interpreter (see
    ``_end_recorded_main_thread``).
    """
    global _watchdog, _server
    if _server is not None:
        _server.join()  # it reads EOF and ends
        _server = None
    if _watchdog is not None:
        _watchdog.close()
        _watchdog = None
    if _lane_pool is not None:
        _lane_pool.close()  # the host's views of them keep their memory
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
    thread than the importer hung on 3.12.1 (python/cpython#109860 is the
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
    global _outbox
    request: dict[str, Any] = {}
    if _outbox is not None:  # files of the last answer that the host did not take
        _outbox.discard()
        _outbox = None
    try:
        if _lane_key is not None and _lane_key in request_json:
            request = _lane().loads(request_json)
        else:
            request = _decode(request_json)[0]
        if "refused" in request:
            _refused.update(request["refused"])
        if _newly_refused:
            del _newly_refused[:]
        if _new_verdicts:
            _new_verdicts.clear()
        value = _dispatch(request)
        answer = {"ok": True, "result": value, "id": request.get("id")}
        if _newly_refused:
            answer["refused"] = list(_newly_refused)
        if _new_verdicts:
            answer["verdicts"] = dict(_new_verdicts)
        if _lane_key is not None and type(value) in (list, dict) and _has_long_list(value):
            text = _dumps_with_buffers(answer, value)  # numbers packed, not JSON text
        else:
            try:
                text = json.dumps(answer)
            except TypeError:  # buffers go on the lane; anything else fails again
                text = _dumps_with_buffers(answer, value)
            except ValueError as exc:
                raise TypeError(_not_json(value, exc)) from None
    except BaseException as exc:  # noqa: BLE001 - everything, SystemExit included, is reported
        text = json.dumps(_describe(exc, request))
    return text


def _not_json(value: Any, exc: BaseException) -> str:
    return (
        "the result must be a JSON value (dict, list, str, int, float, bool, None) or a "
        f"buffer (bytes, bytearray, memoryview, array), got {type(value).__name__}: {exc}"
    )


def _dumps_with_buffers(answer: dict[str, Any], value: Any) -> str:
    global _outbox
    lane = _lane()
    lane_module = _lane_module
    outbox = lane_module.Outbox(pool=_lane_pool)
    try:
        text: str = lane.dumps(lane.pack(answer, outbox), outbox)
    except lane_module.LaneTooLarge as exc:
        outbox.discard()
        raise MemoryError(
            f"buffers of {exc.size} bytes in the result exceed the limit of {exc.limit} bytes; "
            "raise it with the ENVKNIT_MAX_BUFFER_BYTES environment variable"
        ) from None
    except (TypeError, ValueError) as exc:
        outbox.discard()
        raise TypeError(_not_json(value, exc)) from None
    _outbox = outbox
    return text


def _has_long_list(value: Any, depth: int = 3) -> bool:
    """Whether ``value`` holds a list long enough to be packed if it is all numbers."""
    if type(value) is list:
        if len(value) >= 1024:
            return True
        items = value
    else:
        items = value.values()
    return bool(depth) and any(
        type(v) in (list, dict) and _has_long_list(v, depth - 1) for v in items
    )


def _lane() -> Any:
    """The lane's JsonText under the host's key (the module is loaded by path, once)."""
    global _lane_text, _lane_module, _lane_pool
    if _lane_text is None:
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_lane.py")
        spec = importlib.util.spec_from_file_location("_envknit_lane", path)
        module: Any = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        module.IMPORT_NUMPY = False  # C extensions load here only by the user's own import
        _lane_module = module
        _lane_pool = module.Pool()
        _lane_text = module.JsonText(_lane_key)
    return _lane_text


def _dispatch(request: dict[str, Any]) -> Any:
    kind = request["kind"]
    if kind == "configure":
        _set_path(request["paths"])
        _cext_entries.clear()
        _cext_entries.update(request.get("cext", {}))
        return None
    if kind == "probe_report":
        return dict(_probe_results)
    timeout = request.get("timeout")
    watchdog = None
    if timeout is not None:
        watchdog = _get_watchdog()
        watchdog.arm(timeout)
    try:
        if kind == "eval":
            return R.run_snippet(_compile(request["code"], R.SNIPPET_FILENAME), request["inputs"])
        if kind == "exec_main":
            main = sys.modules["__main__"].__dict__
            exec(_compile(request["code"], "<envknit run_string>"), main)
            return None
        if kind == "call":
            return R.resolve(request["target"])(*request["args"], **request["kwargs"])
        if kind == "import":
            importlib.import_module(request["name"])
            return True
        raise ValueError(f"unknown request kind {kind!r}")
    finally:
        if watchdog is not None:
            watchdog.disarm()


def _is_own(filename: str) -> bool:
    return R.normalize(filename) in _OWN_FILES


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


def _describe(exc: BaseException, request: dict[str, Any]) -> dict[str, Any]:
    cext = _cext_detail(exc)
    import linecache

    # The caller's code has no file: the traceback shows its failing lines from here.
    for filename, code in _sources.items():
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    answer = {
        "ok": False,
        **R.report(exc, _OWN_FILES, chained=True),
        "timeout": isinstance(exc, TimeoutError) and bool(getattr(exc, "_envknit_deadline", False)),
        "cext": cext,
        "refused": list(_newly_refused),
        "id": request.get("id"),
    }
    if _new_verdicts:
        answer["verdicts"] = dict(_new_verdicts)
    return answer


def _cext_detail(exc: BaseException) -> str | None:
    """The text of the C-extension failure behind ``exc`` (None if there is none).

    A failure marked by the extension guard anywhere in the chain counts (numpy, for one,
    catches its extension's ImportError and raises its own), and so does CPython's refusal
    text in any message (a package that re-raises it without chaining).
    """
    chain = R.chain(exc)
    for item in chain:
        if getattr(item, "_envknit_cext", False):
            return str(item)
    for item in chain:
        text = str(item)
        if CEXT_MARKER in text:
            return text
    return None


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
        if _is_own(path):
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
    """Route every extension module load in this interpreter through ``_guard``.

    Patching the class only affects this interpreter: each interpreter has its own copy of
    the import machinery's classes.
    """
    from importlib.machinery import ExtensionFileLoader

    create, execute = ExtensionFileLoader.create_module, ExtensionFileLoader.exec_module

    def create_module(self: Any, spec: Any) -> Any:
        return _guard(create, self, spec, spec)

    def exec_module(self: Any, module: Any) -> None:
        _guard(execute, self, module.__spec__, module)

    ExtensionFileLoader.create_module = create_module  # type: ignore[method-assign]
    ExtensionFileLoader.exec_module = exec_module  # type: ignore[method-assign]


def _guard(step: Any, loader: Any, spec: Any, arg: Any) -> Any:
    """Run one step of loading an extension module, if this interpreter may run it.

    * A module refused earlier in this process is refused again without running anything.
    * A compiled module of a store entry runs only when the entry's verdict (decided in a
      throwaway process, see ``_verdict_allows``) says it loads.
    * ANY exception from the loader is a C-extension incompatibility (numpy's init fails with
      an AttributeError before CPython can refuse it): it becomes an ImportError marked as
      such, naming the original error, and the module is never tried again in this process.
    """
    name = spec.name
    if name in _refused:
        error = ImportError(f"module {name} {CEXT_MARKER} (refused earlier in this process; "
                            "envknit does not try it again)", name=name)
        error._envknit_cext = True  # type: ignore[attr-defined]
        raise error
    if _probe_site:
        return _probe_step(step, loader, spec, arg)
    _verdict_allows(name, spec.origin or "")
    try:
        return step(loader, arg)
    except BaseException as exc:  # any failure of an extension's loader counts (see above)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) or getattr(
                exc, "_envknit_deadline", False):
            raise
        _refused.add(name)
        _newly_refused.append(name)
        if isinstance(exc, ImportError) and CEXT_MARKER in str(exc):
            exc._envknit_cext = True  # type: ignore[attr-defined]
            raise
        raise _cext_error(name, f"{type(exc).__name__}: {exc}") from exc


def _cext_error(name: str, why: str) -> ImportError:
    error = ImportError(f"module {name} cannot load in an isolated sub-interpreter: {why}",
                        name=name)
    error._envknit_cext = True  # type: ignore[attr-defined]
    return error


def _entry_of(origin: str) -> dict[str, Any] | None:
    for site, entry in _cext_entries.items():
        if origin.startswith(site + os.sep):
            return entry
    return None


def _verdict_allows(name: str, origin: str) -> None:
    """Raise the C-extension ImportError unless ``name``'s store entry is known to load it.

    The entry's verdict comes from the host (read from disk), else from disk now (another
    interpreter or process may have decided it meanwhile), else from a probe process run now.
    A module the verdict does not cover yet (not imported by the probe) is probed on its own.
    """
    entry = _entry_of(origin)
    if entry is None:
        entry = _outside_entry(name, origin)
        if entry is None:
            return  # the standard library
    record = entry.get("verdict") or _read_verdict(entry["file"])
    if record is None or (record.get("source") != "override" and record["verdict"] != "crashed"
                          and name not in record["modules"]):
        record = _probe(entry, name, record)
    entry["verdict"] = record
    verdict = record["verdict"]
    if record.get("source") == "override":
        if verdict == "loads":
            return
        raise _cext_error(name, f"{entry['label']} is marked '{verdict}' by "
                                "ENVKNIT_CEXT_OVERRIDES")
    if verdict == "crashed":
        raise _cext_error(name, f"importing {entry['label']} in a sub-interpreter crashed a "
                                f"probe process ({record['detail']})")
    module = record["modules"].get(name) or {"ok": False, "error": "not probed"}
    if not module["ok"]:
        raise _cext_error(name, f"{module['error']} (decided by a probe process)")


# Compiled modules found outside the store (code inside put another directory on sys.path):
# their directory -> a verdict entry kept in this interpreter's memory only (no store entry to
# record it against).
_outside: dict[str, dict[str, Any]] = {}


def _outside_entry(name: str, origin: str) -> dict[str, Any] | None:
    """A memory-only verdict entry for a compiled module outside the stdlib and the store.

    Such a module is probed too, so that no compiled module runs in this process before a
    throwaway process has survived it; its directory on sys.path is found from the module name.
    """
    if not origin or not _probe_cmd:
        return None
    norm = os.path.normcase(os.path.abspath(origin))
    if any(norm.startswith(os.path.normcase(d) + os.sep) for d in _stdlib_dirs):
        return None
    site = os.path.dirname(os.path.abspath(origin))
    for _ in range(name.count(".")):
        site = os.path.dirname(site)
    entry = _outside.get(site)
    if entry is None:
        top = name.split(".", maxsplit=1)[0]
        entry = {"label": f"{top} (from {site})", "file": "", "site": site, "tops": [top],
                 "verdict": None}
        _outside[site] = entry
    return entry


def _read_verdict(path: str) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            record: dict[str, Any] = json.load(file)
    except (OSError, ValueError):
        return None
    return record if record.get("format") == 1 else None


def _probe(entry: dict[str, Any], name: str, known: dict[str, Any] | None) -> dict[str, Any]:
    """Decide in a throwaway process whether ``entry``'s compiled modules load; record it."""
    import subprocess

    modules = [name] if known is not None else [*entry["tops"], name]
    if entry.get("site"):  # outside the store: the interpreter's current path
        paths = [p for p in sys.path if p not in _stdlib_dirs]
        site = entry["site"]
    else:
        paths, site = list(_env_dirs), _entry_site(entry)
    request = {"envknit_dir": _probe_cmd["envknit_dir"], "paths": paths, "site": site,
               "modules": modules}
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [_probe_cmd["python"], "-I", "-S", _probe_cmd["script"]],
            input=json.dumps(request), capture_output=True, text=True,
            timeout=_probe_cmd.get("timeout", 300), check=False,
        )
    except subprocess.TimeoutExpired:
        # Not recorded: a slow machine is not a verdict. This import is refused; the next
        # one tries again.
        raise _cext_error(name, f"the probe process deciding {entry['label']} did not finish "
                                f"within {_probe_cmd.get('timeout', 300)} s") from None
    except OSError as exc:  # no runnable sys.executable (an embedding host): not a verdict
        raise _cext_error(name, f"the probe process deciding {entry['label']} could not start: "
                                f"{exc}") from None
    record = _verdict_from(entry, name, proc, time.monotonic() - start)
    if known is not None and record["verdict"] != "crashed":
        merged = dict(known["modules"])
        merged.update(record["modules"])
        record["modules"] = merged
        record["verdict"] = "refused" if any(not m["ok"] for m in merged.values()) else "loads"
        record["detail"] = _detail(merged) or known.get("detail", "")
    if entry["file"]:
        _write_verdict(entry["file"], record)
        _new_verdicts[entry["file"]] = record
    return record


def _entry_site(entry: dict[str, Any]) -> str:
    for site, value in _cext_entries.items():
        if value is entry:
            return site
    raise KeyError(entry["label"])


def _verdict_from(entry: dict[str, Any], name: str, proc: Any, seconds: float) -> dict[str, Any]:
    mark = "\x1eenvknit-probe "
    loading = ""
    final: dict[str, Any] | None = None
    for line in proc.stdout.split("\n"):  # not splitlines(): it splits at the \x1e mark
        if not line.startswith(mark):
            continue
        item = json.loads(line[len(mark):])
        if "loading" in item:
            loading = item["loading"]
        elif item.get("done"):
            final = item
    record: dict[str, Any] = {
        "format": 1, "entry": entry["label"], "python": sys.version.split()[0],
        "source": "probe", "seconds": round(seconds, 3),
        "probed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "signal": None,
    }
    if proc.returncode != 0 or final is None:
        if proc.returncode < 0:
            import signal

            try:
                how = signal.Signals(-proc.returncode).name
            except ValueError:
                how = f"signal {-proc.returncode}"
            record["signal"] = how
        else:
            how = f"exit code {proc.returncode}"
        last = (proc.stderr.strip().splitlines() or [""])[-1][:300]
        where = f" while loading {loading}" if loading else ""
        record.update(verdict="crashed", modules={},
                      detail=f"the probe died with {how}{where}" + (f": {last}" if last else ""))
        return record
    modules = final["modules"]
    if name not in modules:
        # The import never reached the module (an import error before it): not proof it loads.
        why = final["imports"].get(name, "not reached")
        modules[name] = {"ok": why == "ok", "error": "" if why == "ok" else why}
    bad = any(not m["ok"] for m in modules.values())
    record.update(verdict="refused" if bad else "loads", modules=modules, detail=_detail(modules))
    return record


def _detail(modules: dict[str, Any]) -> str:
    for module_name, result in sorted(modules.items()):
        if not result["ok"]:
            return f"{module_name}: {result['error']}"
    return ""


def _write_verdict(path: str, record: dict[str, Any]) -> None:
    """Atomically (write, then rename), so a reader never sees half a file."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = f"{path}.{os.getpid()}.{_thread.get_ident()}.tmp"
        with open(temp, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=1, sort_keys=True)
        os.replace(temp, path)
    except OSError:
        pass  # a read-only home: the verdict still holds for this interpreter and the host


def _probe_step(step: Any, loader: Any, spec: Any, arg: Any) -> Any:
    """In a probe process: announce, run and record the steps of the probed entry's modules."""
    name = spec.name
    if not (spec.origin or "").startswith(_probe_site[0] + os.sep):
        return step(loader, arg)
    if name not in _probe_results:
        os.write(1, ("\x1eenvknit-probe " + json.dumps({"loading": name}) + "\n").encode())
    try:
        value = step(loader, arg)
    except BaseException as exc:
        _probe_results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _refused.add(name)
        raise
    _probe_results.setdefault(name, {"ok": True, "error": ""})
    return value


def start_server(code: bytes, path: str, config_json: str, recv: Any, send: Any) -> None:
    """Start the thread that serves the host's timed and submitted calls.

    Its loop is ``serve`` in envknit/_subinterp/_serving.py, compiled by the host (``code``,
    from ``path``); ``config_json`` holds its pipes (see envknit/_subinterp/_server.py).
    """
    global _server, _OWN_FILES
    import marshal
    import threading

    module = type(sys)("_envknit_serving")
    module.__file__ = path
    exec(marshal.loads(code), module.__dict__)
    _OWN_FILES |= {R.normalize(path)}  # the watchdog never raises in the loop itself
    # Not a daemon: isolated interpreters allow none; before_destroy joins it.
    _server = threading.Thread(
        target=module.serve, args=(json.loads(config_json), recv, send, handle),
        name="envknit-serve",
    )
    _server.start()


_server: Any = None


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
        self._last_deadline = 0.0  # the latest deadline armed; idle, the watchdog sleeps until it
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
            self._last_deadline = max(self._last_deadline, self._deadline)
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
                # Idle, it sleeps until the latest deadline armed rather than for ever: the next
                # call's deadline (same timeout, later start) then falls after that wake-up, so
                # arm() need not wake this thread, which would otherwise be woken by every timed
                # call and contend for the interpreter's GIL (measured: 14 us a call on 3.12).
                until = self._last_deadline if deadline is None else deadline
                remaining = until - time.monotonic()
                if remaining > 0:
                    self._sleeping_until = until
                    self._cond.wait(remaining)
                    continue
                if deadline is None:
                    self._sleeping_until = None
                    self._cond.wait()
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
