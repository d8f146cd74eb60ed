"""Host preparation before the first sub-interpreter exists, and the stdlib search path."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import sysconfig
import threading
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import HostImportRefusedError

__all__ = ["guard_host_imports", "prepare_host", "refused_from_the_start", "stdlib_dirs"]

_lock = threading.Lock()
_prepared = False


def prepare_host() -> None:
    """Warm, in the main interpreter, what isolated interpreters of this CPython crash on.

    Runs once, before the first sub-interpreter is created (never at ``import envknit``).

    * ``_datetime`` and ``_decimal`` (3.12 and 3.13): importing them in the main interpreter
      first makes their refusal in sub-interpreters take the cached path. Without it, 3.12.1
      aborts when a second interpreter imports ``datetime``/``decimal`` (python/cpython#113218)
      and 3.13.0 crashes destroying the second of two live interpreters that imported
      ``datetime`` (python/cpython#136421, #136423).
    * 3.12 only: the argument parsers that Argument Clinic generates for extension modules
      outside libpython (``select``, ``_asyncio``, ``_ssl``, ``_hashlib``, ``_queue``...) keep
      a tuple of keyword names in static storage, allocated on the first call that passes a
      keyword, by whichever interpreter makes it. When an isolated interpreter is first, the
      tuple comes from that interpreter's allocator and the main interpreter frees it at exit:
      "free(): invalid pointer" or a segfault in ``_PyTuple_Fini`` (python/cpython#112140,
      #119213; fixed upstream by allocating under the main interpreter). ``_own_parsers``
      makes the main interpreter the first caller of every such parser in the stdlib.
    """
    global _prepared
    with _lock:
        if _prepared:
            # Cheap to repeat: something (a test harness, a module reloader) may have dropped
            # them from sys.modules since.
            _import_quietly(_MAIN_FIRST)
            return
        _import_quietly(_MAIN_FIRST)
        if sys.version_info < (3, 13):
            # A fresh thread: asyncio.run() refuses to start inside a running event loop, and
            # the host may be calling us from one.
            worker = threading.Thread(target=_warm_312, name="envknit-warm-up")
            worker.start()
            worker.join()
        _prepared = True


_MAIN_FIRST = ("_datetime", "_decimal")


def _import_quietly(names: tuple[str, ...]) -> None:
    for name in names:
        if name in sys.modules:
            continue
        # A Python built without them has nothing to warm.
        with contextlib.suppress(ImportError):
            __import__(name)


def _warm_312() -> None:
    _own_parsers()
    _own_asyncio_parsers()


# -- 3.12: argument parsers ----------------------------------------------------------------
#
# The mechanism (Python/getargs.c as of 3.12.1): a clinic wrapper hands its static
# _PyArg_Parser to _PyArg_UnpackKeywords whenever the call is not purely positional and in
# range. parser_init() then fills parser->kwtuple: for modules built into libpython the tuple
# is static, for the shared-library modules in lib-dynload it is created with PyTuple_New
# under the *current* interpreter, and the parser is linked into a runtime-wide list.
# Py_FinalizeEx -> _PyArg_Fini drops each tuple under the main interpreter: a tuple from a
# sub-interpreter's obmalloc goes onto main's tuple free list and _PyTuple_Fini hands it to
# free() (exit 139), or free() sees it at once (exit 134). Which call trips it is incidental:
# asyncio.sleep(d > 0) creates a Future with Future(loop=...), epoll.poll(timeout=...) passes
# a keyword, hashlib and ssl pass keywords at import, ThreadPoolExecutor's workers call
# SimpleQueue.get(block=True).
#
# The cure is to make the main interpreter the first caller of every such parser: call each
# function once with a keyword it does not accept. The wrapper runs parser_init() and then
# rejects the keyword with TypeError before the function body runs, so nothing happens.
# Only callables whose text signature has a parameter that can be passed by keyword are
# called (the clinic-generated ones); types are always called, since their signature is often
# not recorded and their parsers (tp_new/tp_init) reject unknown keywords the same way.

_NOT_A_KEYWORD = "_envknit_not_a_keyword_"

# Every lib-dynload module of CPython 3.12 whose parsers allocate their keyword tuple lazily
# (found by reading the _parser.N symbols of each .so under gdb; see docs/hard-isolation.md)
# and that loads in an isolated interpreter, with the instances whose methods carry such
# parsers. Not listed: modules that refuse to load in isolated 3.12 interpreters (_datetime,
# _elementtree, pyexpat, _curses...), _zoneinfo (fails to import there), and test modules.
# _asyncio is warmed with a running loop (_own_asyncio_parsers).
_Instances = Callable[[Any], Sequence[object]]


def _cjk_codecs(module: Any) -> list[object]:
    codec = importlib.import_module("_codecs_cn").getcodec("gb2312")
    encoder = type("Encoder", (module.MultibyteIncrementalEncoder,), {"codec": codec})
    decoder = type("Decoder", (module.MultibyteIncrementalDecoder,), {"codec": codec})
    return [codec, encoder(), decoder()]


def _sqlite(module: Any) -> list[object]:
    connection = module.connect(":memory:")
    return [connection, connection.cursor()]


def _ssl(module: Any) -> list[object]:
    context = module._SSLContext(module.PROTOCOL_TLS_CLIENT)
    return [context, context._wrap_bio(module.MemoryBIO(), module.MemoryBIO(), False, None)]


def _semlock(module: Any) -> list[object]:
    # kind 1 = SEMAPHORE; unlink=True removes the name at once.
    return [module.SemLock(1, 1, 1, f"/envknit-warm-{os.getpid()}-{threading.get_ident()}", True)]


_PARSER_MODULES: dict[str, _Instances | None] = {
    "_bisect": None,
    "_blake2": None,
    "_bz2": lambda m: [m.BZ2Decompressor()],
    "_csv": None,
    "_hashlib": lambda m: [
        m.new("sha256"), m.openssl_shake_128(), m.hmac_new(b"k", digestmod="sha256")
    ],
    "_lzma": lambda m: [m.LZMADecompressor()],
    "_md5": None,
    "_multibytecodec": _cjk_codecs,
    "_multiprocessing": _semlock,
    "_opcode": None,
    "_pickle": None,
    "_posixshmem": None,
    "_queue": lambda m: [m.SimpleQueue()],
    "_sha1": None,
    "_sha2": None,
    "_sha3": None,
    "_socket": None,
    "_sqlite3": _sqlite,
    "_ssl": _ssl,
    "_struct": lambda m: [m.Struct("b")],
    "array": None,
    "binascii": None,
    "cmath": None,
    "grp": None,
    "math": None,
    "select": lambda m: [m.epoll()],
    "zlib": lambda m: [m.decompressobj(), m._ZlibDecompressor()],
}


def _own_parsers() -> list[str]:
    """Be the first caller of the lazily built parsers of the modules above.

    Returns the callables that did not reject the made-up keyword (expected: none but
    ``sqlite3.PrepareProtocol``, which takes any arguments and does nothing with them).
    """
    accepted: list[str] = []
    for name, instances_of in _PARSER_MODULES.items():
        try:
            module = importlib.import_module(name)
        except ImportError:  # a build without it (no OpenSSL, no sqlite...)
            continue
        instances: Sequence[object] = ()
        if instances_of is not None:
            try:
                instances = instances_of(module)
            except Exception:  # noqa: BLE001 - best effort (no /dev/shm for SemLock, a build
                # without a codec...): the module's functions and types are still warmed
                instances = ()
        _own_module(module, instances, accepted)
        for instance in instances:
            close = getattr(instance, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):  # best effort on throwaway objects
                    close()
    return accepted


def _own_asyncio_parsers() -> list[str]:
    # asyncio first: importing _asyncio before it leaves asyncio on its pure-Python tasks.
    import asyncio

    accelerator = sys.modules.get("_asyncio")  # imported by asyncio unless the build lacks it
    accepted: list[str] = []

    async def with_a_running_loop() -> None:
        future = asyncio.get_running_loop().create_future()  # Future(loop=...)
        task = asyncio.current_task()
        if accelerator is not None:
            _own_module(accelerator, [future, task], accepted)
        future.cancel()
        await asyncio.sleep(0)

    asyncio.run(with_a_running_loop())
    return accepted


def _own_module(module: Any, instances: Sequence[object], accepted: list[str]) -> None:
    for value in vars(module).values():
        if isinstance(value, types.BuiltinFunctionType):
            _touch(value, accepted)
        elif isinstance(value, type) and value.__module__.lstrip("_").startswith(
            module.__name__.lstrip("_")
        ):
            _own_type(value, instances, accepted)
    for cls in {type(instance) for instance in instances}:
        for base in cls.__mro__[:-1]:
            _own_type(base, instances, accepted)


def _own_type(cls: type, instances: Sequence[object], accepted: list[str]) -> None:
    _touch(cls, accepted, always=True)
    for attr_name, attr in vars(cls).items():
        if isinstance(attr, types.ClassMethodDescriptorType):
            _touch(getattr(cls, attr_name), accepted)
        elif isinstance(attr, types.MethodDescriptorType):
            for instance in instances:
                if isinstance(instance, cls):
                    _touch(getattr(instance, attr_name), accepted)
                    break


def _takes_keywords(func: object) -> bool:
    signature = getattr(func, "__text_signature__", None)
    if not signature or "**" in signature:
        return False
    params = [p.strip() for p in signature.strip("()").split(",")]
    if params and params[0].startswith("$"):
        params = params[1:]
    if "/" in params:
        params = params[params.index("/") + 1 :]
    return any(p and not p.startswith("*") for p in params)


def _touch(func: Callable[..., object], accepted: list[str], always: bool = False) -> None:
    if not always and not _takes_keywords(func):
        return
    try:
        func(**{_NOT_A_KEYWORD: None})
    except TypeError:
        return
    except Exception:  # noqa: BLE001 - the parser is initialised either way; never break the host
        pass
    accepted.append(getattr(func, "__qualname__", repr(func)))


# -- 3.12: single-phase extension modules ----------------------------------------------------
#
# On 3.12 an isolated interpreter runs a single-phase module's init function *before* it
# refuses the module (Python/importdl.c; python/cpython#117953 moved the init into the main
# interpreter in 3.13). Whatever the init stored in C globals then belongs to the
# sub-interpreter's allocator: _testsinglephase's next init in the host frees it
# (clear_state(): "munmap_chunk(): invalid pointer"), as do _datetime's and _decimal's.
# Two defences: sub-interpreters are told from the start to refuse the stdlib's single-phase
# modules without trying them (so their init never runs there), and a module refused at run
# time is refused in the host too, with an ImportError instead of an abort.

_SINGLE_PHASE_STDLIB = (
    "_ctypes", "_curses", "_curses_panel", "_datetime", "_decimal", "_elementtree", "_lsprof",
    "_testbuffer", "_testcapi", "_testclinic", "_testimportmultiple", "_testsinglephase",
    "_tkinter", "_xxtestfuzz", "nis", "ossaudiodev", "pyexpat", "readline", "xxlimited_35",
)


def refused_from_the_start() -> list[str]:
    """Extension modules that sub-interpreters refuse without running their init (3.12).

    Measured on 3.12.1: the lib-dynload modules that refuse to load in an isolated
    interpreter. On 3.13+ the init runs in the main interpreter, so nothing is pre-refused.
    """
    if sys.version_info >= (3, 13):
        return []
    return list(_SINGLE_PHASE_STDLIB)


_guarded: set[str] = set()


def guard_host_imports(names: Iterable[str]) -> None:
    """Refuse host imports of ``names``, extension modules a sub-interpreter just refused."""
    if sys.version_info >= (3, 13):
        return
    # A module the host had loaded before was refused from CPython's cache, without its init.
    new = {name for name in names if name not in sys.modules}
    if not new:
        return
    with _lock:
        _guarded.update(new)
        if _RefusedExtensionFinder not in sys.meta_path:
            sys.meta_path.insert(0, _RefusedExtensionFinder)


class _RefusedExtensionFinder:
    """A meta path finder that raises for a guarded extension file that sub-interpreters load."""

    @classmethod
    def find_spec(
        cls, fullname: str, path: Sequence[str] | None = None, target: object = None
    ) -> None:
        if fullname not in _guarded:
            return None
        from importlib.machinery import ExtensionFileLoader, PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, ExtensionFileLoader) or not spec.origin:
            return None
        if _shared_with_subinterpreters(spec.origin):
            raise HostImportRefusedError(fullname, spec.origin)
        return None


def _shared_with_subinterpreters(origin: str) -> bool:
    # Sub-interpreters see the stdlib and the store only, and a different file of the same
    # name is a different copy of the C globals.
    from ..store.layout import store_root

    path = os.path.realpath(origin)
    roots = [*_stdlib_dirs(), str(store_root())]
    return any(path.startswith(os.path.realpath(root) + os.sep) for root in roots)


# -- the stdlib search path ---------------------------------------------------------------------
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
