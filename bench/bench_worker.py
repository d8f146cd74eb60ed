#!/usr/bin/env python3
"""Worker benchmarks: proxy round trip vs a raw framed-JSON echo and multiprocessing.

    python bench/bench_worker.py            # or: python bench/run.py --only bench_worker

Every figure is the median of many timed repetitions, printed with its ratio to a baseline
measured in the same run:

a proxy call with a small JSON argument (``mod.echo({...})``) against the floor: a child that
echoes length-prefixed JSON over the same kind of pipes (``os.pipe`` + ``pass_fds``), and
against ``multiprocessing`` (spawn) ``Pipe`` + pickle. A new worker's time to its first result
is a start-up figure: bench/bench_startup.py measures it against a clean ``python -c pass``
(this script runs in the development venv, whose editable install slows every start-up).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CALLS = 6000
ROUNDS = 6
ARG = {"op": "add", "values": [1, 2, 3], "tag": "small"}

RAW_ECHO = r"""
import json, os, select, struct, sys, time
r, w, spin = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
H = struct.Struct(">I")
poll = select.poll()
poll.register(r, select.POLLIN)

def wait():  # the worker's spin-then-block (envknit/_worker/_protocol.py), when spin > 0
    end = time.perf_counter() + spin
    while time.perf_counter() < end:
        os.sched_yield()
        if poll.poll(0):
            return
    poll.poll()

buf = b""
while True:
    while len(buf) < 4:
        if spin:
            wait()
        chunk = os.read(r, 65536)
        if not chunk:
            sys.exit(0)
        buf += chunk
    (n,) = H.unpack_from(buf)
    while len(buf) < 4 + n:
        buf += os.read(r, 65536)
    payload, buf = buf[4:4 + n], buf[4 + n:]
    out = json.dumps({"ok": json.loads(payload)}).encode()
    os.write(w, H.pack(len(out)) + out)
"""
#: How long the spinning raw floor polls before it sleeps: the worker's own default.
SPIN = 50e-6


def time_calls(func: Callable[[], Any], n: int, out: list[int]) -> None:
    """Append the nanoseconds of ``n`` calls of ``func`` to ``out`` (after a short warm-up)."""
    for _ in range(50):
        func()
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        func()
        out.append(clock() - t0)


def cpu_ns(pid: int) -> int:
    """Nanoseconds ``pid`` (its main thread) has run on a CPU (``/proc/PID/schedstat``)."""
    with open(f"/proc/{pid}/schedstat", "rb") as fh:
        return int(fh.read().split()[0])


def raw_echo(spin: float = 0.0) -> tuple[Callable[[], Any], Callable[[], None], int]:
    """The floor: framed JSON over two ``os.pipe``s, blocking reads (``spin`` > 0: both sides
    poll that long, yielding the core, before they sleep, as the worker does)."""
    host_r, child_w = os.pipe()
    child_r, host_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", RAW_ECHO, str(child_r), str(child_w), str(spin)],
        pass_fds=(child_r, child_w),
    )
    os.close(child_r)
    os.close(child_w)
    header = struct.Struct(">I")
    poll = select.poll()
    poll.register(host_r, select.POLLIN)

    def wait() -> None:
        end = time.perf_counter() + spin
        while time.perf_counter() < end:
            os.sched_yield()
            if poll.poll(0):
                return
        poll.poll()

    def call() -> Any:
        data = json.dumps(ARG).encode()
        os.write(host_w, header.pack(len(data)) + data)
        if spin:
            wait()
        buf = os.read(host_r, 65536)
        while len(buf) < 4 or len(buf) < 4 + header.unpack_from(buf)[0]:
            buf += os.read(host_r, 65536)
        return json.loads(buf[4:])["ok"]

    def close() -> None:
        os.close(host_w)
        proc.wait()
        os.close(host_r)

    assert call() == ARG
    return call, close, proc.pid


def _mp_echo(conn: Connection) -> None:
    while True:
        try:
            conn.send(conn.recv())
        except EOFError:
            return


def mp_pipe() -> tuple[Callable[[], Any], Callable[[], None], int]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_mp_echo, args=(child,))
    proc.start()
    child.close()

    def call() -> Any:
        parent.send(ARG)
        return parent.recv()

    def close() -> None:
        parent.close()
        proc.join(10)

    assert call() == ARG
    assert proc.pid is not None
    return call, close, proc.pid


def placements() -> list[tuple[str, int, int]]:
    """(label, host CPU, child CPU): every contender runs under the same placement.

    Left to the scheduler, a ping-pong between two processes lands on one core or on two, and
    the two differ by about 4x here (a cross-core wake-up costs ~40 us on this machine), which
    made unpinned runs compare a same-core floor with a cross-core proxy call, or the reverse.
    """
    cpus = sorted(os.sched_getaffinity(0))
    same = [("same core", cpus[0], cpus[0])]
    return same + ([("two cores", cpus[0], cpus[1])] if len(cpus) > 1 else [])


CONTENDERS = ("proxy", "raw", "raw_spin", "mp")


def round_trips(host_cpu: int, child_cpu: int) -> dict[str, tuple[float, float]]:
    """Each contender's median round trip and its CPU time (host + child) per call, in
    microseconds, all pinned as given."""
    from envknit import shutdown_workers, worker
    from envknit._worker._pool import live_workers

    os.sched_setaffinity(0, {host_cpu})
    me = os.getpid()
    samples: dict[str, list[int]] = {name: [] for name in CONTENDERS}
    cpu: dict[str, int] = dict.fromkeys(CONTENDERS, 0)
    for _ in range(ROUNDS):
        shutdown_workers()
        raw_call, raw_close, raw_pid = raw_echo()
        spin_call, spin_close, spin_pid = raw_echo(SPIN)
        mp_call, mp_close, mp_pid = mp_pipe()
        with worker("benchpkg", "1.0") as mod:
            assert mod.echo(ARG) == ARG
            (proxy_pid,) = (w.pid for w in live_workers() if w.pid)
            for pid in (raw_pid, spin_pid, mp_pid, proxy_pid):
                os.sched_setaffinity(pid, {child_cpu})
            calls = {
                "proxy": (lambda: mod.echo(ARG), proxy_pid),
                "raw": (raw_call, raw_pid),
                "raw_spin": (spin_call, spin_pid),
                "mp": (mp_call, mp_pid),
            }
            for _ in range(5):
                for name, (func, pid) in calls.items():
                    before = cpu_ns(me) + cpu_ns(pid)
                    time_calls(func, CALLS // ROUNDS // 5, samples[name])
                    cpu[name] += cpu_ns(me) + cpu_ns(pid) - before
        raw_close()
        spin_close()
        mp_close()
    calls_made = ROUNDS * 5 * (CALLS // ROUNDS // 5 + 50)
    return {
        name: (statistics.median(samples[name]) / 1000, cpu[name] / calls_made / 1000)
        for name in CONTENDERS
    }


def main() -> int:
    from envknit import shutdown_workers
    from tests._builders import make_store_entry, package_files, write_lock

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["ENVKNIT_HOME"] = str(home)
        os.chdir(tmp)
        files = package_files("benchpkg", "1.0", {"core.py": "def echo(x):\n    return x\n"})
        files["benchpkg/__init__.py"] = "__version__ = '1.0'\nfrom .core import echo\n"
        write_lock(
            Path(tmp) / "envknit.lock.yaml",
            {"default": [make_store_entry(home, "benchpkg", "1.0", files)]},
        )

        # Fresh processes every round, the contenders interleaved in small batches, each
        # placement measured separately (see placements()).
        allowed = os.sched_getaffinity(0)
        figures = {label: round_trips(h, c) for label, h, c in placements()}
        os.sched_setaffinity(0, allowed)

        shutdown_workers()

    print(f"Python {sys.version.split()[0]}; {CALLS} calls in {ROUNDS} rounds of fresh processes;"
          " medians; CPU = host + child CPU time per call")
    labels = {
        "raw": "raw framed JSON echo, os.pipe",
        "raw_spin": "  same, polling like the worker",
        "mp": "multiprocessing Pipe + pickle",
    }
    for label, f in figures.items():
        proxy, proxy_cpu = f["proxy"]
        print(f"[{label}] proxy call mod.echo(small dict)")
        print(f"  {'envknit proxy':32s}{proxy:7.1f} us  CPU {proxy_cpu:5.1f} us")
        for name, text in labels.items():
            wall, used = f[name]
            print(f"  {text:32s}{wall:7.1f} us  CPU {used:5.1f} us   proxy/this = "
                  f"{proxy / wall:.2f}x  (CPU {proxy_cpu / used:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
