"""The binary lane: exact round trips of buffers and arrays, private files, cleanup after kills."""

from __future__ import annotations

import array
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envknit import _lane as L

try:  # imported at collection: numpy cannot be imported twice in one process
    import numpy as np
except ImportError:  # pragma: no cover - the test extra installs it
    np = None

needs_numpy = pytest.mark.skipif(np is None, reason="numpy is not installed in this venv")
LANE = Path(L.__file__).resolve()
BIG = L.INLINE_MAX + 1


@pytest.fixture(autouse=True)
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A prefix of this test's own, so that other tests' files never count as leftovers."""
    value = "ektest" + os.urandom(6).hex()
    monkeypatch.setenv("ENVKNIT_LANE_PREFIX", value)
    yield value
    assert leftovers(value) == []


def leftovers(pfx: str) -> list[str]:
    return sorted(n for n in os.listdir(L.directory()) if n.startswith(pfx + "-"))


def round_trip(value: Any) -> tuple[Any, dict[str, Any]]:
    box = L.Outbox()
    desc = box.describe(value)
    wire = json.loads(json.dumps(desc))  # the descriptor is plain JSON
    try:
        return L.receive(wire[L.TAG]), desc[L.TAG]
    finally:
        box.discard()


@pytest.mark.parametrize("size", [0, 1, 1000, BIG, 3 * 1024 * 1024 + 7])
def test_bytes_and_bytearray_round_trip_exactly(size: int) -> None:
    data = os.urandom(size)
    got, meta = round_trip(data)
    assert type(got) is bytes and got == data
    assert ("seg" in meta) == (size > L.INLINE_MAX)
    got, _ = round_trip(bytearray(data))
    assert type(got) is bytearray and got == data


@pytest.mark.parametrize("code", ["b", "B", "h", "i", "l", "q", "Q", "f", "d"])
def test_array_array_round_trips_with_its_typecode(code: str) -> None:
    for n in (0, 3, BIG):
        value = array.array(code, [i % 100 for i in range(n)])
        got, _ = round_trip(value)
        assert type(got) is array.array and got.typecode == code and got == value


def test_memoryviews_keep_format_shape_and_readonly() -> None:
    base = array.array("i", range(4 * 3000))
    view = memoryview(base).cast("B").cast("i", [4, 3000])
    got, meta = round_trip(view)
    assert isinstance(got, memoryview) and "seg" in meta
    assert (got.format, got.shape, got.readonly) == ("i", (4, 3000), False)
    assert got.tolist() == view.tolist()
    ro, _ = round_trip(memoryview(bytes(range(200)) * 300))
    assert ro.readonly and ro.tobytes() == bytes(range(200)) * 300
    strided = memoryview(bytes(range(256)) * 400)[::3]  # non-contiguous: sent in C order
    got, _ = round_trip(strided)
    assert got.tobytes() == strided.tobytes()
    empty, _ = round_trip(memoryview(b""))
    assert empty.tobytes() == b""


def test_a_file_is_private_and_gone_once_received(prefix: str) -> None:
    box = L.Outbox()
    desc = box.describe(b"x" * BIG)[L.TAG]
    path = Path(L.directory(), desc["seg"])
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    assert desc["seg"].startswith(f"{prefix}-{os.getuid()}-{os.getpid()}-")
    assert L.receive(desc) == b"x" * BIG
    assert not path.exists()  # the receiver unlinked it
    with pytest.raises(L.LaneError, match="is gone"):
        L.receive(desc)
    box.discard()  # nothing left to do, and no error


def test_discard_removes_what_the_receiver_never_took(prefix: str) -> None:
    box = L.Outbox()
    box.describe(b"a" * BIG)
    box.describe(bytearray(b"b" * BIG))
    assert len(leftovers(prefix)) == 2
    box.discard()
    assert leftovers(prefix) == []


def test_hostile_descriptors_are_refused(prefix: str) -> None:
    with pytest.raises(L.LaneError, match="bad buffer file name"):
        L.receive({"kind": "bytes", "n": 4, "seg": "../../etc/passwd"})
    with pytest.raises(L.LaneError, match="bad buffer descriptor"):
        L.receive({"kind": "pickle", "n": 4})
    with pytest.raises(L.LaneError, match="bad buffer size"):
        L.receive({"kind": "bytes", "n": -1})
    # One of our own names, but readable by others: not a file the lane made.
    name = f"{prefix}-{os.getuid()}-{os.getpid()}-999-{'0' * 16}"
    path = Path(L.directory(), name)
    path.write_bytes(b"1234")
    path.chmod(0o644)
    try:
        with pytest.raises(L.LaneError, match="not a private file"):
            L.receive({"kind": "bytes", "n": 4, "seg": name})
    finally:
        path.unlink()


def test_the_limit_counts_every_buffer_of_a_message() -> None:
    box = L.Outbox(BIG + 10)
    box.describe(b"x" * BIG)
    with pytest.raises(L.LaneTooLarge) as info:
        box.describe(b"y" * 20)
    assert (info.value.size, info.value.limit) == (BIG + 20, BIG + 10)
    box.discard()


def test_non_buffers_are_not_buffers() -> None:
    assert L.is_buffer(b"") and L.is_buffer(bytearray()) and L.is_buffer(memoryview(b""))
    assert L.is_buffer(array.array("d"))
    for value in ("s", 1, 2.0, [b""], (b"",), {"a": b""}, None, object()):
        assert not L.is_buffer(value)
    if np is not None:
        assert L.is_buffer(np.zeros(3))
        assert not L.is_buffer(np.float64(1.0)) and not L.is_buffer(np.int64(1))
        assert not L.is_buffer(np.ma.masked_array([1, 2]))  # a subclass would lose its mask


DTYPES = ["<f8", "<f4", "<f2", "<i8", "<i4", ">i4", "|i1", "<u2", "|u1", "|b1", "<c16",
          "<M8[ns]", "<m8[s]", "<U3", "|S5"]


def _sample(dtype: str, shape: tuple[int, ...]) -> Any:
    assert np is not None
    n = int(np.prod(shape))
    raw = np.arange(n) % 7
    if dtype.endswith("U3") or dtype.endswith("S5"):
        return raw.astype(dtype).reshape(shape)
    return raw.astype(dtype).reshape(shape)


def _same(got: Any, want: Any) -> None:
    assert type(got) is np.ndarray  # type: ignore[union-attr]
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()  # bit-exact, NaN and -0.0 included
    assert got.flags.c_contiguous


@needs_numpy
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (5,), (40, 30), (3, 4, 500)])
def test_numpy_arrays_round_trip_with_dtype_and_shape(dtype: str, shape: tuple[int, ...]) -> None:
    value = _sample(dtype, shape)
    got, meta = round_trip(value)
    _same(got, value)
    assert meta["kind"] == "ndarray" and meta["shape"] == list(shape)
    assert got.flags.writeable


@needs_numpy
@pytest.mark.parametrize("make", [
    lambda a: a[::2], lambda a: a.T, lambda a: a.copy(order="F"), lambda a: a[:, 1:3],
    lambda a: a[::-1, ::3],
])
def test_non_contiguous_arrays_arrive_contiguous_with_the_same_values(make: Any) -> None:
    for rows in (4, 2000):  # inline and through a file
        value = make(np.arange(rows * 7, dtype="<f8").reshape(rows, 7) * 0.5)
        assert not value.flags.c_contiguous
        got, _ = round_trip(value)
        _same(got, np.ascontiguousarray(value))


@needs_numpy
def test_special_floats_structured_dtypes_and_readonly_survive() -> None:
    value = np.array([np.nan, -0.0, np.inf, -np.inf, 1e-310] * 2000)
    got, _ = round_trip(value)
    _same(got, value)
    dt = np.dtype([("x", "<f8"), ("tag", "S3"), ("xy", "<i2", (2,))])
    rec = np.zeros(5000, dtype=dt)
    rec["x"] = np.arange(5000)
    rec["tag"] = b"abc"
    got, _ = round_trip(rec)
    _same(got, rec)
    frozen = np.arange(10000.0)
    frozen.flags.writeable = False
    got, _ = round_trip(frozen)
    assert not got.flags.writeable and got.tobytes() == frozen.tobytes()
    with pytest.raises(TypeError, match="dtype=object"):
        L.Outbox().describe(np.array([object()]))


@needs_numpy
def test_a_received_array_wraps_the_mapping_without_a_copy() -> None:
    value = np.arange(100000, dtype="<f8")
    got, _ = round_trip(value)
    base = got
    while isinstance(base, np.ndarray):
        base = base.base
    base = base.obj if isinstance(base, memoryview) else base
    assert type(base).__name__ == "mmap"  # np.frombuffer over the mapped file
    got[0] = 42.0  # writable, and private to the receiver
    assert value[0] == 0.0


@needs_numpy
def test_without_numpy_an_array_arrives_as_a_typed_memoryview(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(L, "_numpy_module", lambda: None)
    value = np.arange(12000, dtype=np.float64).reshape(3, 4000)
    got, _ = round_trip(value)
    assert isinstance(got, memoryview)
    assert (got.format, got.shape) == ("d", (3, 4000))
    assert got.tolist() == value.tolist()
    odd, _ = round_trip(np.zeros(3, dtype="<c16"))  # no memoryview format: plain bytes
    assert (odd.format, odd.nbytes) == ("B", 48)
    # numpy on the other side wraps it without a copy.
    monkeypatch.undo()
    again = np.asarray(got)
    _same(again, value)
    assert np.shares_memory(again, np.frombuffer(got, dtype="<f8"))


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter that loads the lane by path, as a worker does."""
    prelude = textwrap.dedent(f"""\
        import importlib.util, json, os, sys
        spec = importlib.util.spec_from_file_location("_lane", {str(LANE)!r})
        L = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(L)
        """)
    return subprocess.run(
        [sys.executable, "-I", "-c", prelude + textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_buffers_cross_between_processes_both_ways(prefix: str) -> None:
    box = L.Outbox()
    sent = box.describe(bytes(range(256)) * 1000)
    proc = _run(
        """
        data = L.receive(json.loads(sys.argv[1])["$m"])
        box = L.Outbox()
        print(json.dumps(box.describe(bytearray(data[::-1]))))
        """,
        json.dumps(sent),
    )
    box.discard()
    assert proc.returncode == 0 and proc.stderr == ""
    back = L.receive(json.loads(proc.stdout)[L.TAG])
    assert back == (bytes(range(256)) * 1000)[::-1]


def test_files_of_a_killed_process_are_swept_at_the_next_start(prefix: str) -> None:
    proc = _run(
        """
        box = L.Outbox()
        print(box.describe(b"z" * 100000)["$m"]["seg"], flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    assert proc.returncode == -signal.SIGKILL
    name = proc.stdout.strip()
    assert leftovers(prefix) == [name]
    # The next process to use the lane removes it (its maker is gone).
    proc = _run(
        """
        box = L.Outbox()
        box.describe(b"q" * 100000)
        box.discard()
        print(os.listdir(L.directory()).count(sys.argv[1]))
        """,
        name,
    )
    assert (proc.returncode, proc.stderr, proc.stdout.strip()) == (0, "", "0")
    assert leftovers(prefix) == []


def test_sweep_leaves_files_of_live_processes(prefix: str) -> None:
    box = L.Outbox()
    desc = box.describe(b"k" * BIG)[L.TAG]
    assert L.sweep() == []  # made by this (live) process
    assert leftovers(prefix) == [desc["seg"]]
    assert L.sweep(pid=os.getpid()) == [desc["seg"]]  # what the host does for a dead worker
    assert leftovers(prefix) == []
    box.discard()


def test_a_bad_prefix_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVKNIT_LANE_PREFIX", "../x")
    with pytest.raises(L.LaneError, match="ENVKNIT_LANE_PREFIX"):
        L.Outbox().describe(b"x" * BIG)


def test_plain_json_keeps_json_semantics_and_leaves_buffers_in_place() -> None:
    data = b"x" * 10
    value = {"t": (1, 2), 3: [data, {"$m": 1}], "f": 1.5}
    out = L.plain_json(value)
    assert out == {"t": [1, 2], "3": [data, {"$m": 1}], "f": 1.5}
    assert out["3"][0] is data
    assert L.plain_json([1, "a", None]) == [1, "a", None]
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        L.plain_json({"s": {1}})


def test_json_text_moves_buffers_and_nothing_else(prefix: str) -> None:
    text = L.JsonText("$k-" + os.urandom(4).hex())
    box = L.Outbox()
    payload = {"a": b"q" * BIG, "b": [bytearray(b"r"), (1, 2)], "$m": {"kind": "bytes", "n": 1}}
    wire = text.dumps(payload, box)
    assert len(leftovers(prefix)) == 1
    got = text.loads(wire)
    box.discard()
    assert got == {"a": b"q" * BIG, "b": [bytearray(b"r"), [1, 2]],
                   "$m": {"kind": "bytes", "n": 1}}  # a user's look-alike stays a dict
    assert text.loads('{"x": [1, 2]}') == {"x": [1, 2]}
    with pytest.raises(TypeError, match="Object of type object"):
        text.dumps([object()], box)


def test_the_default_limit_is_raisable_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert L.Outbox().limit == L.DEFAULT_LIMIT == 4 * 1024**3
    monkeypatch.setenv("ENVKNIT_MAX_BUFFER_BYTES", str(64 * 1024**3))
    assert L.Outbox().limit == 64 * 1024**3
    monkeypatch.setenv("ENVKNIT_MAX_BUFFER_BYTES", "lots")
    with pytest.raises(L.LaneError, match="ENVKNIT_MAX_BUFFER_BYTES must be a number"):
        L.Outbox().describe(b"x")


@pytest.mark.parametrize("value", [
    [i * 0.25 for i in range(5000)] + [float("nan"), -0.0, float("inf")],
    [*range(-3000, 3000), 2**63 - 1, -(2**63)],
    [0.5] * L.NUMBERS_MIN,
])
def test_long_number_lists_travel_packed_and_come_back_exact(value: list[Any]) -> None:
    box = L.Outbox()
    desc = box.numbers(value)
    assert desc is not None
    assert desc[L.TAG]["kind"] == ("floats" if type(value[0]) is float else "list")
    got = L.receive(json.loads(json.dumps(desc))[L.TAG])
    box.discard()
    assert [type(v) for v in got] == [type(v) for v in value]
    assert repr(got) == repr(value)  # bit-exact: NaN, -0.0 and all


@pytest.mark.parametrize("value", [
    [0.5] * (L.NUMBERS_MIN - 1),  # short: JSON is cheaper
    [0.5] * 2000 + [1],  # mixed types keep their types through JSON
    [1] * 2000 + [True],
    [1] * 2000 + [2**64],  # past 64 bits
    ["a"] * 2000,
    [0.5] * 2000 + [False],
    [0.5] * 1500 + [type("F", (float,), {})(2.0)] + [0.5] * 600,  # a float subclass
    [0.5] * 1500 + [[0.5, 0.5]],
    [0.5] * 1500 + ["a"] + [0.5] * 999,  # the layout's length cannot tell
    [0.5] * 1500 + ["abcd"] + [0.5] * 999,  # 9 bytes like a float: the length cannot tell
    [0.5] * 1500 + [(0.5,)] + [0.5] * 999,
    [0.5] * 1500 + [None],
])
def test_other_lists_are_not_packed(value: list[Any]) -> None:
    assert L.Outbox().numbers(value) is None


def test_checking_a_list_runs_no_code_of_its_items() -> None:
    class Loud:
        def __reduce__(self) -> Any:
            raise AssertionError("reduced")

        __reduce_ex__ = __getstate__ = __reduce__

    assert L.Outbox().numbers([0.5] * 1500 + [Loud()]) is None


def test_discard_since_a_checkpoint_keeps_what_came_before(prefix: str) -> None:
    box = L.Outbox()
    first = box.describe(b"a" * BIG)[L.TAG]
    mark = box.checkpoint()
    box.describe(b"b" * BIG)
    box.discard(mark)
    assert leftovers(prefix) == [first["seg"]] and box.total == BIG
    assert L.receive(first) == b"a" * BIG
    box.discard()
    assert box.total == 0 and box.names == []
