"""Property tests of the worker protocol: any bytes decode or are refused; JSON round-trips."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

import envknit
from envknit._worker import _pool, _protocol as P, fallback
from envknit.errors import EnvknitError

from ._builders import make_store_entry, package_files, write_lock
from ._helpers import gen2
from ._worker_fixtures import make_demo

pytestmark = pytest.mark.timeout(300)

#: Keys that look like the wire's tags or like common ``$``-keyed JSON, plus arbitrary ones.
KEYS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["$t", "$b", "$d", "$r", "$", "$$t", "$ref", "$set", "$gt", "type"]),
    st.sampled_from(["size", "limit", "builtin", "message", "traceback"]),  # report fields
    st.text(max_size=5).map(lambda s: "$" + s),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**4000), max_value=10**4000),  # under the int/str digit limit
    st.floats(allow_nan=False),  # NaN is JSON-able but never equal to itself
    st.text(max_size=20),
    st.sampled_from(["$t", "$b", "aGk=", '"$', "\x00", "✓", "\U0001f600"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)
    ),
    max_leaves=24,
)
SETTINGS = settings(
    max_examples=60,
    deadline=None,  # a worker round trip is a process hop: timing is not the property
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down, and dict keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)  # -0.0 is not 0.0
    return bool(a == b)


# -- the frame decoder ------------------------------------------------------------------------
def _frame(payload: bytes) -> bytes:
    return b"EKw\x01" + len(payload).to_bytes(4, "big") + payload


@st.composite
def reply_bytes(draw: st.DrawFn) -> bytes:
    """What a broken or hostile worker might send: random bytes, or a reply frame mutated."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=64))
    value = draw(JSON)
    reply = {"i": draw(st.sampled_from([1, 2, None, "1"])), "ok": P.encode(value)}
    if draw(st.booleans()):
        reply = {"i": 1, draw(st.sampled_from(["err", "big", "ok", "x"])): draw(JSON)}
    data = bytearray(_frame(P.dumps(reply)))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        if action == "flip" and where < len(data):
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[where:]
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif action == "length" and len(data) >= 8:
            data[4:8] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big")
    return bytes(data)


@SETTINGS
@given(st.lists(reply_bytes(), min_size=1, max_size=3).map(b"".join))
def test_the_frame_reader_yields_payloads_or_one_wire_error(data: bytes) -> None:
    """Bytes on a pipe, then end of file: frames come out, or WireError, nothing else."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        written = os.write(write_fd, data) if data else 0
        os.close(write_fd)
        reader = P.FrameReader(read_fd, 1 << 16, 0.2)
        started = time.monotonic()
        with pytest.raises(P.WireError):  # PeerClosed at the latest, once the bytes ran out
            for _ in range(written + 1):
                P.decode(P.loads(reader.read(time.monotonic() + 1)))
        assert time.monotonic() - started < 5
    finally:
        os.close(read_fd)


@SETTINGS
@given(reply_bytes())
@example(_frame(b'{"i":1,"big":{"size":"x","limit":1}}'))
@example(_frame(b'{"i":1,"big":{"size":1e400,"limit":[]}}'))
@example(_frame(b'{"i":1,"err":{"builtin":"BaseExceptionGroup","type":7}}'))
@example(_frame(b'{"i":1,"ok":{"$r":1,"type":"x"}}'))
@example(_frame(b'{"i":1,"ok":' + b"[" * 20_000 + b"]" * 20_000 + b"}"))
@example(b"\x00\x00\x10\x00garbage")
@example(b"hello")
@example(b"EKw\x01\x00\x00\x10\x00garbage")
def test_any_reply_bytes_decode_or_raise_one_envknit_error(data: bytes) -> None:
    """A worker object wired to pipes we control: whatever comes back is a value or an
    EnvknitError (ProtocolError, MessageTooLargeError, WorkerCrashedError, a remote error), in
    bounded time and never another exception type."""
    worker = _pool.Worker(_pool.WorkerSpec(python=sys.executable, paths=(), label="fake"), 1 << 16)
    reply_r, reply_w = os.pipe()
    request_r, request_w = os.pipe()

    def send() -> None:  # from a thread: the bytes may be more than a pipe holds
        with contextlib.suppress(BrokenPipeError):  # the host stopped reading: refused early
            os.write(reply_w, data)
        os.close(reply_w)  # the "worker" then exits: a short frame ends in PeerClosed

    sender = threading.Thread(target=send)
    sender.start()
    worker._reader = P.FrameReader(reply_r, worker.limit, 0.2)
    worker._wfd = request_w
    worker._next_id = 0  # the request gets id 1
    started = time.monotonic()
    try:
        worker.request_locked("stats", {}, timeout=None)
    except EnvknitError:
        pass
    finally:
        worker._stop()  # closes reply_r: a sender still writing gets EPIPE
        os.close(request_r)
        sender.join(10)
    assert time.monotonic() - started < 5


# -- round trips through real workers ---------------------------------------------------------
@pytest.fixture
def lock(envknit_home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "envknit.lock.yaml"
    make_demo(envknit_home, path)
    envknit.configure_from_lock(path)
    return path


def test_json_values_round_trip_exactly_through_a_worker(lock: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:  # pooled: one process for every example

        @SETTINGS
        @given(JSON)
        def round_trip(value: Any) -> None:
            assert same(mod.echo(value), value)  # argument and result of a proxy call
            assert same(mod.echo(value=value), value)  # as a keyword argument
            got = fallback.eval_json(lock, "default", "result = v", {"v": value}, None)
            assert same(got, value)
            assert same(fallback.call(lock, "default", "demo:echo", [value], {}, None), value)
            # built in the worker from text: only the result crosses
            code = f"import json\nresult = json.loads({json.dumps(value)!r})"
            assert same(fallback.eval_json(lock, "default", code, {}, None), value)

        round_trip()


CEXT_USER = {"native.py": "import _testsinglephase  # refused in an isolated sub-interpreter\n"}


@gen2
def test_json_values_round_trip_exactly_through_fallback_worker(
    envknit_home: Path, tmp_path: Path
) -> None:
    pkg = make_store_entry(
        envknit_home, "cext-user", "1.0.0", package_files("cext_user", "1.0.0", CEXT_USER)
    )
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})
    with envknit.SubInterpreterEnv("props", fallback="worker") as interp:
        interp.configure_from_lock(lock)
        where = interp.eval_json("import os, cext_user.native\nresult = os.getpid()")
        assert where != os.getpid()  # the C-extension refusal really routes to a worker

        @settings(SETTINGS, max_examples=40)
        @given(JSON)
        def round_trip(value: Any) -> None:
            direct = interp.eval_json("result = v", v=value)  # the sub-interpreter itself
            routed = interp.eval_json("import cext_user.native\nresult = v", v=value)  # worker
            assert same(direct, value)
            assert same(routed, value)

        round_trip()
