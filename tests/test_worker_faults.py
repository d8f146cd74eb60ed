"""Worker protocol faults: tag look-alikes, corrupt or stalled frames, deep replies, dying pipes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import envknit
from envknit._worker import _pool, _protocol as P, fallback
from envknit.errors import ProtocolError

from ._worker_fixtures import make_demo, make_demo_project

pytestmark = pytest.mark.timeout(120)

#: JSON that looks like the wire's tags (and common JSON that uses ``$`` keys: JSON Schema,
#: MongoDB queries). Each must arrive exactly as it left, in either direction.
LOOKALIKES: list[Any] = [
    {"$t": [1, 2]},
    {"$b": "aGk="},
    {"$d": [["a", 1]]},
    {"$r": 1},
    [{"$r": 1}],
    {"$price": 5},
    {"$ref": "#/definitions/x"},
    {"$set": {"a": 1}, "$inc": {"n": 1}},
    {"a": {"$gt": 3}, "b": [{"$in": [1, 2]}]},
    {"$": "", "$$t": [1], "t$": 0},
    {"plain": 1, "$t": "second key"},
]


@pytest.fixture
def lock(envknit_home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "envknit.lock.yaml"
    make_demo(envknit_home, path)
    return path


# -- point 6: values that look like tags ------------------------------------------------------
def test_tag_lookalikes_round_trip_through_eval_json_call_and_proxies(lock: Path) -> None:
    envknit.configure_from_lock(lock)
    with envknit.worker("demo", "1.0") as mod:
        pid = mod.pid()
        for value in LOOKALIKES:
            assert fallback.eval_json(lock, "default", "result = v", {"v": value}, None) == value
            literal = f"result = {value!r}"  # built in the worker: only the result crosses
            assert fallback.eval_json(lock, "default", literal, {}, None) == value
            assert fallback.call(lock, "default", "demo:echo", [value], {}, None) == value
            assert mod.echo(value) == value
        assert mod.pid() == pid  # none of them was taken for a broken reply


def test_big_ints_round_trip_up_to_the_digit_limit(demo_project: Path) -> None:
    big = 10**4000 + 7  # under CPython's default int/str limit (4,300 digits)
    with envknit.worker("demo", "1.0") as mod:
        assert mod.echo([big, -big]) == [big, -big]
        huge = mod.decimal("1e5000")
        if sys.version_info >= (3, 11):  # the int/str digit limit arrived in 3.11
            with pytest.raises(TypeError, match="JSON"):
                int(huge)  # the worker cannot write it: a remote TypeError, the worker lives
            with pytest.raises(TypeError, match="JSON"):
                mod.echo(10**5000)  # refused before sending
        assert mod.echo(1) == 1


@pytest.fixture
def demo_project(envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_demo_project(envknit_home, tmp_path, monkeypatch)


# -- point 7: stray bytes, stalled frames, deep replies ---------------------------------------
WRITE_TO_PROTOCOL_PIPE = """
import gc, os, time
server = next(o for o in gc.get_objects() if type(o).__name__ == "Server")
os.write(server.write_fd, data.encode("latin-1"))
time.sleep(hold)
result = "finished"
"""


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x00\x00\x10\x00garbage", "not a frame"),
        (b"hello", "not a frame"),
        (b"EKw\x01\x00\x00\x10\x00garbage", "did not arrive within 0.5 s"),  # a header, then stall
        (b"EK", "did not arrive within 0.5 s"),  # half a header
    ],
)
def test_bytes_written_to_the_protocol_pipe_are_a_protocol_error(
    lock: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, match: str
) -> None:
    monkeypatch.setattr(_pool, "FRAME_TIMEOUT", 0.5)
    inputs = {"data": data.decode("latin-1"), "hold": 60}
    with pytest.raises(ProtocolError, match=match):  # timeout=None: no call deadline at all
        fallback.eval_json(lock, "default", WRITE_TO_PROTOCOL_PIPE, inputs, None)
    # the worker was stopped; the next call gets a new one and its own answer
    assert fallback.eval_json(lock, "default", "result = 1", {}, None) == 1


def test_the_protocol_pipes_are_out_of_the_way_of_user_code(lock: Path) -> None:
    code = "import gc\ns = next(o for o in gc.get_objects() if type(o).__name__ == 'Server')\n"
    code += "import os\nresult = [s.reader.fd, s.write_fd, os.get_inheritable(s.write_fd)]"
    read_fd, write_fd, inheritable = fallback.eval_json(lock, "default", code, {}, None)
    assert min(read_fd, write_fd) >= 512
    assert inheritable is False
    # the numbers the worker was started with are free again: user files get them
    code = "import os\nresult = os.open('/dev/null', os.O_RDONLY)"
    assert fallback.eval_json(lock, "default", code, {}, None) < 10


FAKE_WORKER = """\
#!{python}
import json, os, struct, sys, time

read_fd, write_fd = int(sys.argv[-2]), int(sys.argv[-1])
mode = os.environ["FAKE_MODE"]


def frame(payload):
    return b"EKw\\x01" + struct.pack(">I", len(payload)) + payload


def read_frame():
    head = os.read(read_fd, 8)
    size = struct.unpack(">I", head[4:])[0]
    body = b""
    while len(body) < size:
        body += os.read(read_fd, size - len(body))
    return json.loads(body)


read_frame()
os.write(write_fd, frame(json.dumps({{"protocol": {protocol}, "pid": os.getpid()}}).encode()))
request = read_frame()
if mode == "half-header":
    os.write(write_fd, b"EKw")
elif mode == "hello":
    os.write(write_fd, b"hello")
elif mode == "deep":
    depth = 100000
    body = b"[" * depth + b"]" * depth
    os.write(write_fd, frame(b'{{"i": %d, "ok": ' % request["i"] + body + b"}}"))
elif mode == "deep-tagged":
    depth = 400  # loads fine, but walking its tags recurses too deeply
    body = b'{{"$t": [' * depth + b"1" + b"]}}" * depth
    os.write(write_fd, frame(b'{{"i": %d, "ok": ' % request["i"] + body + b"}}"))
time.sleep(60)
"""


@pytest.fixture
def fake_worker(tmp_path: Path) -> Path:
    path = tmp_path / "fake-python"
    path.write_text(FAKE_WORKER.format(python=sys.executable, protocol=P.PROTOCOL_VERSION))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        ("half-header", "did not arrive within 0.5 s"),
        ("hello", "not a frame"),
        ("deep", "nested too deeply"),
        ("deep-tagged", "nested too deeply"),
    ],
)
def test_a_fake_worker_cannot_hang_or_crash_the_host(
    fake_worker: Path, monkeypatch: pytest.MonkeyPatch, mode: str, match: str
) -> None:
    monkeypatch.setattr(_pool, "FRAME_TIMEOUT", 0.5)
    monkeypatch.setenv("FAKE_MODE", mode)
    worker = _pool.Worker(_pool.WorkerSpec(python=str(fake_worker), paths=(), label="fake"))
    try:
        with pytest.raises(ProtocolError, match=match):
            worker.request("stats", {}, timeout=None)
        assert not worker.alive()
    finally:
        worker.close()


# -- point 10: a worker killed after a timeout leaves the host's stderr empty ------------------
def test_timeout_kill_writes_nothing_to_the_host_stderr(demo_project: Path) -> None:
    script = textwrap.dedent(
        """
        import envknit
        for _ in range(3):
            with envknit.worker("demo", "1.0", timeout=0.3) as mod:
                try:
                    mod.sleep(0.6)
                except envknit.EnvknitTimeoutError:
                    pass
                else:
                    raise AssertionError("no timeout")
        import time
        time.sleep(1)  # long enough for a killed worker to have written anything it would
        print("HOST-DONE")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    assert proc.stdout.endswith(b"HOST-DONE\n")


def test_a_worker_whose_host_hangs_up_mid_call_exits_quietly(lock: Path) -> None:
    # The worker side of the same fault: its reply meets a closed pipe. Driven by hand, so
    # that the host's own handling (which kills at once) cannot hide it.
    host_r, child_w = os.pipe()
    child_r, host_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(_pool.CHILD_SCRIPT), str(child_r), str(child_w)],
        pass_fds=(child_r, child_w), stderr=subprocess.PIPE,
    )
    os.close(child_r)
    os.close(child_w)
    try:
        P.write_frame(host_w, P.dumps({"protocol": P.PROTOCOL_VERSION, "path": []}), 1 << 20)
        reader = P.FrameReader(host_r, 1 << 20)
        assert P.loads(reader.read())["protocol"] == P.PROTOCOL_VERSION
        request = {"i": 1, "op": "eval_json", "code": "import time\ntime.sleep(0.5)\nresult = 1"}
        P.write_frame(host_w, P.dumps(request), 1 << 20)
    finally:
        os.close(host_r)  # the reply now has nowhere to go
        os.close(host_w)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert stderr == b""
