"""The binary lane: buffers (bytes, arrays) between processes in private shared-memory files.

Stdlib only, POSIX: the host imports it; worker processes and sub-interpreters load this file
by path.

A buffer travels as a small JSON descriptor, ``{"$m": {...}}``, while its bytes go through a
file in ``/dev/shm`` (the system temp directory where there is none) that only this user can
open: created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600, written once by the sender
(one copy, straight from the sender's buffer), then mapped by the receiver, which wraps the
mapping without a copy. Senders reuse warm files (``Pool``, in ``envknit._lane_pool``); a
one-off file is written with ``write()`` and unlinked by the receiver once mapped. Small
buffers ride inline in the descriptor as base64, where a file would cost more than the bytes.

Descriptor fields: ``kind`` (what the receiver builds: ``bytes``, ``bytearray``, ``array``,
``memoryview``, ``ndarray``, ``list`` for packed ints, ``floats`` for packed floats with their
``count``), ``n`` (bytes), ``fmt`` (struct format of one item), ``itemsize``, ``shape``, ``ro``
(read-only), ``dtype`` (numpy's ``dtype.str`` or ``descr``; ndarray only), ``seg`` (the file's
name; ``pool`` when pooled: the data starts after a header page) or ``b64`` (inline bytes).
Arrays arrive C-contiguous with the sender's shape and dtype (a non-contiguous one is copied in
C order).

Lifetime. A file's name says who made it: ``<prefix>-<uid>-<pid>-<n>-<random>``. The sender
removes what the receiver did not take when the call ends (``Outbox.discard``) and its pool's
files when it closes, the host removes a dead worker's files (``sweep(pid=...)``), and the
first use of the lane in any process removes files whose maker is gone (``sweep()``): nothing
outlives a crash, a timeout kill or a SIGKILL for longer than the next start.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import stat
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import re

    from . import _lane_pool

__all__ = [
    "DEFAULT_LIMIT",
    "INLINE_MAX",
    "NUMBERS_MIN",
    "TAG",
    "JsonText",
    "LaneError",
    "LaneTooLarge",
    "Outbox",
    "Pool",
    "describe",
    "directory",
    "is_buffer",
    "limit",
    "plain_json",
    "prefix",
    "receive",
    "sweep",
]

#: The key of a buffer descriptor in the wire format.
TAG = "$m"
#: Buffers up to this size travel inline (base64 in the JSON), larger ones through a file.
INLINE_MAX = 32 * 1024
#: The default limit on the bytes of all buffers in one message (see ``limit``).
DEFAULT_LIMIT = 4 * 1024**3

_KINDS = frozenset({"bytes", "bytearray", "array", "memoryview", "ndarray", "list", "floats"})
#: Lists of at least this many floats (or ints) travel as one packed buffer, not as JSON.
NUMBERS_MIN = 1024
# Linux caps one read() at 0x7ffff000 bytes; stay under it.
_IO_CHUNK = 1 << 30
_counter = itertools.count(1)
_swept = False
_numpy: Any = None
_numpy_tried = False
#: Whether receiving an ndarray may import numpy here. A sub-interpreter turns it off: whether
#: a C extension may load there is decided elsewhere, never by a surprise import.
IMPORT_NUMPY = True


class LaneError(Exception):
    """A buffer could not be sent or received (no space, a bad descriptor, a missing file)."""


class LaneTooLarge(LaneError):
    """The buffers of one message exceed the limit (``size`` and ``limit`` in bytes)."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"buffers of {size} bytes exceed the limit of {limit} bytes")


def prefix() -> str:
    """The first part of every file name (``ENVKNIT_LANE_PREFIX``, default ``envknit``)."""
    value = os.environ.get("ENVKNIT_LANE_PREFIX", "envknit")
    # [A-Za-z][A-Za-z0-9_]{0,40}, without loading re at start-up
    if not (0 < len(value) <= 41 and value.isascii() and value[0].isalpha()
            and value.replace("_", "a").isalnum()):
        raise LaneError(f"ENVKNIT_LANE_PREFIX must be letters, digits and _, got {value!r}")
    return value


def directory() -> str:
    """Where the files live: ``/dev/shm`` (memory) when usable, else the system temp dir."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    import tempfile  # here: a worker's start-up need not load it (shutil, random...)

    return tempfile.gettempdir()


# Not every platform has these (the lane also serves sub-interpreters, which Windows runs).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


_name_res: dict[str, re.Pattern[str]] = {}


def _name_re(pfx: str) -> re.Pattern[str]:
    pattern = _name_res.get(pfx)
    if pattern is None:
        import re

        pattern = _name_res[pfx] = re.compile(re.escape(pfx) + r"-(\d+)-(\d+)-(\d+)-([0-9a-f]{16})")
    return pattern


def _numpy_module() -> Any:
    """This side's numpy, imported on first need, or None when it cannot be imported."""
    global _numpy, _numpy_tried
    found = sys.modules.get("numpy")
    if found is not None:
        return found
    if not _numpy_tried and IMPORT_NUMPY:
        _numpy_tried = True
        try:
            import numpy  # type: ignore[import-not-found, unused-ignore]
        except ImportError:  # absent, or a C extension this interpreter refuses
            return None
        _numpy = numpy
    return _numpy


def _is_ndarray(value: Any) -> bool:
    kind = type(value)
    return kind.__name__ == "ndarray" and kind.__module__ == "numpy"


def is_buffer(value: Any) -> bool:
    """Whether the lane carries ``value``: bytes, bytearray, memoryview, array.array, a numpy
    ndarray (exactly; subclasses such as masked arrays would lose what makes them one), or
    any other object exporting the buffer protocol. numpy scalars are not buffers here."""
    kind = type(value)
    if kind in (bytes, bytearray, memoryview) or _is_ndarray(value):
        return True
    if kind.__module__ == "array" and kind.__name__ == "array":
        return True
    if isinstance(value, (str, int, float, list, tuple, dict)) or any(
        # numpy scalars, ndarray subclasses (a masked array, a unit-carrying quantity)
        cls.__module__.partition(".")[0] == "numpy" for cls in kind.__mro__
    ):
        return False
    try:
        memoryview(value).release()
    except TypeError:
        return False
    return True


def _dtype_wire(dtype: Any) -> Any:
    if dtype.hasobject:
        raise TypeError("a numpy array of Python objects (dtype=object) cannot be sent by value")
    if dtype.fields is None and dtype.subdtype is None:
        return dtype.str
    return dtype.descr  # a structured or sub-array dtype: a list of (name, format[, shape])


def _dtype_local(np: Any, wire: Any) -> Any:
    if isinstance(wire, str):
        return np.dtype(wire)

    def fields(items: Any) -> Any:
        out = []
        for item in items:
            name, fmt = item[0], item[1]
            name = tuple(name) if isinstance(name, list) else name
            fmt = fields(fmt) if isinstance(fmt, list) else fmt
            out.append((name, fmt, tuple(item[2])) if len(item) > 2 else (name, fmt))
        return out

    return np.dtype(fields(wire))


def limit() -> int:
    """The most bytes of buffers one message may carry: ``ENVKNIT_MAX_BUFFER_BYTES`` or
    ``DEFAULT_LIMIT``. A guard against filling memory by mistake, not a ceiling on data."""
    value = os.environ.get("ENVKNIT_MAX_BUFFER_BYTES")
    if not value:
        return DEFAULT_LIMIT
    try:
        return int(value)
    except ValueError:
        raise LaneError(
            f"ENVKNIT_MAX_BUFFER_BYTES must be a number of bytes, got {value!r}"
        ) from None


def _pool_module() -> Any:
    """``envknit._lane_pool``, loaded on first need (by path, as this file, in a child)."""
    global _P
    if _P is None:
        if __package__:
            from . import _lane_pool

            _P = _lane_pool
        else:
            import importlib.util

            path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lane_pool.py")
            spec: Any = importlib.util.spec_from_file_location("_envknit_lane_pool", path)
            _P = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(_P)
    return _P


_P: Any = None


class Pool:
    """Warm files one sender reuses (``envknit._lane_pool.Pool``, made on the first buffer)."""

    __slots__ = ("_max", "_real")

    def __init__(self, max_bytes: int | None = None) -> None:
        self._max = max_bytes
        self._real: _lane_pool.Pool | None = None

    @property
    def total(self) -> int:
        return 0 if self._real is None else self._real.total

    def take(self, n: int) -> _lane_pool.Segment | None:
        if self._real is None:
            self._real = _pool_module().Pool(_new_file, _unlink, self._max)
        try:
            return self._real.take(n)
        except ValueError as exc:  # a bad ENVKNIT_LANE_POOL_BYTES
            raise LaneError(str(exc)) from None
        except OSError as exc:
            raise LaneError(f"cannot map a {n}-byte buffer file: {exc}") from None

    def retire(self, seg: _lane_pool.Segment, *, untaken: bool = False) -> None:
        self._real.retire(seg, untaken=untaken)  # type: ignore[union-attr]  # took it

    def close(self) -> None:
        if self._real is not None:
            self._real.close()


def _unlink(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(directory(), name))


class Outbox:
    """The files one side made for one message; ``discard`` unlinks those never taken.

    ``all_buffers`` tells the worker wire format (``envknit._worker._protocol.Lane``) whether
    every buffer goes by value or only ``bytes``.
    """

    inline_max = INLINE_MAX
    __slots__ = ("_limit", "all_buffers", "names", "pool", "pooled", "total")

    def __init__(
        self, max_bytes: int | None = None, *, all_buffers: bool = True, pool: Pool | None = None
    ) -> None:
        # Made for every call: the environment is read only when a buffer is sent.
        self._limit = max_bytes
        self.all_buffers = all_buffers
        self.total = 0
        self.names: list[str] = []
        #: where large buffers go first (one-off files when it is None or full)
        self.pool = pool
        self.pooled: list[_lane_pool.Segment] = []

    @property
    def limit(self) -> int:
        if self._limit is None:
            self._limit = limit()
        return self._limit

    def __bool__(self) -> bool:
        return bool(self.names or self.pooled)

    def describe(self, value: Any) -> dict[str, Any]:
        """``value``'s descriptor (``{TAG: {...}}``); large data is written to a file."""
        return describe(value, self)

    @staticmethod
    def takes(value: Any) -> bool:
        return is_buffer(value)

    def numbers(self, value: list[Any]) -> dict[str, Any] | None:
        """The descriptor of a long list of only floats (or only ints that fit in 64 bits),
        packed (``_lane_pool.pack_floats``; int64s), not as JSON text; None for any other list."""
        if len(value) < NUMBERS_MIN:
            return None
        first = type(value[0])
        if first is float:
            packed = _pool_module().pack_floats(value)
            if packed is None:
                return None
            body = describe(packed, self)[TAG]
            return {TAG: {"kind": "floats", "n": body.pop("n"), "count": len(value), **{
                k: v for k, v in body.items() if k in ("seg", "pool", "b64")
            }}}
        if first is not int or set(map(type, value)) != {int}:
            return None
        import array

        try:
            packed_ints = array.array("q", value)
        except OverflowError:  # an int past 64 bits: JSON carries it exactly
            return None
        desc = describe(packed_ints, self)
        desc[TAG]["kind"] = "list"
        return desc

    def _claim(self, n: int) -> None:
        if self.total + n > self.limit:
            raise LaneTooLarge(self.total + n, self.limit)
        self.total += n

    def _create(self, n: int) -> tuple[str, int]:
        """A new private file of ``n`` bytes' room, open for writing: (name, fd)."""
        try:
            name, fd = _new_file(n)
        except LaneError:
            self.discard()
            raise
        self.names.append(name)
        return name, fd

    def checkpoint(self) -> tuple[int, int, int]:
        """Where this message is now; ``discard(checkpoint)`` undoes what came after."""
        return len(self.names), self.total, len(self.pooled)

    def discard(self, since: tuple[int, int, int] = (0, 0, 0)) -> None:
        """Unlink the files of this message (after ``since``) that the receiver has not taken
        (and mapped), and retire its pooled segments still untaken; with no ``since``, start
        afresh: one Outbox serves message after message."""
        first, self.total, first_pooled = since
        if len(self.pooled) > first_pooled:
            pooled = self.pooled[first_pooled:]
            del self.pooled[first_pooled:]
            if self.pool is not None:
                for seg in pooled:
                    self.pool.retire(seg, untaken=True)
        if len(self.names) <= first:
            return
        folder = directory()
        names = self.names[first:]
        del self.names[first:]
        for name in names:
            # Gone means taken: the receiver unlinked it after mapping it.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, name))


def _new_file(n: int) -> tuple[str, int]:
    """A new private lane file with room for ``n`` bytes, open for writing: (name, fd)."""
    global _swept
    if not _swept:
        _swept = True
        sweep()
    folder = directory()
    for _ in range(100):
        name = f"{prefix()}-{_uid()}-{os.getpid()}-{next(_counter)}-{os.urandom(8).hex()}"
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        except FileExistsError:  # another user's squatter, or (never) a clash: next name
            continue
        try:
            # Reserve the room now: running out of space then is a clean ENOSPC, never a
            # SIGBUS while a mapping is written, and a write() never stops half-way.
            if n and hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, n)
        except OSError as exc:
            os.close(fd)
            _unlink(name)
            raise LaneError(
                f"no room for a {n}-byte buffer in {folder}: {os.strerror(exc.errno or 0)}"
            ) from None
        return name, fd
    raise LaneError(f"cannot create a buffer file in {folder}")


def _write_all(fd: int, data: memoryview) -> None:
    offset, size = 0, len(data)
    while offset < size:
        offset += os.write(fd, data[offset : offset + _IO_CHUNK])


def describe(value: Any, outbox: Outbox) -> dict[str, Any]:
    """The descriptor of ``value`` (see ``is_buffer``); large buffers are written to a file
    registered in ``outbox``. Raises TypeError for a value the lane cannot carry."""
    meta: dict[str, Any]
    array = None
    if _is_ndarray(value):
        array = value
        meta = {
            "kind": "ndarray",
            "dtype": _dtype_wire(value.dtype),
            "shape": list(value.shape),
            "itemsize": int(value.itemsize),
            "ro": not value.flags.writeable,
        }
        n = int(value.nbytes)
        if value.flags.c_contiguous:
            array = None
            # Bytes of any dtype (memoryview refuses datetime64 and some others).
            view = memoryview(value.reshape(-1).view("u1")) if n else memoryview(b"")
        else:
            view = None  # copied into the file in C order below
    else:
        kind = type(value)
        if kind is bytes or kind is bytearray:
            view = memoryview(value)
            meta = {"kind": kind.__name__}
        else:
            view = memoryview(value)
            meta = {
                "kind": "array" if kind.__module__ == "array" else "memoryview",
                "fmt": view.format,
                "itemsize": view.itemsize,
                "shape": list(view.shape or ()),
                "ro": view.readonly,
            }
            if meta["kind"] == "array":
                meta["fmt"] = value.typecode
            if not view.c_contiguous:
                view = memoryview(view.tobytes())
            elif view.ndim != 1 or view.format != "B":
                view = view.cast("B") if view.nbytes else memoryview(b"")
        n = view.nbytes
    meta["n"] = n
    outbox._claim(n)
    if n == 0:
        pass
    elif n <= INLINE_MAX:
        data = view if view is not None else memoryview(array.tobytes())  # type: ignore[union-attr]
        import base64

        meta["b64"] = base64.b64encode(data).decode("ascii")
    elif outbox.pool is not None and (seg := outbox.pool.take(n)) is not None:
        outbox.pooled.append(seg)
        # One memcpy into pages that are already there (see Pool).
        if view is not None:
            seg.map[seg.start : seg.start + n] = view
        else:
            _copy_strided(seg.map, seg.start, array)
        meta["seg"] = seg.name
        meta["pool"] = 1
    else:
        name, fd = outbox._create(n)
        try:
            if view is not None:
                _write_all(fd, view)
            else:
                with mmap.mmap(fd, n) as mapped:
                    _copy_strided(mapped, 0, array)
        except OSError as exc:
            outbox.discard()
            raise LaneError(f"cannot write a {n}-byte buffer: {exc}") from None
        finally:
            os.close(fd)
        meta["seg"] = name
    return {TAG: meta}


def _copy_strided(mapped: mmap.mmap, offset: int, array: Any) -> None:
    """Copy a non-contiguous ndarray into a mapping in C order, without a temporary copy."""
    target = type(array)(array.shape, array.dtype, buffer=mapped, offset=offset)
    try:
        target[...] = array
    finally:
        del target  # the mapping cannot close while an array still exports it


def _open_segment(name: str, n: int) -> int:
    if not isinstance(name, str) or not _name_re(prefix()).fullmatch(name):
        raise LaneError(f"bad buffer file name {name!r}")
    path = os.path.join(directory(), name)
    try:
        fd = os.open(path, os.O_RDWR | _NOFOLLOW)
    except FileNotFoundError:
        raise LaneError(f"buffer file {name} is gone (taken twice, or swept)") from None
    info = os.fstat(fd)
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_uid != _uid()
        or info.st_mode & 0o077
        or info.st_size < n
    ):
        os.close(fd)
        raise LaneError(f"buffer file {name} is not a private file of {n} bytes")
    return fd


def receive(meta: Any) -> Any:
    """Build the value a descriptor's body (``desc[TAG]``) stands for; take its file if any.

    ``bytes``/``bytearray``/``array`` arrive as themselves (one copy out of the file); an
    ndarray arrives as this side's numpy ndarray over the mapped file (no copy), or, without
    numpy here, as a memoryview with the item format and shape; a memoryview (and any other
    buffer) as a memoryview over the mapping.
    """
    if not isinstance(meta, dict) or meta.get("kind") not in _KINDS:
        raise LaneError(f"bad buffer descriptor {meta!r:.80}")
    kind: str = meta["kind"]
    n = meta.get("n")
    if not isinstance(n, int) or n < 0:
        raise LaneError(f"bad buffer size {n!r}")
    raw: Any
    if "seg" in meta:
        pooled = bool(meta.get("pool"))
        pool = _pool_module() if pooled else None
        fd = _open_segment(meta["seg"], n + pool.HEADER if pool is not None else n)
        try:
            raw = _take(fd, n, meta, os.path.join(directory(), meta["seg"]), pool)
        finally:
            os.close(fd)
    elif n:
        import base64

        try:
            raw = base64.b64decode(str(meta["b64"]).encode("ascii"), validate=True)
        except (KeyError, ValueError) as exc:
            raise LaneError(f"bad inline buffer: {exc}") from None
        if len(raw) != n:
            raise LaneError("inline buffer has the wrong size")
    else:
        raw = b""
    if kind == "bytes":
        return bytes(raw) if type(raw) is not bytes else raw
    if kind == "bytearray":
        return raw if type(raw) is bytearray else bytearray(raw)
    if kind == "floats":
        if type(raw) is list:
            return raw  # read and unpacked by _take
        try:
            return _pool_module().unpack_floats(raw, meta.get("count"))
        except ValueError as exc:
            raise LaneError(str(exc)) from None
    if kind in ("array", "list"):
        if type(raw) is bytes:
            import array

            out = array.array(str(meta["fmt"]))
            out.frombytes(raw)
            raw = out
        return raw.tolist() if kind == "list" else raw  # read into an array of the right size
    if kind == "ndarray":
        np = _numpy_module()
        if np is not None:
            return _ndarray(np, meta, raw)
    return _memoryview(meta, raw)


def _take(fd: int, n: int, meta: dict[str, Any], path: str, pool: Any) -> Any:
    """The file's bytes: copied out for bytes/bytearray/array/lists, else a writable mapping.

    A one-off file is unlinked once taken; a pooled one (``pool`` is ``envknit._lane_pool``)
    goes back to its sender: at once after a copy, when the mapping dies after a mapping.
    """
    kind = meta["kind"]
    offset = 0 if pool is None else pool.HEADER
    try:
        if kind == "floats" and pool is not None and hasattr(os, "preadv"):
            try:
                return pool.read_floats(fd, n, offset, meta.get("count"))
            except ValueError as exc:
                raise LaneError(str(exc)) from None
        if kind in ("array", "list"):
            import array

            itemsize = int(meta["itemsize"])
            out_array = array.array(str(meta["fmt"]), [0]) * (n // itemsize)
            _read_into(fd, memoryview(out_array).cast("B"), offset)
            return out_array
        if kind in ("bytes", "floats") and n <= _IO_CHUNK:
            # One copy, into the bytes object itself.
            data = os.pread(fd, n, offset) if offset else os.read(fd, n)
            if len(data) != n:
                raise LaneError(f"buffer file ended after {len(data)} of {n} bytes")
            return data
        if kind in ("bytes", "bytearray", "floats"):
            out = bytearray(n)
            _read_into(fd, memoryview(out), offset)
            return out
        # Lazily: faulting pages in on first touch costs less than MAP_POPULATE, even all of them.
        mapped = mmap.mmap(fd, n, flags=mmap.MAP_SHARED, offset=offset)
        if pool is not None:
            pool.taken(fd, mapped, path)
            pool = None  # the mapping gives it back
        return mapped
    finally:
        if pool is not None:
            pool.copied(fd)  # copied out: the sender may write it again
        elif not offset:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # mapped or copied: the name has done its job


def _read_into(fd: int, view: memoryview, offset: int = 0) -> None:
    got, n = 0, len(view)
    os.lseek(fd, offset, os.SEEK_SET)
    with open(fd, "rb", buffering=0, closefd=False) as file:  # readinto: no preadv on macOS
        while got < n:
            read = file.readinto(view[got : got + _IO_CHUNK])
            if not read:
                raise LaneError(f"buffer file ended after {got} of {n} bytes")
            got += read


def _ndarray(np: Any, meta: dict[str, Any], raw: Any) -> Any:
    dtype = _dtype_local(np, meta["dtype"])
    shape = tuple(int(d) for d in meta["shape"])
    if not meta["n"]:
        array = np.empty(shape, dtype)
    else:
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)
        if type(raw) is bytes:
            array = array.copy()  # inline data: own writable memory, like a received file
    array.flags.writeable = not meta.get("ro")
    return array


def _memoryview(meta: dict[str, Any], raw: Any) -> memoryview:
    view = memoryview(raw) if meta["n"] else memoryview(bytearray())
    if type(raw) is bytes and meta["n"]:
        view = memoryview(bytearray(raw))
    shape = [int(d) for d in meta.get("shape", [])]
    fmt = meta.get("fmt")
    if fmt is None and "dtype" in meta:
        fmt = _struct_format(meta["dtype"])
    if fmt is not None and meta["n"]:
        # A format memoryview cannot express (complex, datetime) stays plain bytes.
        with contextlib.suppress(TypeError, ValueError):
            cast: Any = view.cast("B").cast
            view = cast(str(fmt), shape) if shape else cast(str(fmt))
    if meta.get("ro"):
        view = view.toreadonly()
    return view


def _struct_format(dtype: Any) -> str | None:
    """The struct format of a simple native-order numpy dtype string (``'<f8'`` -> ``'d'``)."""
    if not isinstance(dtype, str) or len(dtype) < 3:
        return None
    native = "<" if sys.byteorder == "little" else ">"
    if dtype[0] not in (native, "|"):
        return None
    return {
        "f2": "e", "f4": "f", "f8": "d", "i1": "b", "i2": "h", "i4": "i", "i8": "q",
        "u1": "B", "u2": "H", "u4": "I", "u8": "Q", "b1": "?",
    }.get(dtype[1:])


def sweep(pid: int | None = None) -> list[str]:
    """Unlink this user's lane files made by ``pid`` (any state), or, without ``pid``, by
    processes that no longer exist. Returns the names removed."""
    removed: list[str] = _pool_module().sweep(directory(), _name_re(prefix()), _uid(), pid)
    return removed


class _Packed:
    """A list of numbers already written to the lane (``JsonText.pack``)."""

    __slots__ = ("meta",)

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# A key no JSON value from user code carries by chance: marks where a buffer stood.
_HOLE = f"$envknit-buffer-{os.urandom(8).hex()}"


def plain_json(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples become lists, keys become strings...),
    with every buffer (see ``is_buffer``) left in place as the object itself.

    Raises TypeError, as ``json.dumps`` does, for anything else that JSON cannot carry.
    """
    import json

    found: list[Any] = []

    def hole(obj: Any) -> Any:
        if is_buffer(obj):
            found.append(obj)
            return {_HOLE: len(found) - 1}
        return _not_json(obj)

    text = json.dumps(value, default=hole)
    if not found:
        return json.loads(text)

    def fill(obj: dict[str, Any]) -> Any:
        return found[obj[_HOLE]] if len(obj) == 1 and _HOLE in obj else obj

    return json.loads(text, object_hook=fill)


class JsonText:
    """JSON text with buffers, for two sides of one process (the host and a sub-interpreter).

    Buffers become ``{key: descriptor}`` objects, where ``key`` is a random string both sides
    share (the host makes it and hands it to the interpreter at boot), so no value of user
    code is ever read as a buffer; everything else is plain ``json`` as before.
    """

    def __init__(self, key: str) -> None:
        import json

        self._dumps = json.dumps
        self.key = key
        self._needle = json.dumps(key)
        self._decode = json.JSONDecoder().raw_decode
        self._decode_buffers = json.JSONDecoder(object_hook=self._revive).raw_decode

    def dumps(self, value: Any, outbox: Outbox) -> str:
        """``json.dumps(value)``, buffers described into ``outbox``."""

        def buffer(obj: Any) -> Any:
            if type(obj) is _Packed:
                return {self.key: obj.meta}
            if is_buffer(obj):
                return {self.key: describe(obj, outbox)[TAG]}
            return _not_json(obj)

        return self._dumps(value, default=buffer)

    @staticmethod
    def pack(value: Any, outbox: Outbox, depth: int = 3) -> Any:
        """``value`` with its long lists of numbers (see ``Outbox.numbers``) packed for
        ``dumps``, looking into dicts (and short lists) ``depth`` levels deep; ``value``
        itself when there is nothing to pack."""
        kind = type(value)
        if kind is list:
            if len(value) >= NUMBERS_MIN:
                if type(value[0]) in (float, int):
                    desc = outbox.numbers(value)
                    if desc is not None:
                        return _Packed(desc[TAG])
                return value
            items: Any = enumerate(value)
        elif kind is dict:
            items = value.items()
        else:
            return value
        if not depth:
            return value
        out = None
        for key, item in items:
            if type(item) in (list, dict):
                packed = JsonText.pack(item, outbox, depth - 1)
                if packed is not item:
                    if out is None:
                        out = list(value) if kind is list else dict(value)
                    out[key] = packed
        return value if out is None else out

    def loads(self, text: str) -> Any:
        """The value of ``text``; buffers in it are received (their files taken)."""
        if self._needle in text:
            return self._decode_buffers(text)[0]
        return self._decode(text)[0]

    def _revive(self, obj: dict[str, Any]) -> Any:
        if len(obj) == 1 and self.key in obj:
            return receive(obj[self.key])
        return obj
