#!/usr/bin/env python3
"""Buffers across boundaries: the binary lane against memcpy, multiprocessing pickle and shm.

    python bench/bench_lane.py [--quick]     # or: python bench/run.py --only bench_lane

Side by side in one run, medians of repeated transfers, every figure with its ratio to memcpy
(``bytes(bytearray(n))``, the physical limit) and to ``multiprocessing`` Pipe + pickle:

* 10 MB and 100 MB, as a float64 ndarray and as bytes, worker -> host and host -> worker:
  an envknit worker (``np.asarray(proxy)`` / a bytes result; an argument), a
  ``multiprocessing`` (spawn) child over ``Pipe`` + pickle, and over
  ``multiprocessing.shared_memory`` (the receiver maps the block: a zero-copy view);
* the same out of and into a sub-interpreter (3.12+: ``eval_json`` returning a memoryview of an
  ``array('d')`` / bytes; taking one as an input);
* a list of 100,000 floats, worker -> host and sub-interpreter -> host, against
  multiprocessing pickle (of the same list, worker -> host);
* a memcpy into warm (already touched) pages: the floor of a transfer through memory that is
  mapped already, which is what the lane's pooled files make of a repeated transfer.

Needs numpy in the running venv (the test extra has it); the worker reaches the same numpy
through a ``.pth`` file in its one store entry.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024
FLOATS = 100_000

WORKER_MODULE = '''
import numpy as np

store = {}


def make(kind, n):
    store["v"] = np.arange(n // 8, dtype="<f8") if kind == "array" else bytes(n)
    store["l"] = [i * 0.5 for i in range(100_000)]
    return None


def get():
    return store["v"]


def get_list():
    return store["l"]


def size(value):
    return memoryview(value).nbytes
'''


def interleaved_ms(
    funcs: list[Callable[[], Any]], reps: int, cpu: list[float] | None = None
) -> list[float]:
    """Median milliseconds of each function, the functions taking turns (so that the load of
    a shared machine hits them alike), in a rotating order; ``cpu`` gets the median CPU
    milliseconds of this process (user + sys) for each."""
    for func in funcs:
        func()  # warm-up (first mapping, imports)
    samples: list[list[float]] = [[] for _ in funcs]
    cpus: list[list[float]] = [[] for _ in funcs]
    pairs = list(zip(funcs, samples, cpus, strict=True))
    for rep in range(reps):
        # A rotating order: what one contender leaves behind (garbage that makes malloc hand
        # memory back to the system, cold caches) falls on a different neighbour each round.
        start = rep % len(pairs)
        for func, out, used in pairs[start:] + pairs[:start]:
            t0, c0 = time.perf_counter(), time.process_time()
            func()
            out.append(time.perf_counter() - t0)
            used.append(time.process_time() - c0)
    if cpu is not None:
        cpu[:] = [statistics.median(c) * 1000 for c in cpus]
    return [statistics.median(s) * 1000 for s in samples]


# -- multiprocessing contender ----------------------------------------------------------------
def _make(kind: str, n: int) -> Any:
    return np.arange(n // 8, dtype="<f8") if kind == "array" else bytes(n)


def _mp_child(conn: Connection) -> None:
    value: Any = None
    floats = [i * 0.5 for i in range(FLOATS)]
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        op = msg[0]
        if op == "make":
            value = _make(msg[1], msg[2])
            conn.send(None)
        elif op == "get":
            conn.send(value)
        elif op == "list":
            conn.send(floats)
        elif op == "put":
            conn.send(memoryview(msg[1]).nbytes)
        elif op == "shm_get":
            data = memoryview(value).cast("B")
            block = shared_memory.SharedMemory(create=True, size=len(data))
            block.buf[: len(data)] = data
            conn.send(block.name)
            block.close()
        elif op == "shm_put":
            block = shared_memory.SharedMemory(msg[1])
            view = np.ndarray((msg[2] // 8,), "<f8", block.buf) if msg[3] else block.buf
            conn.send(len(view) * (8 if msg[3] else 1))
            del view
            block.close()


class MpChild:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_mp_child, args=(child,))
        self.proc.start()
        child.close()

    def ask(self, *msg: Any) -> Any:
        self.conn.send(msg)
        return self.conn.recv()

    def shm_get(self, kind: str, n: int) -> Any:
        name = self.ask("shm_get")
        block = shared_memory.SharedMemory(name)
        view = np.ndarray((n // 8,), "<f8", block.buf) if kind == "array" else block.buf[:n]
        out = (view.nbytes, view[-1])
        del view
        block.close()
        block.unlink()
        return out

    def shm_put(self, value: Any) -> Any:
        data = memoryview(value).cast("B")
        block = shared_memory.SharedMemory(create=True, size=len(data))
        block.buf[: len(data)] = data
        got = self.ask("shm_put", block.name, len(data), isinstance(value, np.ndarray))
        block.close()
        block.unlink()
        return got

    def close(self) -> None:
        self.conn.close()
        self.proc.join(10)


# -- the run ----------------------------------------------------------------------------------
Row = tuple[str, str, float, float | None]  # (group, label, wall ms, host CPU ms or None)


def run(quick: bool, lists_only: bool = False) -> list[Row]:
    import envknit
    from tests._builders import make_store_entry, package_files, write_lock

    rows: list[Row] = []
    sizes = [] if lists_only else [10 * MB] if quick else [10 * MB, 100 * MB]
    tmp = tempfile.TemporaryDirectory()
    home = Path(tmp.name) / "home"
    os.environ["ENVKNIT_HOME"] = str(home)
    os.chdir(tmp.name)
    # The worker's environment: the bench package, and this venv's numpy through a .pth file.
    numpy_dir = Path(tmp.name) / "numpy-only"
    numpy_dir.mkdir()
    site = Path(np.__file__).resolve().parent.parent
    for entry in site.iterdir():
        if entry.name == "numpy" or entry.name.startswith("numpy.libs"):
            (numpy_dir / entry.name).symlink_to(entry)
    files: dict[str, str | bytes] = dict(package_files("lanebench", "1.0", {}))
    files["lanebench/__init__.py"] = "__version__ = '1.0'\n" + WORKER_MODULE
    files["lanebench_numpy.pth"] = f"{numpy_dir}\n"
    write_lock(
        Path(tmp.name) / "envknit.lock.yaml",
        {"default": [make_store_entry(home, "lanebench", "1.0", files)]},
    )
    mp = MpChild()
    gen2 = sys.version_info >= (3, 12)
    try:
        with envknit.worker("lanebench", "1.0") as mod:
            for n in sizes:
                reps = 15 if n <= 10 * MB else 7
                size = f"{n // MB} MB"
                memcpy = (f"{size} memcpy", "memcpy bytes(bytearray(n))",
                          lambda n=n: bytes(bytearray(n)))
                # The floor of a transfer through memory that is already mapped and touched:
                # one copy into warm pages (what a reused lane file costs the sender).
                # (Through a memoryview: bytearray slice assignment from bytes copies the
                # source into a temporary bytearray first.)
                src, warm = b"\1" * n, bytearray(b"\1" * n)
                target = memoryview(warm)
                warm_copy = (f"{size} memcpy", "memcpy into warm pages (w[:] = src)",
                             lambda w=target, s=src: w.__setitem__(slice(None), s))
                # The floor of a bytes result: a new bytes object is one allocation (fresh pages
                # unless malloc reuses some) and one copy into it.
                new_bytes = (f"{size} memcpy", "a new bytes object (bytes(warm))",
                             lambda w=warm: bytes(w))
                for kind in ("array", "bytes"):
                    value = _make(kind, n)
                    mp.ask("make", kind, n)
                    mod.make(kind, n)
                    remote = mod.get() if kind == "array" else None
                    group = f"{size} {'float64 array' if kind == 'array' else 'bytes'}"
                    out = f"{group}, worker -> host"
                    back = f"{group}, host -> worker"
                    cases: list[tuple[str, str, Callable[[], Any]]] = [
                        (out, "multiprocessing Pipe + pickle", lambda: mp.ask("get")),
                        (out, "multiprocessing.shared_memory (view)",
                         lambda kind=kind, n=n: mp.shm_get(kind, n)),
                        (out, "envknit worker",
                         (lambda r=remote: np.asarray(r)) if kind == "array" else mod.get),
                        (back, "multiprocessing Pipe + pickle",
                         lambda v=value: mp.ask("put", v)),
                        (back, "multiprocessing.shared_memory (view)",
                         lambda v=value: mp.shm_put(v)),
                        (back, "envknit worker", lambda v=value: mod.size(v)),
                    ]
                    if gen2:
                        cases += _subinterp_cases(kind, n, value, group)
                    if kind == "array":  # memcpy takes turns with the first kind's cases
                        cases[:0] = [memcpy, warm_copy, new_bytes]
                    times = interleaved_ms([func for _, _, func in cases], reps)
                    for (grp, label, _), ms in zip(cases, times, strict=True):
                        rows.append((grp, label, ms, None))
                    del remote
                del src, warm, target
            mp.ask("make", "bytes", 8)
            mod.make("bytes", 8)  # the list too (with --lists, nothing made it yet)
            floats = "100,000 floats (list), worker -> host"
            lists: list[tuple[str, str, Callable[[], Any]]] = [
                (floats, "multiprocessing Pipe + pickle", lambda: mp.ask("list")),
                (floats, "envknit worker", mod.get_list),
            ]
            if gen2:
                env = envknit.SubInterpreterEnv("lanebench-list")
                _interps.append(env)
                env.run_string("floats = [i * 0.5 for i in range(100_000)]")
                lists.append((
                    "100,000 floats (list), sub-interpreter -> host",
                    "envknit SubInterpreterEnv.eval_json",
                    lambda: env.eval_json("import __main__\nresult = __main__.floats"),
                ))
            cpu: list[float] = []
            times = interleaved_ms([func for _, _, func in lists], 21 if quick else 41, cpu)
            for (grp, label, _), ms, used in zip(lists, times, cpu, strict=True):
                rows.append((grp, label, ms, used))
    finally:
        mp.close()
        envknit.shutdown_workers()
        _close_subinterps()
        tmp.cleanup()
    return rows


_interps: list[Any] = []


def _subinterp_cases(
    kind: str, n: int, value: Any, group: str
) -> list[tuple[str, str, Callable[[], Any]]]:
    import envknit

    env = envknit.SubInterpreterEnv("lanebench")
    _interps.append(env)
    # No numpy inside (it does not load in sub-interpreters): a float64 array('d') there.
    env.run_string(
        f"import array\nstore = array.array('d', bytes({n})) if {kind == 'array'} else bytes({n})"
    )
    code = "import __main__\nresult = memoryview(__main__.store) if "
    code += "isinstance(__main__.store, __import__('array').array) else __main__.store"

    def out() -> Any:
        got = env.eval_json(code)
        return np.asarray(got) if kind == "array" else got

    return [
        (f"{group}, sub-interpreter -> host", "envknit SubInterpreterEnv.eval_json", out),
        (f"{group}, host -> sub-interpreter", "envknit SubInterpreterEnv.eval_json",
         lambda: env.eval_json("result = len(x)", x=value)),
    ]


def _close_subinterps() -> None:
    for env in _interps:
        env.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10 MB only, 21 list transfers")
    parser.add_argument("--lists", action="store_true", help="only the lists of floats")
    args = parser.parse_args()
    rows = run(args.quick, args.lists)
    memcpy = {g.split()[0]: ms for g, label, ms, _ in rows if label.startswith("memcpy bytes")}
    pickled = {g: ms for g, label, ms, _ in rows if label.startswith("multiprocessing Pipe")}
    # The sub-interpreter's list is compared with the worker case's pickle (same list).
    for group in [g for g, _, _, _ in rows if g.startswith("100,000 floats (list), sub")]:
        pickled[group] = pickled["100,000 floats (list), worker -> host"]
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}; medians of 15 (10 MB), "
          "7 (100 MB), 21 (--quick) or 41 (lists) transfers, host CPU (user + sys) next to "
          "wall for the lists; ratios against memcpy of the same size and "
          "against multiprocessing Pipe + pickle of the same case")
    current = None
    for group, label, ms, used in rows:
        if group != current:
            print(f"\n{group}")
            current = group
        size = group.split()[0]
        ratio = f"{ms / memcpy[size]:7.2f}x memcpy" if size in memcpy else " " * 14
        base = pickled.get(group)
        vs = f"{ms / base:7.2f}x mp pickle" if base else ""
        mbps = ""
        if size in memcpy:
            mbps = f"{int(size) * MB / MB / (ms / 1000):9.0f} MB/s"
        host = f" (host CPU {used:.2f} ms)" if used is not None else ""
        print(f"  {label:40s} {ms:9.2f} ms {mbps} {ratio} {vs}{host}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
