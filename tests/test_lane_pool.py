"""The lane's pooled files: reused while warm, never under a view the receiver holds, bounded."""

from __future__ import annotations

import array
import gc
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envknit import _lane as L, _lane_pool

pytestmark = pytest.mark.timeout(120)
LANE = Path(L.__file__).resolve()
BIG = L.INLINE_MAX * 4


@pytest.fixture(autouse=True)
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    value = "ektest" + os.urandom(6).hex()
    monkeypatch.setenv("ENVKNIT_LANE_PREFIX", value)
    monkeypatch.delenv("ENVKNIT_LANE_POOL_BYTES", raising=False)
    yield value
    gc.collect()
    assert leftovers(value) == []


def leftovers(pfx: str) -> list[str]:
    return sorted(n for n in os.listdir(L.directory()) if n.startswith(pfx + "-"))


@pytest.fixture
def box() -> Iterator[L.Outbox]:
    outbox = L.Outbox(pool=L.Pool())
    yield outbox
    outbox.discard()
    assert outbox.pool is not None
    outbox.pool.close()


def send(box: L.Outbox, value: Any) -> tuple[Any, dict[str, Any]]:
    """Describe ``value``, receive it as the other side would, end the message."""
    meta = json.loads(json.dumps(box.describe(value)))[L.TAG]
    try:
        return L.receive(meta), meta
    finally:
        box.discard()


def test_a_copied_out_buffer_gives_its_segment_back_at_once(box: L.Outbox) -> None:
    first, meta = send(box, b"a" * BIG)
    again, meta_again = send(box, b"b" * BIG)
    assert (first, again) == (b"a" * BIG, b"b" * BIG)
    assert type(first) is bytes and meta["pool"] == 1
    assert meta_again["seg"] == meta["seg"]  # the same warm file, written again
    assert len(leftovers(os.environ["ENVKNIT_LANE_PREFIX"])) == 1


def test_a_view_the_receiver_holds_is_never_overwritten(box: L.Outbox) -> None:
    data = array.array("d", range(BIG))
    view, meta = send(box, memoryview(data))
    part = view[10:20]  # a slice shares the mapping; the view it came from may go
    del view
    gc.collect()
    for i in range(5):
        _, other = send(box, memoryview(array.array("d", [-1.0 * i]) * BIG))
        assert other["seg"] != meta["seg"]
    assert part.tolist() == list(map(float, range(10, 20)))
    part.release()
    del part
    gc.collect()
    # Gone: its file is free again and is the one the next buffer of its size goes to.
    assert send(box, memoryview(data))[1]["seg"] == meta["seg"]


def test_a_numpy_array_over_a_pooled_file_keeps_it_until_its_last_view_goes(
    box: L.Outbox,
) -> None:
    np = pytest.importorskip("numpy")
    got, meta = send(box, np.arange(BIG, dtype="f8"))
    tail = got[-3:]
    del got
    gc.collect()
    _, other = send(box, np.zeros(BIG))
    assert other["seg"] != meta["seg"] and tail.tolist() == [BIG - 3.0, BIG - 2.0, BIG - 1.0]
    del tail
    gc.collect()
    assert send(box, np.zeros(BIG))[1]["seg"] == meta["seg"]


def test_an_untaken_segment_is_retired_not_reused(box: L.Outbox, prefix: str) -> None:
    meta = box.describe(b"x" * BIG)[L.TAG]
    box.discard()  # the receiver never took it: it may yet, so it is never written again
    assert leftovers(prefix) == [] and box.pool is not None and box.pool.total == 0
    with pytest.raises(L.LaneError, match="is gone"):
        L.receive(meta)


def test_the_pool_is_bounded(prefix: str) -> None:
    pool = L.Pool(max_bytes=4 * BIG)
    box = L.Outbox(pool=pool)
    try:
        over, meta = send(box, b"o" * (5 * BIG))
        assert over == b"o" * (5 * BIG) and "pool" not in meta  # a one-off file, as before
        held = [send(box, memoryview(bytearray(BIG)))[0] for _ in range(6)]
        assert pool.total <= 4 * BIG
        assert "pool" not in send(box, b"z" * BIG)[1]  # full: a one-off file
        del held
        gc.collect()
        assert send(box, b"z" * BIG)[1]["pool"] == 1
        assert pool.total <= 4 * BIG
    finally:
        pool.close()


def test_pooling_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, box: L.Outbox) -> None:
    monkeypatch.setenv("ENVKNIT_LANE_POOL_BYTES", "0")
    assert "pool" not in send(L.Outbox(pool=L.Pool()), b"x" * BIG)[1]
    monkeypatch.setenv("ENVKNIT_LANE_POOL_BYTES", "lots")
    with pytest.raises(L.LaneError, match="ENVKNIT_LANE_POOL_BYTES must be a number"):
        L.Outbox(pool=L.Pool()).describe(b"x" * BIG)


def test_closing_the_pool_removes_its_files_and_views_survive(prefix: str) -> None:
    pool = L.Pool()
    box = L.Outbox(pool=pool)
    view, _ = send(box, memoryview(b"k" * BIG))
    assert len(leftovers(prefix)) == 1
    pool.close()
    assert leftovers(prefix) == []
    assert bytes(view) == b"k" * BIG


def test_files_are_private_and_page_aligned(box: L.Outbox, prefix: str) -> None:
    _, meta = send(box, b"p" * BIG)
    info = os.stat(Path(L.directory(), meta["seg"]))
    assert info.st_mode & 0o777 == 0o600 and info.st_size >= _lane_pool.HEADER + BIG
    assert _lane_pool.HEADER % 4096 == 0


def _run(code: str) -> subprocess.CompletedProcess[str]:
    prelude = textwrap.dedent(f"""\
        import importlib.util, gc, json, os, sys
        spec = importlib.util.spec_from_file_location("_lane", {str(LANE)!r})
        L = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(L)
        box = L.Outbox(pool=L.Pool())
        """)
    return subprocess.run(
        [sys.executable, "-I", "-c", prelude + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_a_process_that_exits_leaves_no_pooled_file(prefix: str) -> None:
    proc = _run("""
        kept = L.receive(box.describe(memoryview(b"e" * 200000))["$m"])
        print(len(os.listdir(L.directory())) > 0)
        """)
    assert (proc.returncode, proc.stderr, proc.stdout.strip()) == (0, "", "True")
    assert leftovers(prefix) == []


def test_pooled_files_of_a_killed_process_are_swept_at_the_next_start(prefix: str) -> None:
    proc = _run("""
        box.describe(b"z" * 100000)
        os.kill(os.getpid(), 9)
        """)
    assert proc.returncode == -signal.SIGKILL and len(leftovers(prefix)) == 1
    proc = _run("""
        L.receive(box.describe(b"q" * 100000)["$m"])
        """)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert leftovers(prefix) == []


def test_a_forked_child_never_removes_its_parents_files(box: L.Outbox, prefix: str) -> None:
    _, meta = send(box, b"f" * BIG)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        assert box.pool is not None
        box.pool.close()
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert leftovers(prefix) == [meta["seg"]]


def test_the_float_layout_is_marshals(monkeypatch: pytest.MonkeyPatch) -> None:
    # The check relies on this exact layout: if a CPython ever changes it, lists still travel
    # (as JSON) and this test says why they stopped being packed.
    packed = _lane_pool.pack_floats([0.5] * 2500)
    assert packed is not None and len(packed) == 9 * 2500
    assert bytes(packed[:9]) == b"g" + struct.pack("<d", 0.5)
    assert _lane_pool.unpack_floats(bytes(packed), 2500) == [0.5] * 2500
    with pytest.raises(ValueError, match="cannot hold"):
        _lane_pool.unpack_floats(bytes(packed), 2501)
    with pytest.raises(L.LaneError, match="cannot hold"):
        L.receive({"kind": "floats", "n": 2, "count": 9, "b64": "AAA="})


@pytest.mark.parametrize("numpy_loaded", [True, False])
@pytest.mark.parametrize("count", [0, 1, 2047, 2048, 2049, 4096, 6000])
def test_floats_round_trip_bit_exact_at_every_batch_edge(
    count: int, numpy_loaded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read with numpy when it is loaded already (a strided view), else with struct batches.
    if numpy_loaded:
        pytest.importorskip("numpy")
    else:
        monkeypatch.delitem(sys.modules, "numpy", raising=False)
    nan_payload = struct.unpack("<d", b"\x01\0\0\0\0\0\xf8\x7f")[0]
    special = [float("nan"), -0.0, 0.0, float("inf"), float("-inf"), 5e-324, -2.2250738585072e-308,
               sys.float_info.max, -sys.float_info.min, nan_payload]
    value = [special[i % len(special)] if i % 3 else i / 7 for i in range(count)]
    packed = _lane_pool.pack_floats(value)
    assert packed is not None
    got = _lane_pool.unpack_floats(packed, count)
    assert type(got) is list and ("numpy" in sys.modules) is numpy_loaded
    assert [struct.pack("<d", v) for v in got] == [struct.pack("<d", v) for v in value]
    assert all(type(v) is float for v in got)


def test_the_same_float_object_many_times_packs() -> None:
    x = 0.1
    assert _lane_pool.pack_floats([x] * 3000) is not None  # no back references in the layout


def test_an_unusable_numpy_falls_back_to_struct(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    monkeypatch.setitem(sys.modules, "numpy", types.SimpleNamespace())
    packed = _lane_pool.pack_floats([0.25] * 3000)
    assert packed is not None and _lane_pool.unpack_floats(packed, 3000) == [0.25] * 3000
