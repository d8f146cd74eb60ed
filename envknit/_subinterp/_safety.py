"""Host preparation before the first sub-interpreter exists, and the stdlib search path."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import sysconfig
import threading
import time

__all__ = ["prepare_host", "preparation_seconds", "stdlib_dirs"]

_lock = threading.Lock()
_prepared = False
_seconds = 0.0


def prepare_host() -> None:
    """Warm, in the main interpreter, what isolated interpreters of this CPython crash on.

    Runs once, before the first sub-interpreter is created (never at ``import envknit``).

    * ``_datetime`` and ``_decimal`` (3.12 and 3.13): importing them in the main interpreter
      first makes their refusal in sub-interpreters take the cached path. Without it, 3.12.1
      aborts when a second interpreter imports ``datetime``/``decimal`` (python/cpython#113218)
      and 3.13.0 crashes destroying the second of two live interpreters that imported
      ``datetime`` (python/cpython#136421, #136423).
    * 3.12 only: ``hashlib``, ``ssl``, ``asyncio.run`` and ``ThreadPoolExecutor`` first used in
      an isolated interpreter abort the process at exit ("free(): invalid pointer"): the
      argument parsers' cached keyword tuples are allocated by whichever interpreter calls
      first and are freed by the main interpreter's allocator at finalization
      (python/cpython#112140, #119213). Running the same paths here first makes the main
      interpreter own them.
    """
    global _prepared, _seconds
    with _lock:
        if _prepared:
            # Cheap to repeat: something (a test harness, a module reloader) may have dropped
            # them from sys.modules since.
            _import_quietly(_MAIN_FIRST)
            return
        start = time.perf_counter()
        _import_quietly(_MAIN_FIRST)
        if sys.version_info < (3, 13):
            # A fresh thread: asyncio.run() refuses to start inside a running event loop, and
            # the host may be calling us from one.
            worker = threading.Thread(target=_warm_312, name="envknit-warm-up")
            worker.start()
            worker.join()
        _seconds = time.perf_counter() - start
        _prepared = True


_MAIN_FIRST = ("_datetime", "_decimal")


def _import_quietly(names: tuple[str, ...]) -> None:
    for name in names:
        if name in sys.modules:
            continue
        # A Python built without them has nothing to warm.
        with contextlib.suppress(ImportError):
            __import__(name)


def preparation_seconds() -> float:
    """How long ``prepare_host`` took in this process (0.0 until it ran)."""
    return _seconds


def _warm_312() -> None:
    import asyncio
    import hashlib
    import ssl
    from concurrent.futures import ThreadPoolExecutor

    for algorithm in ("md5", "sha1", "sha256", "sha512", "blake2b"):
        hashlib.new(algorithm, b"envknit").hexdigest()
    hashlib.sha256(b"envknit", usedforsecurity=False).hexdigest()
    ssl.create_default_context()

    async def _nothing() -> int:
        await asyncio.sleep(0)
        return 0

    asyncio.run(_nothing())
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(int, "1").result()
        list(pool.map(int, ["2"]))


@functools.cache
def _stdlib_dirs() -> tuple[str, ...]:
    return tuple(_find_stdlib_dirs())


def stdlib_dirs() -> list[str]:
    """The standard library directories of this Python (lib-dynload included), no site dirs."""
    return list(_stdlib_dirs())


def _find_stdlib_dirs() -> list[str]:
    base = {
        "base": sys.base_prefix,
        "platbase": sys.base_exec_prefix,
        "installed_base": sys.base_prefix,
        "installed_platbase": sys.base_exec_prefix,
    }
    stdlib = sysconfig.get_path("stdlib", vars=base)
    platstdlib = sysconfig.get_path("platstdlib", vars=base)
    candidates = [
        os.path.join(sys.base_prefix, "lib", "python{}{}.zip".format(*sys.version_info[:2])),
        stdlib,
        platstdlib,
        os.path.join(platstdlib, "lib-dynload"),
        os.path.join(stdlib, "lib-dynload"),
    ]
    # The running interpreter's own stdlib entries, in case this build lays them out differently.
    bases = tuple(os.path.normcase(p) for p in {sys.base_prefix, sys.base_exec_prefix})
    for entry in sys.path:
        norm = os.path.normcase(os.path.abspath(entry)) if entry else ""
        if not norm.startswith(bases) or "site-packages" in norm or "dist-packages" in norm:
            continue
        candidates.append(entry)
    result: list[str] = []
    for candidate in candidates:
        path = os.path.abspath(candidate)
        if os.path.exists(path) and path not in result:
            result.append(path)
    return result
