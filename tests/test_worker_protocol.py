"""The worker wire format: tagged JSON round trips, frame limits, timeouts, remote error classes."""

from __future__ import annotations

import builtins
import contextlib
import os
import struct
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from envknit._worker import _protocol as P
from envknit._worker._errors import remote_error
from envknit.errors import RemoteError, WorkerRemoteError


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):  # already closed by the test
            os.close(fd)


def header(size: int) -> bytes:
    """A well-formed frame header announcing ``size`` payload bytes."""
    return struct.pack(">4sI", b"EKw\x01", size)


VALUES: list[Any] = [
    None, True, False, 0, -(2**70), 1.5, float("inf"), "", "héllo ✓\x00",
    [], {}, [1, [2, [3]]], {"a": {"b": [None]}},
    b"", b"\x00\xff" * 3, (), (1, "two", (3.0,)), {1: "int key", (1, 2): "tuple key"},
    {"$r": "looks like a tag"}, {"$t": [1]}, [b"x", (b"y",)],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_round_trip_keeps_value_and_type(value: Any) -> None:
    back = P.decode(P.loads(P.dumps(P.encode(value))))
    assert back == value
    assert type(back) is type(value)


def test_subclasses_of_plain_types_travel_as_the_plain_type() -> None:
    class MyFloat(float):
        pass

    class MyStr(str):
        pass

    back = P.decode(P.loads(P.dumps(P.encode([MyFloat(2.5), MyStr("s")]))))
    assert back == [2.5, "s"]
    assert [type(v) for v in back] == [float, str]


def test_other_types_have_no_wire_form() -> None:
    with pytest.raises(P.NotPlain, match=r"builtins\.set"):
        P.encode({1, 2})
    with pytest.raises(P.NotPlain):
        P.encode([object()])
    assert P.encode({1}, lambda v: {"$r": 7}) == {"$r": 7}


def test_too_deep_nesting_is_refused() -> None:
    deep: list[Any] = []
    for _ in range(P.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(P.NotPlain, match="deeper"):
        P.encode(deep)


@pytest.mark.parametrize(
    "payload",
    [b'{"$x": 1}', b'{"$b": "***"}', b'{"$d": [[1]]}', b'{"$d": [[[1], 2]]}', b'{"$r": 1}'],
)
def test_unknown_or_malformed_tags_are_wire_errors(payload: bytes) -> None:
    with pytest.raises(P.WireError):
        P.decode(P.loads(payload))


def test_bad_json_is_a_wire_error() -> None:
    with pytest.raises(P.WireError, match="not valid JSON"):
        P.loads(b"\xff{")


def test_frames_round_trip_through_a_pipe(pipe: tuple[int, int]) -> None:
    r, w = pipe
    reader = P.FrameReader(r, 1024)
    P.write_frame(w, b"first", 1024)
    P.write_frame(w, b"", 1024)
    P.write_frame(w, b"x" * 1024, 1024)
    assert reader.read() == b"first"
    assert reader.read() == b""
    assert reader.read() == b"x" * 1024


def test_oversized_frame_is_refused_before_sending(pipe: tuple[int, int]) -> None:
    r, w = pipe
    with pytest.raises(P.FrameTooLarge) as info:
        P.write_frame(w, b"x" * 101, 100)
    assert (info.value.size, info.value.limit) == (101, 100)
    os.set_blocking(r, False)
    with pytest.raises(BlockingIOError):
        os.read(r, 1)  # nothing was written


@pytest.mark.parametrize("value", [{"$r": 1}, ["$x"], b"raw", (1,), {1: 2}, {"a": {"$t": []}}])
def test_payloads_with_tags_or_dollar_strings_are_flagged(value: Any) -> None:
    assert P.is_tagged(P.dumps(P.encode(value)))


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None, True]}, ["x", "y$"], "plain", 3])
def test_plain_payloads_decode_to_what_was_loaded(value: Any) -> None:
    payload = P.dumps(P.encode(value))
    assert not P.is_tagged(payload)
    assert P.decode(P.loads(payload)) == P.loads(payload) == value


def test_bytes_past_the_limit_are_refused_before_their_base64_is_built() -> None:
    with pytest.raises(P.FrameTooLarge) as info:
        P.encode({"nested": [(1, b"x" * 300)]}, limit=100)
    assert (info.value.size, info.value.limit) == (400, 100)
    assert P.encode(b"x" * 75, limit=100) == {"$b": "eHh4" * 25}  # exactly 100: fits
    assert P.encode(b"x" * 300) == {"$b": "eHh4" * 100}  # no limit given: none applied


def test_oversized_length_is_refused_before_reading_the_payload(pipe: tuple[int, int]) -> None:
    r, w = pipe
    # A header claiming ~4 GiB with no payload behind it: refused from the header alone.
    os.write(w, header(0xFFFFFFF0))
    with pytest.raises(P.FrameTooLarge, match="4294967280 bytes"):
        P.FrameReader(r, P.DEFAULT_MAX_MESSAGE_SIZE).read(time.monotonic() + 5)


def test_reader_times_out_and_reports_closed_peer(pipe: tuple[int, int]) -> None:
    r, w = pipe
    reader = P.FrameReader(r, 100)
    os.write(w, header(10) + b"12345")  # half a frame
    with pytest.raises(P.FrameTimeout):
        reader.read(time.monotonic() + 0.2)  # the call's deadline comes before the frame's
    os.close(w)
    with pytest.raises(P.PeerClosed):
        reader.read()


@pytest.mark.parametrize("spin", [0.0, P.SPIN, 0.05])
def test_reader_polls_then_sleeps_whatever_its_spin(pipe: tuple[int, int], spin: float) -> None:
    r, w = pipe
    reader = P.FrameReader(r, 100, spin=spin)
    with pytest.raises(P.FrameTimeout):  # nothing came: the deadline holds, spin or not
        reader.read(time.monotonic() + 0.1)
    for _ in range(3):  # the budget adapts between reads; the frames are the same
        P.write_frame(w, b"frame", 100)
        assert reader.read() == b"frame"
        assert 0.0 <= reader.budget <= spin
    P.write_frame(w, b"late", 100)
    assert reader.read(time.monotonic() + 5) == b"late"
    os.close(w)
    with pytest.raises(P.PeerClosed):
        reader.read()


@pytest.mark.timeout(120)
def test_a_worker_without_spin_answers() -> None:
    """``SPIN = 0``: both sides sleep in ``poll()`` at once."""
    from envknit._worker import _pool

    worker = _pool.Worker(_pool.WorkerSpec(python=sys.executable, paths=(), label="no-spin"))
    old = _pool.SPIN
    _pool.SPIN = 0.0
    try:
        assert worker.request("stats", {}, timeout=30)["pid"] == worker.pid
        assert worker._reader is not None and worker._reader.budget == 0.0
    finally:
        _pool.SPIN = old
        worker.close()


BUILTIN_EXCEPTIONS = sorted(
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), Exception)
    and "Group" not in name
)


@pytest.mark.parametrize("name", BUILTIN_EXCEPTIONS)
def test_remote_builtin_errors_are_also_the_builtin(name: str) -> None:
    report = {"type": name, "message": "boom", "traceback": "TB-TEXT", "builtin": name}
    err = remote_error(report)
    with pytest.raises(getattr(builtins, name)) as info:
        raise err
    caught = info.value
    assert isinstance(caught, WorkerRemoteError)
    assert isinstance(caught, RemoteError)
    assert (caught.remote_type, caught.remote_message) == (name, "boom")
    assert f"{name}: boom (raised in a worker process)" in str(caught)
    assert "TB-TEXT" in str(caught)
    assert type(remote_error(report)) is type(err)  # one class per builtin, cached


def test_unknown_builtin_names_give_the_plain_error() -> None:
    for builtin in (None, "NoSuchError", "print", "ExceptionGroup", "SystemExit"):
        err = remote_error({"type": "x.Y", "message": "m", "traceback": "", "builtin": builtin})
        assert type(err) is WorkerRemoteError


def test_forwarded_operators_are_one_list_for_proxy_and_worker() -> None:
    import builtins
    import operator

    from envknit import WorkerProxy

    for name in (*P.BINARY_OPERATORS, *P.UNARY_OPERATORS, *P.COMPARISONS):
        assert callable(getattr(operator, name)), name  # what the worker calls
    for name in P.CONVERSIONS:
        assert isinstance(getattr(builtins, name), type), name
    dunders = {n for n in vars(WorkerProxy) if n.startswith("__") and n.endswith("__")}
    for name in P.BINARY_OPERATORS:
        assert {f"__{name.rstrip('_')}__", f"__r{name.rstrip('_')}__"} <= dunders
    for name in (*P.UNARY_OPERATORS, *P.COMPARISONS, *P.CONVERSIONS):
        assert f"__{name}__" in dunders
    assert "__eq__" not in dunders and "__hash__" not in dunders  # identity: proxies hash
