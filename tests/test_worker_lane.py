"""Buffers between the host and workers on the binary lane: round trips, limits, cleanup."""

from __future__ import annotations

import array
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import envknit
from envknit import _lane
from envknit.errors import MessageTooLargeError, WorkerCrashedError

from ._builders import make_store_entry, package_files, write_lock

try:  # imported at collection: numpy cannot be imported twice in one process
    import numpy as np
except ImportError:  # pragma: no cover - the test extra installs it
    np = None

pytestmark = pytest.mark.timeout(120)
needs_numpy = pytest.mark.skipif(np is None, reason="numpy is not installed in this venv")

SOURCE = '''
import os
import signal
import sys
import time

held = {}


def echo(value):
    return value


def kinds(*values):
    out = []
    for v in values:
        view = v if hasattr(v, "dtype") else memoryview(v)  # numpy: datetimes have no buffer
        out.append([type(v).__module__ + "." + type(v).__qualname__, view.nbytes,
                    getattr(v, "dtype", None) and v.dtype.str, list(view.shape or ())])
    return out


def keep(value):
    held["v"] = value
    return None


def held_value():
    return held["v"]


def mixed(n):
    big = b"i" * n
    return [big, (big, object()), big]  # not plain as a whole: a proxy


def lane_file_then_die():
    lane = sys.modules["_envknit_worker_child"]._lane()  # loaded when a buffer first travels
    lane.Outbox().describe(b"x" * 100_000)
    os.kill(os.getpid(), signal.SIGKILL)


def lane_file_then_sleep(seconds):
    lane = sys.modules["_envknit_worker_child"]._lane()  # loaded when a buffer first travels
    box = lane.Outbox()
    box.describe(b"x" * 100_000)
    held["box"] = box
    time.sleep(seconds)
    return b"y" * 100_000
'''


@pytest.fixture(autouse=True)
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A lane prefix of this test's own (workers inherit it), checked for leftovers after."""
    value = "ektest" + os.urandom(6).hex()
    monkeypatch.setenv("ENVKNIT_LANE_PREFIX", value)
    yield value
    envknit.shutdown_workers()
    assert leftovers(value) == []


def leftovers(pfx: str) -> list[str]:
    return sorted(n for n in os.listdir(_lane.directory()) if n.startswith(pfx + "-"))


@pytest.fixture
def project(envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``lanetest==1.0`` locked in ./envknit.lock.yaml; its worker sees this venv's numpy."""
    monkeypatch.chdir(tmp_path)
    files: dict[str, str | bytes] = dict(package_files("lanetest", "1.0", {"core.py": SOURCE}))
    files["lanetest/__init__.py"] = "__version__ = '1.0'\nfrom .core import *\n"
    if np is not None:
        # Only numpy (and its bundled libraries) from this venv, through a .pth file.
        only = tmp_path / "numpy-only"
        only.mkdir()
        site = Path(np.__file__).resolve().parent.parent
        for entry in site.iterdir():
            if entry.name == "numpy" or entry.name.startswith("numpy.libs"):
                (only / entry.name).symlink_to(entry)
        files["lanetest_numpy.pth"] = f"{only}\n"
    lock = tmp_path / "envknit.lock.yaml"
    write_lock(lock, {"default": [make_store_entry(envknit_home, "lanetest", "1.0", files)]})
    return lock


BIG = _lane.INLINE_MAX * 4


def test_bytes_and_buffers_cross_to_the_worker_as_themselves(project: Path) -> None:
    with envknit.worker("lanetest", "1.0") as mod:
        data = os.urandom(BIG)
        assert mod.echo(data) == data  # bytes come back by value, both ways on the lane
        assert mod.echo(b"") == b"" and mod.echo(b"ab") == b"ab"
        got = mod.kinds(bytearray(data), memoryview(data), array.array("d", [1.5] * 9000))
        assert got == [
            ["builtins.bytearray", BIG, None, [BIG]],
            ["builtins.memoryview", BIG, None, [BIG]],
            ["array.array", 72000, None, [9000]],
        ]
        # A worker's buffer other than bytes stays there (a proxy), as before; its data comes
        # by value on request.
        mod.keep(array.array("i", range(20000)))
        remote = mod.held_value()
        assert isinstance(remote, envknit.WorkerProxy)
        assert remote.tolist()[:3] == [0, 1, 2]


@needs_numpy
def test_a_held_result_is_never_overwritten_by_later_calls(project: Path, prefix: str) -> None:
    with envknit.worker("lanetest", "1.0") as mod:
        first = np.asarray(mod.echo(np.arange(BIG, dtype="f8")))
        view = memoryview(mod.echo(b"a" * BIG))  # bytes: copied out, its file reused at once
        for i in range(4):  # later results of the same size, both ways
            assert float(np.asarray(mod.echo(np.full(BIG, -i, dtype="f8")))[0]) == -i
        assert first.tolist() == list(map(float, range(BIG))) and bytes(view) == b"a" * BIG
        files = len(leftovers(prefix))
        assert 0 < files <= 8  # warm files, reused: not one per transfer (12 here)
    envknit.shutdown_workers()
    assert leftovers(prefix) == []  # the worker and its host removed their pools
    assert first[-1] == BIG - 1  # and what the host holds keeps its memory


def test_json_values_keep_their_semantics(project: Path) -> None:
    with envknit.worker("lanetest", "1.0") as mod:
        value = {"a": (1, b"x" * BIG, [2.5, None]), 3: "three", "$m": {"kind": "bytes"}}
        assert mod.echo(value) == value


def test_eval_json_takes_and_returns_buffers_by_value(project: Path) -> None:
    from envknit._worker import fallback

    data = os.urandom(BIG)
    code = "result = {'same': x, 'rev': bytearray(x[::-1]), 'mv': memoryview(x)[:8]}"
    got = fallback.eval_json(project, "default", code, {"x": data}, None)
    assert got["same"] == data and type(got["same"]) is bytes
    assert got["rev"] == data[::-1] and type(got["rev"]) is bytearray
    assert bytes(got["mv"]) == data[:8]


@needs_numpy
@pytest.mark.parametrize("dtype", ["<f8", "<i4", "|u1", "|b1", "<c16", "<M8[ns]", ">f4"])
@pytest.mark.parametrize("shape", [(0,), (7,), (300, 40), (2, 0, 3), ()])
def test_numpy_arrays_round_trip_both_ways(project: Path, dtype: str, shape: Any) -> None:
    assert np is not None
    value = (np.arange(int(np.prod(shape))) % 11).astype(dtype).reshape(shape)
    with envknit.worker("lanetest", "1.0") as mod:
        [[kind, nbytes, seen_dtype, seen_shape]] = mod.kinds(value)
        assert (kind, nbytes, seen_shape) == ("numpy.ndarray", value.nbytes, list(shape))
        assert seen_dtype == value.dtype.str
        back = np.asarray(mod.echo(value))  # to the worker, then its array back by value
        assert back.dtype == value.dtype and back.shape == value.shape
        assert back.tobytes() == value.tobytes()


@needs_numpy
def test_non_contiguous_arrays_and_arrays_inside_containers(project: Path) -> None:
    assert np is not None
    base = np.arange(120000, dtype="<f8").reshape(300, 400)
    with envknit.worker("lanetest", "1.0") as mod:
        for view in (base[::2], base.T, base[:, 5:9], np.asfortranarray(base)):
            back = np.asarray(mod.echo(view))
            assert back.flags.c_contiguous and np.array_equal(back, view)
        from envknit._worker import fallback

        got = fallback.eval_json(
            Path("envknit.lock.yaml"), "default",
            "result = {'t': (x * 2, x.sum()), 'n': len(x)}", {"x": base[:, 0]}, None,
        )
        assert np.array_equal(got["t"][0], base[:, 0] * 2) and got["n"] == 300
        assert type(got["t"][0]) is np.ndarray  # this process's numpy, wrapping the mapping


@needs_numpy
def test_numpy_asarray_of_a_proxy_fetches_the_data_safely(project: Path) -> None:
    assert np is not None
    with envknit.worker("lanetest", "1.0") as mod:
        mod.keep(np.arange(50000, dtype="<i8").reshape(100, 500))
        remote = mod.held_value()
        assert isinstance(remote, envknit.WorkerProxy)
        # Never the worker's __array_interface__ (a pointer into another process).
        with pytest.raises(AttributeError):
            remote.__array_interface__  # noqa: B018
        local = np.asarray(remote)
        assert local.shape == (100, 500) and int(local[99, 499]) == 49999
        assert np.asarray(remote, dtype="<f4").dtype == np.dtype("<f4")
        mod.keep(array.array("h", [1, -2, 3]))
        assert np.asarray(mod.held_value()).tolist() == [1, -2, 3]


def test_the_buffer_limit_refuses_both_ways_and_the_worker_survives(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVKNIT_MAX_BUFFER_BYTES", str(BIG))
    with envknit.worker("lanetest", "1.0") as mod:
        pid = envknit_pid(mod)
        with pytest.raises(MessageTooLargeError, match="ENVKNIT_MAX_BUFFER_BYTES") as sent:
            mod.echo(b"x" * (BIG + 1))
        assert (sent.value.size, sent.value.limit, sent.value.buffers) == (BIG + 1, BIG, True)
        from envknit._worker import fallback

        with pytest.raises(MessageTooLargeError, match="ENVKNIT_MAX_BUFFER_BYTES"):
            fallback.eval_json(project, "default", "result = b'x' * (n + 1)", {"n": BIG}, None)
        assert mod.echo(b"x" * BIG) == b"x" * BIG
        assert envknit_pid(mod) == pid


def envknit_pid(mod: Any) -> int:
    from envknit._worker._proxy import worker_stats

    return int(worker_stats(mod)["pid"])


def test_lane_files_of_a_crashed_worker_are_removed(project: Path, prefix: str) -> None:
    with envknit.worker("lanetest", "1.0") as mod:
        with pytest.raises(WorkerCrashedError):
            mod.lane_file_then_die()
        assert leftovers(prefix) == []
        assert mod.echo(b"z" * BIG) == b"z" * BIG  # a new worker, the lane works


def test_lane_files_of_a_worker_killed_at_its_timeout_are_removed(
    project: Path, prefix: str
) -> None:
    with envknit.worker("lanetest", "1.0", timeout=1.0) as mod:
        with pytest.raises(TimeoutError):
            mod.lane_file_then_sleep(30)
        assert leftovers(prefix) == []


def test_nothing_is_left_after_the_host_is_killed_mid_call(project: Path, prefix: str) -> None:
    script = textwrap.dedent(
        """
        import os, signal, threading
        import envknit
        from envknit._worker._proxy import worker_stats

        with envknit.worker("lanetest", "1.0") as mod:
            print(worker_stats(mod)["pid"], flush=True)
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGKILL)).start()
            mod.lane_file_then_sleep(1.5)  # the host dies during this call
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == -signal.SIGKILL
    worker_pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker_pid)  # it noticed that the host was gone and exited
    # What the worker made inside the call outlives it until the next start sweeps it.
    assert len(leftovers(prefix)) <= 1
    fresh = subprocess.run(
        [sys.executable, "-c", "from envknit import _lane; _lane.sweep()"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (fresh.returncode, fresh.stderr) == (0, "")
    assert leftovers(prefix) == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not reaped by its dead parent yet) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_iteration_batches_mix_bytes_and_proxies(project: Path) -> None:
    with envknit.worker("lanetest", "1.0") as mod:
        big = b"i" * BIG
        items = list(mod.mixed(BIG))  # one reply: bytes, a proxy, bytes
        assert items[0] == big and items[2] == big
        assert isinstance(items[1], envknit.WorkerProxy)


def test_a_lane_failure_in_the_host_is_a_worker_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with envknit.worker("lanetest", "1.0") as mod:
        assert mod.echo(1) == 1
        monkeypatch.setenv("ENVKNIT_LANE_PREFIX", "bad/prefix")
        with pytest.raises(envknit.WorkerError, match="cannot send a buffer"):
            mod.echo(b"x" * BIG)
