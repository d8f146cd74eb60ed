"""The binary lane's parts loaded on first need: pooled files, sweeping, packed float lists.

``envknit._lane`` loads it on first need (in a worker or a sub-interpreter by path) and hands
``Pool`` the functions that make and remove its files. Errors are ValueError and OSError; the
lane turns them into its own.
"""

from __future__ import annotations

import mmap
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import re

__all__ = [
    "HEADER",
    "POOL_BYTES",
    "POOL_IDLE",
    "Pool",
    "Segment",
    "copied",
    "pack_floats",
    "read_floats",
    "sweep",
    "taken",
    "unpack_floats",
]

#: A pooled file starts with one page of header (its first byte is the segment's state), so
#: that its data is page-aligned and a receiver can map just the data (mmap offsets are pages).
HEADER = mmap.ALLOCATIONGRANULARITY
_FREE, _SENT, _TAKEN = b"\x00", b"\x01", b"\x02"
#: The default cap on the bytes one pool keeps (see ``Pool``); ``ENVKNIT_LANE_POOL_BYTES``.
POOL_BYTES = 128 * 1024**2
#: A free segment unused for this many seconds is given back at the pool's next transfer.
POOL_IDLE = 30.0
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class Segment:
    """One pooled file, mapped whole by its sender; its data starts at ``start``."""

    __slots__ = ("map", "name", "size", "used")
    start = HEADER

    def __init__(self, name: str, size: int, mapped: mmap.mmap) -> None:
        self.name = name
        self.size = size  # bytes of data room, after the header
        self.map = mapped
        self.used = 0.0

    def state(self) -> bytes:
        return self.map[:1]


def _pool_limit() -> int:
    value = os.environ.get("ENVKNIT_LANE_POOL_BYTES")
    if not value:
        return POOL_BYTES
    try:
        return max(0, int(value))
    except ValueError:
        raise ValueError(
            f"ENVKNIT_LANE_POOL_BYTES must be a number of bytes, got {value!r}"
        ) from None


def _room(n: int) -> int:
    """``n`` rounded up to a size class: whole pages, at most 1/8 more than asked."""
    step = max(HEADER, 1 << max(0, n.bit_length() - 4))
    return -(-n // step) * step


class Pool:
    """Files that one sender keeps mapped and writes transfer after transfer.

    A fresh file costs a page fault per page on both sides (as much as the copy itself, or
    more); a pooled one is already in memory and mapped, so sending is one ``memcpy`` into warm
    pages. The first byte of each file says whose turn it is: the sender marks it sent, the
    receiver marks it taken when it maps the data (``taken``) and free again once the last
    view of that mapping is gone (a weak reference on the mapping: an ndarray or memoryview
    over it keeps it alive, whatever the user slices from it), or at once when it copies the
    data out (``copied``). The sender writes only into free files, so a view the receiver holds
    is never overwritten. Files stay named in the lane directory while pooled (the lane's
    ``sweep`` removes those of a dead maker); a file sent but never taken is retired, never
    reused: a late receiver may still map it.

    Bounded: at most ``max_bytes`` (``ENVKNIT_LANE_POOL_BYTES``, default ``POOL_BYTES``; 0
    turns pooling off) of files; a buffer that does not fit travels in a one-off file, free
    files unused for ``POOL_IDLE`` seconds go at the next transfer, and ``close`` (at exit,
    too) removes them all.
    """

    def __init__(
        self,
        new_file: Callable[[int], tuple[str, int]],
        unlink: Callable[[str], None],
        max_bytes: int | None = None,
    ) -> None:
        import _thread

        self._new_file = new_file  # (name, fd) of a new private file with room for n bytes
        self._unlink = unlink
        self._max = max_bytes
        self._lock = _thread.allocate_lock()
        self._segments: list[Segment] = []
        self._pid = os.getpid()
        self.total = 0

    def take(self, n: int) -> Segment | None:
        """A free segment of at least ``n`` bytes, marked sent; None when the pool is full."""
        if self._max is None:
            self._max = _pool_limit()
        if n > self._max or not hasattr(os, "pwrite"):
            return None
        with self._lock:
            now = time.monotonic()
            self._trim(now, self._max)  # idle ones only, unless over the cap
            best = None
            for seg in self._segments:
                fits = seg.size >= n and (best is None or seg.size < best.size)
                if fits and seg.state() == _FREE:
                    best = seg
            if best is None:
                size = _room(n)
                self._trim(now, self._max - size)
                if self.total + size > self._max:
                    return None
                best = self._create(size)
            best.map[:1] = _SENT
            best.used = now
            return best

    def _trim(self, now: float, keep: int) -> None:
        """Retire free segments idle too long, then the least recently used free ones until
        at most ``keep`` bytes stay pooled."""
        for seg in sorted(self._segments, key=lambda s: s.used):
            if seg.state() == _FREE and (self.total > keep or now - seg.used > POOL_IDLE):
                self._retire(seg)

    def _create(self, size: int) -> Segment:
        if not self._segments:
            _register(self)
        name, fd = self._new_file(HEADER + size)
        try:
            mapped = mmap.mmap(fd, HEADER + size, flags=mmap.MAP_SHARED | _POPULATE)
        except OSError:
            self._unlink(name)
            raise
        finally:
            os.close(fd)
        seg = Segment(name, size, mapped)
        self._segments.append(seg)
        self.total += size
        return seg

    def retire(self, seg: Segment, *, untaken: bool = False) -> None:
        """Stop using ``seg`` (if ``untaken``: only if no receiver took it): unlink it; views
        a receiver holds keep their memory."""
        with self._lock:
            if seg in self._segments and (not untaken or seg.state() == _SENT):
                self._retire(seg)

    def _retire(self, seg: Segment) -> None:
        self._segments.remove(seg)
        self.total -= seg.size
        if os.getpid() == self._pid:  # a forked child must not remove its parent's files
            self._unlink(seg.name)
        seg.map.close()  # only ever exported for a moment, while being written

    def close(self) -> None:
        """Remove every file of this pool (at exit, and when its peer is gone)."""
        with self._lock:
            for seg in list(self._segments):
                self._retire(seg)
        if _pools is not None:
            _pools.discard(self)


#: Map pages in at once (Linux): one pass of page-table work instead of a fault per page.
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
_pools: set[Pool] | None = None


def _register(pool: Pool) -> None:
    """Close ``pool`` at exit, if its owner has not (a pool leaves the set when closed)."""
    global _pools
    if _pools is None:
        import atexit

        _pools = set()
        atexit.register(_close_pools)
    _pools.add(pool)


def _close_pools() -> None:
    for pool in list(_pools or ()):
        pool.close()


# -- leftovers ---------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    # A zombie (exited; its parent died too and nobody reaped it yet) makes no more files.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except OSError:  # no /proc (macOS): trust kill()
        return True


def sweep(folder: str, pattern: re.Pattern[str], uid: int, pid: int | None) -> list[str]:
    """Unlink the lane files in ``folder`` (names matching ``pattern``: uid, maker, ...) of
    user ``uid`` made by ``pid`` (any state), or, with ``pid`` None, by processes that no
    longer exist. Returns the names removed."""
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or int(match.group(1)) != uid:
            continue
        maker = int(match.group(2))
        if (maker != pid) if pid is not None else (maker == os.getpid() or _alive(maker)):
            continue
        path = os.path.join(folder, name)
        try:
            if os.lstat(path).st_uid != uid:
                continue
            os.unlink(path)
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed


# -- the receiving side -----------------------------------------------------------------------
def copied(fd: int) -> None:
    """The receiver copied the data out of the pooled file ``fd``: its sender may reuse it."""
    os.pwrite(fd, _FREE, 0)


def taken(fd: int, mapped: mmap.mmap, path: str) -> None:
    """The receiver mapped the pooled file ``fd`` (at ``path``) as ``mapped``: taken until the
    mapping is gone, which only happens once nothing built on it is left."""
    import weakref

    os.pwrite(fd, _TAKEN, 0)

    def release(ref: Any, path: str = path, held: set[Any] = _held) -> None:
        held.discard(ref)
        _give_back(path)

    _held.add(weakref.ref(mapped, release))


_held: set[Any] = set()


def _give_back(
    path: str,
    _open: Any = os.open,
    _fstat: Any = os.fstat,
    _pwrite: Any = getattr(os, "pwrite", None),  # noqa: B008 - bound now: see below
    _close: Any = os.close,
    _flags: int = os.O_WRONLY | _NOFOLLOW,
    _uid: int = os.getuid() if hasattr(os, "getuid") else 0,
    _free: bytes = _FREE,
) -> None:
    # Runs from a weakref callback, maybe late in interpreter shutdown: the defaults keep what
    # it needs. A file its sender retired meanwhile is gone: nothing to give back.
    try:
        fd = _open(path, _flags)
    except OSError:
        return
    try:
        if _fstat(fd).st_uid == _uid:
            _pwrite(fd, _free, 0)
    finally:
        _close(fd)


#: Floats per ``struct`` call when a ``floats`` buffer is read (a cached ``Struct`` each).
_BATCH = 2048
_MARSHAL_HEAD = 5  # TYPE_LIST and a 4-byte count
_batch_structs: dict[int, Any] = {}


def pack_floats(value: list[Any]) -> memoryview | None:
    """``value`` in the ``floats`` layout, or None unless every item is exactly a float.

    The layout is the body ``marshal`` version 2 writes for a list of floats: ``g`` and 8
    little-endian bytes per float, nothing else. marshal's C encoder is the fastest exact type
    check in the stdlib: it writes an exact float as ``g``, refuses a float subclass and writes
    an int, a bool or anything else it knows with another code (version 2 has no back
    references), so the layout is checked by its length and one strided slice. It never calls
    user code. The receiver reads the layout with ``struct`` (``unpack_floats``); nothing is
    ever unmarshalled.
    """
    import marshal

    try:
        data = marshal.dumps(value, 2)
    except (ValueError, RecursionError):  # a float subclass (or anything marshal refuses)
        return None
    n = len(value)
    if len(data) != _MARSHAL_HEAD + 9 * n or data[_MARSHAL_HEAD::9] != b"g" * n:
        return None  # another code somewhere: an item that is not exactly a float
    return memoryview(data)[_MARSHAL_HEAD:]


_scratch: list[bytearray] = []
_SCRATCH_MAX = 16 * 1024**2


def read_floats(fd: int, n: int, offset: int, count: Any) -> list[float]:
    """``unpack_floats`` of the ``n`` bytes at ``offset`` in ``fd``, read into a buffer that
    is reused (warm pages: no allocation of fresh ones per list)."""
    buf = _scratch.pop() if _scratch else bytearray()  # atomic: threads never share one
    if len(buf) < n:
        buf = bytearray(n)
    try:
        with memoryview(buf) as view, view[:n] as data:
            if os.preadv(fd, [data], offset) != n:
                raise ValueError(f"packed floats: the file ended before {n} bytes")
            return unpack_floats(data, count)
    finally:
        if len(buf) <= _SCRATCH_MAX:
            _scratch.append(buf)


def unpack_floats(raw: Any, count: Any) -> list[float]:
    """The list of floats a ``floats`` buffer holds (see ``pack_floats``); ValueError if
    its size does not fit ``count``."""
    if not isinstance(count, int) or count < 0 or len(raw) != 9 * count:
        raise ValueError(f"packed floats of {len(raw)} bytes cannot hold {count!r} floats")
    np = sys.modules.get("numpy")  # loaded already: never imported for this
    if np is not None and count:
        try:
            # A strided view of the 8 bytes after each "g", made into floats in one C loop:
            # about 10% less than the struct batches below (which pickle.loads about matches).
            floats: list[float] = np.frombuffer(raw, _numpy_layout(np))["v"].tolist()
        except (AttributeError, TypeError, ValueError):  # a numpy that is not the one we know
            pass
        else:
            return floats
    whole = _batch_struct(_BATCH)
    out: list[float] = []
    stop = 9 * (count - count % _BATCH)
    for offset in range(0, stop, 9 * _BATCH):
        out += whole(raw, offset)  # "x" skips each "g"; "<d" is a plain copy on most hosts
    if count % _BATCH:
        out += _batch_struct(count % _BATCH)(raw, stop)
    return out


_numpy_dtype: list[Any] = []


def _numpy_layout(np: Any) -> Any:
    if not _numpy_dtype or _numpy_dtype[0] is not np:
        _numpy_dtype[:] = [np, np.dtype([("g", "u1"), ("v", "<f8")])]
    return _numpy_dtype[1]


def _batch_struct(k: int) -> Any:
    unpack = _batch_structs.get(k)
    if unpack is None:
        import struct

        if len(_batch_structs) > 64:  # tails of every size: keep the cache small
            _batch_structs.clear()
        unpack = _batch_structs[k] = struct.Struct("<" + "xd" * k).unpack_from
    return unpack
