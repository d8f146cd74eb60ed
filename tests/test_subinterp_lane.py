"""Buffers in and out of sub-interpreters on the binary lane; fallback="worker" gives the same."""

from __future__ import annotations

import array
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import envknit
from envknit import _lane
from tests._builders import make_store_entry, package_files, write_lock
from tests._helpers import gen2

pytestmark = [gen2, pytest.mark.timeout(180)]

BIG = _lane.INLINE_MAX * 4

PRODUCE = (
    "import array\n"
    "result = {'b': x, 'rev': bytearray(x[::-1]), 'ints': array.array('i', range(n)),\n"
    "          'view': memoryview(array.array('d', [0.5] * n)).cast('B').cast('d', [2, n // 2]),\n"
    "          'small': b'ab', 'empty': b'', 'pair': (1, 'two')}\n"
)


@pytest.fixture(autouse=True)
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    value = "ektest" + os.urandom(6).hex()
    monkeypatch.setenv("ENVKNIT_LANE_PREFIX", value)
    yield value
    assert sorted(n for n in os.listdir(_lane.directory()) if n.startswith(value)) == []


def check_produced(got: dict[str, Any], data: bytes, n: int) -> None:
    assert type(got["b"]) is bytes and got["b"] == data
    assert type(got["rev"]) is bytearray and got["rev"] == data[::-1]
    assert type(got["ints"]) is array.array and got["ints"].tolist() == list(range(n))
    view = got["view"]
    assert isinstance(view, memoryview) and (view.format, view.shape) == ("d", (2, n // 2))
    assert view.tolist() == [[0.5] * (n // 2)] * 2
    assert (got["small"], got["empty"], got["pair"]) == (b"ab", b"", [1, "two"])


def test_eval_json_takes_and_returns_buffers() -> None:
    data = os.urandom(BIG)
    n = 20000
    with envknit.SubInterpreterEnv("lane") as interp:
        check_produced(interp.eval_json(PRODUCE, x=data, n=n), data, n)
        described = interp.eval_json(
            "result = [type(v).__name__ for v in (a, b, c, d)] + [c.format, list(c.shape)]",
            a=data, b=bytearray(b"xy"), c=memoryview(array.array("i", range(BIG))), d=b"",
        )
        assert described == ["bytes", "bytearray", "memoryview", "bytes", "i", [BIG]]
        # The same through a timed call (helper thread) and submit().
        assert interp.eval_json("result = x", x=data, timeout=30) == data
        assert interp.submit("result = x[::-1]", x=data).result(60) == data[::-1]
        assert interp.call("builtins:bytes", data) == data


def test_a_held_result_is_never_overwritten_by_later_calls(prefix: str) -> None:
    make = "import array\nresult = memoryview(array.array('d', [v]) * n)"
    with envknit.SubInterpreterEnv("lane") as interp:
        first = interp.eval_json(make, v=1.5, n=BIG)
        for i in range(4):
            assert interp.eval_json(make, v=float(i), n=BIG)[0] == i
            assert interp.eval_json("result = len(x)", x=memoryview(bytes([i]) * BIG)) == BIG
        assert first.tolist() == [1.5] * BIG
        assert 0 < len([n for n in os.listdir(_lane.directory()) if n.startswith(prefix)]) <= 4


def test_json_semantics_are_unchanged_around_buffers() -> None:
    with envknit.SubInterpreterEnv("lane") as interp:
        look_alike = {"$m": {"kind": "bytes", "n": 1, "seg": "x"}}
        assert interp.eval_json("result = v", v=look_alike) == look_alike
        assert interp.eval_json("result = (1, [2, (3,)])") == [1, [2, [3]]]
        with pytest.raises(envknit.SubInterpreterError, match="must be a JSON value"):
            interp.eval_json("result = {1, 2}")
        with pytest.raises(TypeError, match="not JSON serializable"):
            interp.eval_json("result = 1", v={1, 2})


def test_the_buffer_limit_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVKNIT_MAX_BUFFER_BYTES", str(BIG))
    with envknit.SubInterpreterEnv("lane") as interp:
        with pytest.raises(envknit.MessageTooLargeError, match="ENVKNIT_MAX_BUFFER_BYTES"):
            interp.eval_json("result = 1", x=b"x" * (BIG + 1))
        with pytest.raises(envknit.SubInterpreterError, match="ENVKNIT_MAX_BUFFER_BYTES"):
            interp.eval_json("result = b'x' * (n + 1)", n=BIG)
        assert interp.eval_json("result = len(x)", x=b"x" * BIG) == BIG


CEXT_USER = {"native.py": "import _testsinglephase  # refused in sub-interpreters\n"}


def test_fallback_to_a_worker_gives_the_same_values(envknit_home: Path, tmp_path: Path) -> None:
    pkg = make_store_entry(
        envknit_home, "cext-user", "1.0.0", package_files("cext_user", "1.0.0", CEXT_USER)
    )
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})
    data = os.urandom(BIG)
    n = 20000
    try:
        with envknit.SubInterpreterEnv("lane", fallback="worker") as interp:
            interp.configure_from_lock(lock)
            inside = interp.eval_json(PRODUCE, x=data, n=n)
            moved = interp.eval_json("import cext_user.native\n" + PRODUCE, x=data, n=n)
            check_produced(inside, data, n)
            check_produced(moved, data, n)
            assert {k: type(v) for k, v in inside.items()} == {
                k: type(v) for k, v in moved.items()
            }
    finally:
        envknit.shutdown_workers()


def test_a_fresh_process_using_the_lane_exits_cleanly(prefix: str) -> None:
    # 3.12.1 aborts at exit ("double free or corruption") when a sub-interpreter is the first
    # caller of a C function's keyword parser (base64, mmap: the lane's paths); the host
    # preparation must keep owning them.
    script = textwrap.dedent(
        """
        import array, envknit
        for name in ("a", "b"):
            with envknit.SubInterpreterEnv(name) as interp:
                assert interp.eval_json("result = b'q' * 10") == b"q" * 10
                got = interp.eval_json(
                    "import array\\nresult = [x, memoryview(array.array('d', [1.0] * 9000))]",
                    x=b"z" * 100000)
                assert got[0] == b"z" * 100000 and got[1].tolist() == [1.0] * 9000
        print("OK")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "OK\n")


def test_long_number_lists_keep_their_values_and_types() -> None:
    floats = [i * 0.1 for i in range(100_000)] + [float("inf"), -0.0]
    ints = [*range(5000), 2**70]  # past 64 bits: plain JSON, still exact
    with envknit.SubInterpreterEnv("lane") as interp:
        got = interp.eval_json("result = {'f': f, 'i': i, 'n': [f[:3], len(f)]}", f=floats, i=ints)
        assert repr(got["f"]) == repr(floats) and got["i"] == ints
        assert got["n"] == [floats[:3], len(floats)]
        assert interp.eval_json("result = [x * 0.5 for x in range(3000)]") == [
            x * 0.5 for x in range(3000)
        ]


def test_a_lane_failure_in_the_host_is_an_envknit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with envknit.SubInterpreterEnv("lane") as interp:
        monkeypatch.setenv("ENVKNIT_LANE_PREFIX", "bad/prefix")
        with pytest.raises(envknit.EnvknitError, match="cannot send a buffer"):
            interp.eval_json("result = 1", x=b"x" * BIG)


def test_a_call_that_never_started_leaves_no_lane_file(prefix: str) -> None:
    with envknit.SubInterpreterEnv("lane") as interp:
        with pytest.raises(envknit.EnvknitTimeoutError, match="C function"):
            interp.eval_json("import time\ntime.sleep(2.5)", timeout=0.1)
        with pytest.raises(envknit.EnvknitTimeoutError, match="did not start"):
            interp.eval_json("result = len(x)", x=b"x" * BIG, timeout=0.1)
        assert [n for n in os.listdir(_lane.directory()) if n.startswith(prefix)] == []
        assert interp.eval_json("result = len(x)", x=b"y" * BIG) == BIG
