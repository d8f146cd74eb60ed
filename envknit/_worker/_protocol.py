"""The worker wire format: length-prefixed frames of tagged JSON (stdlib only; host and child).

A frame is an 8-byte header (the magic ``EKw`` and a frame-format byte, then the payload
length as 4 big-endian bytes) followed by that many bytes of UTF-8 JSON. The header is checked
(magic, length against the limit) *before* the payload is read, so stray or hostile bytes on
the pipe are refused at once and can never make the reader allocate more than the limit; once
a frame has started, the rest must arrive within the reader's frame timeout, whatever the
caller's own deadline.

JSON carries ``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` and ``dict`` with string
keys as themselves. A few more types travel as single-key objects whose key starts with ``$``:

``{"$b": "<base64>"}`` bytes · ``{"$t": [...]}`` tuple · ``{"$d": [[k, v], ...]}`` a dict whose
keys are not all strings, or that has a key starting with ``$`` · ``{"$r": id, ...}`` a handle to
an object that stays in the worker · ``{"$m": {...}}`` a buffer on the binary lane (large bytes,
arrays: see ``envknit/_lane.py``; the data is in a private shared-memory file, not in the frame).
Because every dict with a ``$`` key travels as ``$d``, user data can never be read as a tag:
``{"$t": [1]}`` or ``{"$ref": "#/a"}`` arrive as themselves.

Nothing else can be expressed, so decoding never runs code (there is no pickle in either
direction). This module runs inside the worker too: it must import only the standard library and
work on every CPython a lock may target.
"""

from __future__ import annotations

import _json  # CPython's JSON accelerator, the one the json package runs on (see to_json)
import os
import select
import struct
import time

# The worker child imports this module at start-up, and a new worker's time to its first result
# is a budget (docs/benchmarks.md): typing and collections.abc are for the type checker only,
# base64 (which loads re) is imported when bytes travel.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol
else:
    Protocol = object

__all__ = [
    "BINARY_OPERATORS",
    "COMPARISONS",
    "CONVERSIONS",
    "DEFAULT_FRAME_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_DEPTH",
    "NEXT_BATCH",
    "PACK_MIN",
    "PROTOCOL_VERSION",
    "SCALARS",
    "SPIN",
    "UNARY_OPERATORS",
    "FrameReader",
    "FrameStalled",
    "FrameTimeout",
    "FrameTooLarge",
    "Lane",
    "NotPlain",
    "PeerClosed",
    "WireError",
    "decode",
    "dumps",
    "encode",
    "from_json",
    "is_tagged",
    "loads",
    "to_json",
    "write_frame",
]

#: Bumped whenever a message or tag changes meaning; host and worker refuse to talk otherwise.
PROTOCOL_VERSION = 3
#: The largest payload either side sends or accepts (64 MiB), unless the host configures another.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
#: Once a frame's first byte has arrived, the rest must arrive within this many seconds.
DEFAULT_FRAME_TIMEOUT = 5.0
#: Containers nested deeper than this are not sent by value.
MAX_DEPTH = 100
#: The most items one ``next`` request returns from a remote iterator.
NEXT_BATCH = 64
#: Lists this long are offered to the lane, which packs them if they hold only numbers
#: (``envknit._lane.NUMBERS_MIN``).
PACK_MIN = 1024

# What the ``operator`` request may name: functions of the ``operator`` module, by their name
# there (``and_``, not ``and``), plus two conversions. A proxy forwards exactly these.
#: Binary operators; a proxy has the reflected method (``__radd__``) of each as well.
BINARY_OPERATORS = (
    "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift",
    "and_", "or_", "xor",
)
#: Unary operators.
UNARY_OPERATORS = ("neg", "pos", "abs", "invert", "index")
#: Ordering comparisons (``==`` and ``!=`` stay identity on the host: proxies remain hashable).
COMPARISONS = ("lt", "le", "gt", "ge")
#: Builtin conversions, called as ``int(x)`` / ``float(x)`` in the worker.
CONVERSIONS = ("int", "float")

#: Starts every frame: ``EKw`` and the frame format (1), which changes only with the header.
_MAGIC = b"EKw\x01"
_HEADER = struct.Struct(">4sI")
_READ_CHUNK = 1 << 16
#: How long a reader polls for a frame, yielding its core between polls, before it sleeps
#: (seconds; 0: it sleeps at once). Across cores this halves a small round trip's time.
SPIN = 50e-6
# A yield that kept a reader off its core this long means another process ran there.
_STOLEN = 1e-3
# ... after which the reader sleeps at once for this long.
_BACK_OFF = 0.01


class WireError(Exception):
    """A malformed frame or payload."""


class PeerClosed(WireError):
    """The other side closed its end of the pipe (it exited or died)."""


class FrameTimeout(WireError):
    """No complete frame arrived before the deadline."""


class FrameStalled(WireError):
    """A frame started but its rest did not arrive within the frame timeout."""


class FrameTooLarge(WireError):
    """A frame longer than the limit (``size`` and ``limit`` in bytes)."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes")


class NotPlain(TypeError):
    """A value that the wire format cannot carry by value."""


#: Types that are their own wire form.
SCALARS: frozenset[type] = frozenset({str, int, float, bool, type(None)})
# The base type's own conversion, so that an overridden __str__/__int__ cannot change the value.
_PLAIN: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (str, str.__str__), (int, int.__int__), (float, float.__float__), (bytes, bytes),
    (list, list), (tuple, tuple), (dict, dict),
)


class Lane(Protocol):
    """Where buffers go (``envknit._lane.Outbox``): ``describe`` writes one and returns its
    ``{"$m": ...}`` form; ``all_buffers`` says whether every buffer goes by value or only
    ``bytes`` (proxy results: other buffers stay in the worker behind a handle)."""

    all_buffers: bool

    @property
    def inline_max(self) -> int:
        """Bytes values longer than this go on the lane."""

    def describe(self, value: Any) -> dict[str, Any]: ...

    def takes(self, value: Any) -> bool: ...

    def numbers(self, value: list[Any]) -> dict[str, Any] | None: ...


def encode(
    value: Any,
    other: Callable[[Any], Any] | None = None,
    _depth: int = 0,
    limit: int = 0,
    lane: Lane | None = None,
) -> Any:
    """The JSON-ready form of ``value``; ``other`` maps values that have no wire form.

    Without ``other`` such a value raises ``NotPlain``. With a ``limit`` (bytes), a bytes value
    whose base64 form alone is past it raises ``FrameTooLarge`` before that form is built:
    bytes are the one type whose encoding is much larger than the value already in memory.
    With a ``lane``, large bytes (and, if ``lane.all_buffers``, every buffer: arrays,
    memoryviews...) travel on it instead, outside the frame and its limit, and long lists of
    numbers travel packed.
    """
    kind = type(value)
    if kind in SCALARS:  # the common case first: exact types, no isinstance chain
        return value
    if not _depth and (kind is list or kind is dict) and _is_plain(value, 0, lane is not None):
        return value  # already its own wire form: checking costs less than copying
    if _depth > MAX_DEPTH:
        if other is not None:
            return other(value)
        raise NotPlain(f"nested deeper than {MAX_DEPTH} levels")
    depth = _depth + 1
    if kind is list:
        if lane is not None and len(value) >= PACK_MIN:
            packed = lane.numbers(value)  # a long list of floats: one buffer, not JSON text
            if packed is not None:
                return packed
        return [v if type(v) in SCALARS else encode(v, other, depth, limit, lane) for v in value]
    if kind is dict:
        for k in value:
            if type(k) is not str or k[:1] == "$":
                break
        else:
            return {
                k: v if type(v) in SCALARS else encode(v, other, depth, limit, lane)
                for k, v in value.items()
            }
        items = value.items()
        pairs = [
            [encode(k, other, depth, limit, lane), encode(v, other, depth, limit, lane)]
            for k, v in items
        ]
        return {"$d": pairs}
    if kind is tuple:
        return {"$t": [encode(v, other, depth, limit, lane) for v in value]}
    if kind is bytes:
        if lane is not None and len(value) > lane.inline_max:
            return lane.describe(value)
        if limit and 4 * -(-len(value) // 3) > limit:
            raise FrameTooLarge(4 * -(-len(value) // 3), limit)
        import base64

        return {"$b": base64.b64encode(value).decode("ascii")}
    if lane is not None and lane.all_buffers and lane.takes(value):
        return lane.describe(value)
    # Subclasses of the plain types (an IntEnum, numpy.float64, an OrderedDict...) travel as
    # the plain type.
    for plain, convert in _PLAIN:
        if isinstance(value, plain):
            return encode(convert(value), other, _depth, limit, lane)
    if other is not None:
        return other(value)
    raise NotPlain(f"{kind.__module__}.{kind.__qualname__} has no wire form")


def _is_plain(value: Any, depth: int, packs: bool, scalars: frozenset[type] = SCALARS) -> bool:
    """Whether ``encode`` would return a copy of ``value``, a list or dict: only exact scalars,
    lists (shorter than ``PACK_MIN`` if ``packs``) and dicts of ``str`` keys without ``$``."""
    if depth > MAX_DEPTH:
        return False
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str or k[:1] == "$":
                return False
            if type(v) not in scalars and not _is_plain(v, depth + 1, packs):
                return False
        return True
    if type(value) is list:
        if packs and len(value) >= PACK_MIN:
            return False
        for v in value:
            if type(v) not in scalars and not _is_plain(v, depth + 1, packs):
                return False
        return True
    return False


def decode(
    data: Any,
    ref: Callable[[dict[str, Any]], Any] | None = None,
    buffer: Callable[[Any], Any] | None = None,
) -> Any:
    """The value encoded by ``encode``; ``ref`` turns ``{"$r": ...}`` objects into values and
    ``buffer`` the body of ``{"$m": ...}`` ones (``envknit._lane.receive``).

    Raises ``WireError`` (only, apart from ``buffer``'s own errors) for anything ``encode``
    cannot have produced, including nesting too deep to walk.
    """
    try:
        return _decode(data, ref, buffer)
    except RecursionError:
        raise WireError("value nested too deeply to decode") from None


def _decode(
    data: Any, ref: Callable[[dict[str, Any]], Any] | None, buffer: Callable[[Any], Any] | None
) -> Any:
    kind = type(data)
    if kind is list:
        return [v if type(v) in SCALARS else _decode(v, ref, buffer) for v in data]
    if kind is not dict:
        return data
    for key in data:
        if key[:1] == "$":
            return _decode_tagged(key, data, ref, buffer)
        break
    return {k: v if type(v) in SCALARS else _decode(v, ref, buffer) for k, v in data.items()}


def _decode_tagged(
    key: str,
    data: dict[str, Any],
    ref: Callable[[dict[str, Any]], Any] | None,
    buffer: Callable[[Any], Any] | None,
) -> Any:
    body = data[key]
    if len(data) != 1 and key != "$r":  # a handle carries its type name too
        raise WireError(f"tag {key!r} with other keys")
    if key == "$m" and buffer is not None:
        return buffer(body)
    if key == "$t" and isinstance(body, list):
        return tuple(_decode(v, ref, buffer) for v in body)
    if key == "$b" and isinstance(body, str):
        import base64

        try:
            return base64.b64decode(body.encode("ascii"), validate=True)
        except ValueError as exc:
            raise WireError(f"bad base64 in a bytes value: {exc}") from None
    if key == "$d" and isinstance(body, list):
        out = {}
        for item in body:
            if not isinstance(item, list) or len(item) != 2:
                raise WireError("bad item in a tagged dict")
            k = _decode(item[0], ref, buffer)
            try:
                out[k] = _decode(item[1], ref, buffer)
            except TypeError:
                raise WireError(f"unhashable dict key of type {type(k).__name__}") from None
        return out
    if key == "$r" and isinstance(body, int) and ref is not None:
        return ref(data)
    raise WireError(f"unknown or malformed tag {key!r}")


# JSON without the json package: importing json loads re and enum (and compiles regular
# expressions), as much CPU as the rest of a worker child's start-up. Both directions use the C
# accelerator that json itself runs on, set up as json.JSONEncoder(separators=(",", ":"),
# ensure_ascii=False) and json.JSONDecoder() set it up (json/encoder.py, json/decoder.py, the
# same on 3.10-3.13); only an error loads json.decoder, for JSONDecodeError.
# tests/test_worker_json.py holds the two to the same output. envknit runs on CPython only.
_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _ScanContext:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``: its default settings."""

    strict = True
    object_hook: Callable[[dict[str, Any]], Any] | None = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__

    def __init__(self, object_hook: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.object_hook = object_hook


_SCAN = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]  # typeshed: any context


def _not_json(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_json(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)``."""
    # markers: a fresh dict per call, for the circular-reference check (as json does)
    encode = _json.make_encoder(
        {}, default or _not_json, _json.encode_basestring, None, ":", ",", False, False, True
    )
    return "".join(encode(value, 0))


def from_json(text: str, object_hook: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """``json.loads(text, object_hook=object_hook)``; ``ValueError`` for what is not one JSON
    value."""
    scan = _SCAN if object_hook is None else _json.make_scanner(
        _ScanContext(object_hook)  # type: ignore[arg-type]
    )
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"Expecting value: char {exc.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return value


# Frames: one encoder made once, without the circular-reference bookkeeping (its markers):
# messages are built by ``encode``, a fresh tree without cycles (one would still end in
# RecursionError).
_FRAME_ENCODE = _json.make_encoder(
    None, _not_json, _json.encode_basestring, None, ":", ",", False, False, True
)


def is_tagged(payload: bytes) -> bool:
    """Whether ``payload`` may hold a tagged value. Without one, ``decode`` would return the
    loaded message unchanged, so a reader may skip that walk. The encoder never escapes ``$``;
    a peer that did would only get its tag read as plain data, never as a tag."""
    return b'"$' in payload


def dumps(message: Any) -> bytes:
    """A message (already encoded) as frame payload bytes.

    ``NotPlain`` for what JSON cannot write: an int past CPython's int/str conversion limit
    (4,300 digits by default, 3.11+), or a value nested too deeply for the encoder.
    """
    try:
        return "".join(_FRAME_ENCODE(message, 0)).encode("utf-8")
    except (ValueError, RecursionError) as exc:
        raise NotPlain(f"value cannot be written as JSON: {exc}") from None


def loads(payload: bytes) -> Any:
    """A frame payload back to the encoded message."""
    try:
        text = payload.decode("utf-8")
        try:
            value, end = _SCAN(text, 0)  # the common case: exactly one value, nothing around
        except StopIteration:
            end = -1
        if end == len(text):
            return value
        return from_json(text)  # whitespace around it, extra data, or the error's message
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise WireError(f"frame is not valid JSON: {exc}") from None
    except RecursionError:
        raise WireError("frame nested too deeply to read") from None


def write_frame(fd: int, payload: bytes, limit: int, deadline: float | None = None) -> None:
    """Send one frame; ``FrameTooLarge`` (nothing sent) if ``payload`` is past ``limit``.

    ``fd`` may be non-blocking: then a frame the pipe cannot take at once waits for room until
    ``deadline`` (a ``time.monotonic()`` value; None waits for ever), else ``FrameTimeout``.
    A peer that stopped reading (stopped, hung) cannot block the sender past its deadline.
    """
    if len(payload) > limit:
        raise FrameTooLarge(len(payload), limit)
    data = _HEADER.pack(_MAGIC, len(payload)) + payload
    try:
        written = os.write(fd, data)
    except BlockingIOError:
        written = 0
    if written < len(data):  # a large frame: the pipe takes it in pieces
        view = memoryview(data)[written:]
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        while view:
            if deadline is None:
                poll.poll()
            else:
                left = deadline - time.monotonic()
                if left <= 0 or not poll.poll(max(1, int(left * 1000) + 1)):
                    if time.monotonic() >= deadline:
                        raise FrameTimeout("the other side took no data before the deadline")
                    continue
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:  # room for less than the atomic minimum: wait again
                continue


class FrameReader:
    """Reads frames from a pipe file descriptor (which it makes non-blocking).

    ``read(deadline)`` waits for a frame's first byte until ``deadline`` (None: for ever);
    from then on the rest of the frame must arrive within ``frame_timeout`` seconds (and
    before ``deadline``), else ``FrameStalled``: a peer that wrote half a frame, or stray
    bytes that happen to parse as a header, cannot hang the reader.

    Before it sleeps, a reader polls for up to ``spin`` seconds, giving its core away between
    polls (see ``SPIN``); the budget adapts to how long frames have been taking to come.
    """

    def __init__(
        self, fd: int, limit: int, frame_timeout: float = DEFAULT_FRAME_TIMEOUT, spin: float = SPIN
    ) -> None:
        self.fd = fd
        self.limit = limit
        self.frame_timeout = frame_timeout
        #: the longest this reader polls before it sleeps (0: never); ``budget`` adapts below it
        self.spin = spin
        self.budget = spin
        self._calm = 0.0  # until then (perf_counter) reads sleep at once: see _STOLEN
        self._buf = bytearray()
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        os.set_blocking(fd, False)

    def _wait(self, deadline: float, frame_deadline: float | None) -> bool:
        """Wait for data until ``deadline``; False if none came. Raises when it has passed."""
        left = deadline - time.monotonic()
        if left > 0 and self._poll.poll(max(1, int(left * 1000) + 1)):
            return True
        if time.monotonic() < deadline:
            return False
        if frame_deadline is not None and deadline >= frame_deadline:
            raise FrameStalled(
                f"a frame started but the rest of it did not arrive within "
                f"{self.frame_timeout:g} s"
            )
        raise FrameTimeout("no reply before the deadline")

    def _fill(self, need: int, deadline: float, frame_deadline: float | None) -> None:
        if frame_deadline is not None and frame_deadline < deadline:
            deadline = frame_deadline
        while len(self._buf) < need:
            try:
                chunk = os.read(self.fd, max(_READ_CHUNK, need - len(self._buf)))
            except BlockingIOError:
                self._wait(deadline, frame_deadline)
                continue
            if not chunk:
                raise PeerClosed("the other side closed the pipe")
            self._buf += chunk

    def _first(self, deadline: float | None) -> bytes:
        """The first bytes that arrive, by ``deadline``: polled for, then slept for."""
        fd = self.fd
        budget = self.budget
        clock = time.perf_counter
        start = clock()
        if start < self._calm:
            budget = -1.0  # sleep at once, and leave the budget as it is
        elif budget > 0:
            # A peer on this core gets it now, and has usually answered when we are back; one
            # on another core answers while we poll, without the cost of waking us (a
            # cross-core wake-up is most of a small round trip on a VM).
            pause = os.sched_yield
            ready = self._poll.poll
            before, end = start, start + budget
            pause()
            now = clock()
            first = True  # the first look is a read: on one core the answer is usually there
            while True:
                if now - before > _STOLEN:
                    # The yield lost this core for a while: to another process (which would
                    # get it again, a slice per yield, while a sleeper is woken ahead of it),
                    # or to a peer here with a long call (polling is no use then). Sleep at
                    # once for a while.
                    self._calm = now + _BACK_OFF
                    budget = -1.0
                    break
                if first or ready(0):
                    try:
                        return os.read(fd, _READ_CHUNK)
                    except BlockingIOError:
                        pass
                if now > end:
                    break
                first = False
                before = now
                pause()
                now = clock()
        while True:  # sleep until data comes
            if deadline is None:
                self._poll.poll()
            elif not self._wait(deadline, None):
                continue
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                continue
            break
        if budget >= 0 and self.spin:
            # Like the kernel's guest halt-polling: a wait that ended soon after the longest
            # spin (a sleeper's wake-up included) would have been caught by it (grow); a longer
            # one makes spinning waste (shrink, down to sleeping at once, from where short
            # waits grow it back).
            if clock() - start <= 2 * self.spin:
                self.budget = min(self.spin, max(budget * 2, self.spin / 8))
            else:
                self.budget = budget / 2 if budget > self.spin / 8 else 0.0
        return chunk

    def _header(self, data: bytes | bytearray) -> int:
        """The payload size the header at the start of ``data`` announces, once checked."""
        magic, size = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise WireError(f"not a frame: it starts with {bytes(data[:8])!r}")
        if size > self.limit:
            raise FrameTooLarge(size, self.limit)
        return int(size)

    def read(self, deadline: float | None = None) -> bytes:
        """The next frame's payload; ``deadline`` is a ``time.monotonic()`` value."""
        if not self._buf:
            chunk = self._first(deadline)
            if not chunk:
                raise PeerClosed("the other side closed the pipe")
            if len(chunk) >= _HEADER.size:
                # The common case, one whole small frame per read: no buffer bookkeeping.
                size = self._header(chunk)
                if len(chunk) == _HEADER.size + size:
                    return chunk[_HEADER.size :]
            self._buf += chunk
        if not _MAGIC.startswith(bytes(self._buf[: len(_MAGIC)])):
            raise WireError(f"not a frame: it starts with {bytes(self._buf[:8])!r}")
        # The frame has started: bounded from here on, whatever ``deadline`` says.
        frame_deadline = time.monotonic() + self.frame_timeout
        if deadline is None or frame_deadline < deadline:
            deadline = frame_deadline
        self._fill(_HEADER.size, deadline, frame_deadline)
        size = self._header(self._buf)
        self._fill(_HEADER.size + size, deadline, frame_deadline)
        payload = bytes(self._buf[_HEADER.size : _HEADER.size + size])
        del self._buf[: _HEADER.size + size]
        return payload
