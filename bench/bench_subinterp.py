#!/usr/bin/env python3
"""Gen 2 benchmarks: SubInterpreterEnv call cost, enter/leave cost and parallel speed-up.

Run: python bench/bench_subinterp.py [--quick]   (CPython 3.12+, envknit installed)
Every figure is a median of repeated runs, with its ratio to a baseline measured in the same run.
"""

from __future__ import annotations

import _thread
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

try:
    import resource
except ImportError:  # Windows: no context-switch counts
    resource = None  # type: ignore[assignment]

import envknit
from envknit._subinterp import _safety
from envknit._subinterp._adapter import get_adapter

SNIPPET = "result = x + 1"
CPU_JOB = "total = 0\nfor i in range(n):\n    total += i % 7\nresult = total"

PREPARE_COST = (
    "import time\n"
    "from envknit._subinterp import _safety\n"
    "start = time.perf_counter()\n"
    "_safety.prepare_host()\n"
    "print((time.perf_counter() - start) * 1e3)\n"
)

# A warm subprocess answering one JSON line per request: the round trip a worker design pays.
SUBPROCESS_LOOP = r"""
import json, sys
for line in sys.stdin:
    req = json.loads(line)
    ns = dict(req["inputs"])
    exec(req["code"], ns)
    sys.stdout.write(json.dumps({"ok": True, "result": ns.get("result")}) + "\n")
    sys.stdout.flush()
"""


# The floor's statements that move the result back, exactly as the raw API is used by hand:
# import the queue module, put the str on the queue whose id is bound as __envknit_q__.
FLOOR_SEND = {
    "Py312Adapter": "import _xxinterpchannels as _envknit_ch\n"
                    "_envknit_ch.send(__envknit_q__, _envknit_out)\n",
    "Py313Adapter": "import _interpqueues as _envknit_qs\n"
                    "_envknit_qs.put(__envknit_q__, _envknit_out, 0, 3)\n",
    "Py314Adapter": "__envknit_q__.put_nowait(_envknit_out)\n",
}


def _nothing() -> None:
    return None


class _PingPong:
    """A persistent thread answering through two raw locks: the floor of any thread hop."""

    def __init__(self) -> None:
        self._go = _thread.allocate_lock()
        self._done = _thread.allocate_lock()
        self._go.acquire()
        self._done.acquire()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            self._go.acquire()
            if self._stopping:
                return
            self._done.release()

    def round_trip(self) -> None:
        self._go.release()
        self._done.acquire()

    def stop(self) -> None:
        self._stopping = True
        self._go.release()
        self._thread.join()


def median_us(func: Callable[[], object], repeat: int, number: int) -> float:
    """Median over ``repeat`` rounds of the mean time of ``number`` calls, in microseconds."""
    func()  # warm
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        rounds.append((time.perf_counter() - start) / number * 1e6)
    return statistics.median(rounds)


def _switches() -> int:
    """Voluntary context switches of this process so far (0 without getrusage).

    A thread switches voluntarily when it goes to sleep (waits for a lock, the GIL, a pipe);
    preemption by other processes on a loaded machine is involuntary and not counted.
    """
    if resource is None:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


def sample(func: Callable[[], object], number: int) -> tuple[float, float, float]:
    """One round of ``number`` calls: mean wall and CPU (all threads) microseconds, and voluntary
    context switches per call (each time a thread goes to sleep: a hand-off to another thread
    and back costs at least 2, and a fight for the GIL adds more; load barely changes this)."""
    switches, cpu, start = _switches(), time.process_time(), time.perf_counter()
    for _ in range(number):
        func()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return wall / number * 1e6, cpu / number * 1e6, (_switches() - switches) / number


def median_ms(func: Callable[[], object], repeat: int) -> float:
    func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def row(label: str, value: float, unit: str, base: float | None = None, note: str = "") -> None:
    ratio = f"{value / base:6.2f}x" if base else "   base"
    print(f"  {label:<52} {value:9.1f} {unit:<3} {ratio}  {note}")


def bench_calls(repeat: int, number: int) -> None:
    print("\n[1] one tiny call on a warm interpreter (`result = x + 1`)")
    adapter = get_adapter()
    _safety.prepare_host()
    # The raw floor runs on this thread: create, exec + queue round trip, destroy.
    interp = adapter.create()
    queue = adapter.create_queue()
    token = queue  # queue handles are shareable as they are
    raw_script = SNIPPET + "\n_envknit_out = str(result)\n" + FLOOR_SEND[type(adapter).__name__]
    raw_prepared = adapter.prepare(raw_script)  # 3.13: a code object; 3.12: the same text

    def raw_exec() -> None:
        adapter.run(interp, SNIPPET, {"x": 1})

    def raw_queue() -> str | None:
        adapter.run(interp, raw_script, {"x": 1, "__envknit_q__": token})
        return adapter.queue_get(queue)

    def raw_queue_prepared() -> str | None:
        adapter.run(interp, raw_prepared, {"x": 1, "__envknit_q__": token})
        return adapter.queue_get(queue)

    tmpdir = tempfile.mkdtemp(prefix="envknit-bench-")
    result_file = os.path.join(tmpdir, "result.json")
    file_script = SNIPPET + "\nwith open(path, 'w') as f:\n    f.write(str(result))\n"

    def raw_tempfile() -> str:
        adapter.run(interp, file_script, {"x": 1, "path": result_file})
        with open(result_file) as f:
            return f.read()

    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", SUBPROCESS_LOOP],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
    )
    assert proc.stdin is not None and proc.stdout is not None
    request = json.dumps({"code": SNIPPET, "inputs": {"x": 1}}) + "\n"

    def subprocess_round_trip() -> object:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(request)
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())["result"]

    with envknit.SubInterpreterEnv("bench") as env:

        def eval_json() -> object:
            return env.eval_json(SNIPPET, x=1)

        def eval_json_timeout() -> object:
            return env.eval_json(SNIPPET, x=1, timeout=10)

        driver = env._ensure().driver

        def submit_result() -> object:
            return env.submit(SNIPPET, x=1).result()

        def hand_off() -> None:
            driver.submit(_nothing).result()

        ping_pong = _PingPong()

        assert eval_json() == 2 and raw_queue() == "2" and subprocess_round_trip() == 2
        assert raw_queue_prepared() == "2" and eval_json_timeout() == 2 and submit_result() == 2
        # Interleave the measurements so that machine noise hits all of them alike.
        samples: dict[str, list[tuple[float, float, float]]] = {}
        cases = {
            "raw exec only": raw_exec,
            "raw exec + queue (the floor)": raw_queue,
            "raw exec + queue, prepared script": raw_queue_prepared,
            "SubInterpreterEnv.eval_json": eval_json,
            "eval_json(..., timeout=10)": eval_json_timeout,
            "submit(...).result()": submit_result,
            "hand-off to the helper thread": hand_off,
            "two raw locks, one thread each": ping_pong.round_trip,
            "raw exec + temp file (naive)": raw_tempfile,
            "warm subprocess, JSON lines": subprocess_round_trip,
        }
        for func in cases.values():
            func()  # warm
        for _ in range(repeat):
            for name, func in cases.items():
                samples.setdefault(name, []).append(sample(func, number))
    med = {name: tuple(statistics.median(v[i] for v in values) for i in range(3))
           for name, values in samples.items()}
    ping_pong.stop()
    proc.stdin.close()
    proc.wait()
    adapter.destroy_queue(queue)
    adapter.destroy(interp)
    os.unlink(result_file)
    os.rmdir(tmpdir)
    floor = med["raw exec + queue (the floor)"]
    ours = med["SubInterpreterEnv.eval_json"]
    print(f"  {'':<52} {'wall':>9}     {'ratio':>7} {'CPU':>7}  {'ratio':>6} {'switches':>8}")

    def call_row(label: str, name: str, note: str = "") -> None:
        wall, cpu, switches = med[name]
        base = name == "raw exec + queue (the floor)"
        ratios = "   base" if base else f"{wall / floor[0]:6.2f}x"
        cpu_ratio = "  base" if base else f"{cpu / floor[1]:5.2f}x"
        print(f"  {label:<52} {wall:9.1f} us  {ratios} {cpu:7.1f}  {cpu_ratio} {switches:8.2f}"
              f"  {note}")

    call_row("raw exec only", "raw exec only")
    call_row("raw exec + queue (the floor)", "raw exec + queue (the floor)")
    call_row("raw exec + queue, script prepared once", "raw exec + queue, prepared script",
             "(3.13: code object; 3.12: same as the floor)")
    call_row("SubInterpreterEnv.eval_json", "SubInterpreterEnv.eval_json",
             "goal <= 1.5x the floor")
    call_row("eval_json(..., timeout=10)", "eval_json(..., timeout=10)", "goal <= 1.5x the floor")
    call_row("submit(...).result()", "submit(...).result()", "goal <= 1.5x the floor")
    call_row("hand-off of a no-op job to the helper thread", "hand-off to the helper thread",
             "(timed calls and submit() without the serving thread)")
    call_row("bare thread hop: two raw locks, no interpreter", "two raw locks, one thread each",
             "(any hand-off between two host threads)")
    call_row("raw exec + temp file (naive)", "raw exec + temp file (naive)")
    call_row("warm subprocess, JSON lines", "warm subprocess, JSON lines")
    for label, name in (("timed eval_json", "eval_json(..., timeout=10)"),
                        ("submit().result()", "submit(...).result()")):
        wall, cpu, switches = med[name]
        print(f"  -> {label}: {wall / floor[0]:.2f}x the floor's wall time, "
              f"{cpu / floor[1]:.2f}x its CPU time (goal <= 1.5x); {wall - ours[0]:+.1f} us wall, "
              f"{cpu - ours[1]:+.1f} us CPU and {switches:.2f} context switches a call over the "
              f"untimed eval_json")
    print(f"  -> eval_json is {med['raw exec + temp file (naive)'][0] / ours[0]:.2f}x faster than "
          f"the temp file (goal >= 2x) and {med['warm subprocess, JSON lines'][0] / ours[0]:.2f}x "
          f"faster than the warm subprocess (goal > 1x)")


def bench_lifecycle(repeat: int) -> None:
    print("\n[2] entering and leaving an interpreter")
    adapter = get_adapter()

    def raw_create_destroy() -> None:
        adapter.destroy(adapter.create())

    def raw_on_thread() -> None:
        # what SubInterpreterEnv must do at least: its own OS thread creates and destroys
        t = threading.Thread(target=raw_create_destroy)
        t.start()
        t.join()

    def enter_leave() -> None:
        with envknit.SubInterpreterEnv("bench"):
            pass

    def enter_call_leave() -> None:
        with envknit.SubInterpreterEnv("bench") as env:
            env.eval_json(SNIPPET, x=1)

    def pooled_enter_call_leave() -> None:
        with envknit.SubInterpreterEnv("bench", reuse=True) as env:
            env.eval_json(SNIPPET, x=1)

    cases = {
        "raw create + destroy": raw_create_destroy,
        "raw create + destroy on a new thread": raw_on_thread,
        "with SubInterpreterEnv(): pass": enter_leave,
        "with SubInterpreterEnv(): one eval_json": enter_call_leave,
        "same, reuse=True (warm pool)": pooled_enter_call_leave,
    }
    samples: dict[str, list[float]] = {}
    for func in cases.values():
        func()
    for _ in range(repeat):
        for name, func in cases.items():
            samples.setdefault(name, []).append(median_ms(func, 1))
    med = {name: statistics.median(values) for name, values in samples.items()}
    base = med["raw create + destroy"]
    row("raw create + destroy", base, "ms")
    row("raw create + destroy on a new thread", med["raw create + destroy on a new thread"],
        "ms", base)
    row("with SubInterpreterEnv(): pass", med["with SubInterpreterEnv(): pass"], "ms", base,
        "goal <= 1.1x")
    row("with SubInterpreterEnv(): one eval_json",
        med["with SubInterpreterEnv(): one eval_json"], "ms", base)
    row("same, reuse=True (warm pool)", med["same, reuse=True (warm pool)"], "ms", base)
    cold = med["with SubInterpreterEnv(): one eval_json"]
    warm = med["same, reuse=True (warm pool)"]
    print(f"  -> the pool saves {cold - warm:.1f} ms per re-entry ({cold / warm:.0f}x faster)")
    prep = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", PREPARE_COST], capture_output=True, text=True, check=True
        ).stdout
        prep.append(float(out))
    print(f"  -> one-time host preparation before the first interpreter (fresh process): "
          f"{statistics.median(prep):.1f} ms")
    import resource

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    before = rss_mb()
    for _ in range(40):
        enter_call_leave()
    print(f"  -> resident memory growth per enter/leave cycle: "
          f"{(rss_mb() - before) / 40:.2f} MB (reuse=True avoids it)")


def bench_parallel(repeat: int, n: int) -> None:
    print(f"\n[3] two CPU-bound jobs (a {n:,}-step Python loop each)")

    compiled = compile(CPU_JOB, "<cpu job>", "exec")

    def py_job() -> None:
        # the very same module-level code the interpreters run, in this interpreter
        exec(compiled, {"n": n})

    with envknit.SubInterpreterEnv("left") as a, envknit.SubInterpreterEnv("right") as b:
        a.eval_json("result = 1")
        b.eval_json("result = 1")

        def serial() -> None:
            a.eval_json(CPU_JOB, n=n)
            b.eval_json(CPU_JOB, n=n)

        def parallel() -> None:
            fa, fb = a.submit(CPU_JOB, n=n), b.submit(CPU_JOB, n=n)
            fa.result()
            fb.result()

        def parallel_inline() -> None:
            # eval_json without a timeout runs on the calling thread: two callers, two envs
            threads = [threading.Thread(target=env.eval_json, args=(CPU_JOB,), kwargs={"n": n})
                       for env in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        def threads_one_interpreter() -> None:
            threads = [threading.Thread(target=py_job) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        control_code = f"exec(compile({CPU_JOB!r}, 'job', 'exec'), {{'n': {n}}})"

        def one_process() -> None:
            subprocess.run([sys.executable, "-I", "-c", control_code], check=True)

        def two_processes() -> None:
            procs = [subprocess.Popen([sys.executable, "-I", "-c", control_code])
                     for _ in range(2)]
            for p in procs:
                p.wait()

        samples: dict[str, list[float]] = {}
        cases = {"serial": serial, "parallel": parallel, "parallel inline": parallel_inline,
                 "threads": threads_one_interpreter,
                 "one process": one_process, "two processes": two_processes}
        for _ in range(repeat):
            for name, func in cases.items():
                samples.setdefault(name, []).append(median_ms(func, 1))
    med = {name: statistics.median(values) for name, values in samples.items()}
    row("two envs, one after the other", med["serial"], "ms")
    row("two envs on two threads (submit)", med["parallel"], "ms", med["serial"])
    row("two envs, eval_json from two threads (inline)", med["parallel inline"], "ms",
        med["serial"])
    row("two threads in one interpreter (shared GIL)", med["threads"], "ms", med["serial"])
    control = med["two processes"] / med["one process"]
    print(f"  -> control: two processes take {control:.2f}x the time of one "
          f"(1.0 = two free cores, 2.0 = one)")
    print(f"  -> speed-up of two envs on two threads: {med['serial'] / med['parallel']:.2f}x "
          f"(goal >= 1.7x on 2 cores); eval_json from two threads: "
          f"{med['serial'] / med['parallel inline']:.2f}x; threads in one interpreter: "
          f"{med['serial'] / med['threads']:.2f}x; os.cpu_count()={os.cpu_count()}")


def _cext_entry(home: str) -> str:
    """A store entry ``benchcx 1.0`` with one compiled module (a copy of ``_testmultiphase``,
    which loads in isolated interpreters), written by hand; returns its directory."""
    import hashlib
    import shutil
    import sysconfig

    suffix = str(sysconfig.get_config_var("EXT_SUFFIX"))
    source = os.path.join(_safety.stdlib_dirs()[-1], "_testmultiphase" + suffix)
    for d in _safety.stdlib_dirs():
        if os.path.exists(os.path.join(d, "_testmultiphase" + suffix)):
            source = os.path.join(d, "_testmultiphase" + suffix)
    sha = hashlib.sha256(b"benchcx 1.0").hexdigest()
    root = os.path.join(home, "store", "benchcx", "1.0", sha[:16])
    os.makedirs(os.path.join(root, "site", "benchcx"))
    with open(os.path.join(root, "site", "benchcx", "__init__.py"), "w") as f:
        f.write("from . import _testmultiphase\n")
    shutil.copy(source, os.path.join(root, "site", "benchcx", "_testmultiphase" + suffix))
    files = {"site/benchcx/__init__.py": sha, f"site/benchcx/_testmultiphase{suffix}": sha}
    with open(os.path.join(root, "ENTRY.json"), "w") as f:
        json.dump({"format": 1, "name": "benchcx", "version": "1.0", "sha256": sha,
                   "filename": "benchcx-1.0.whl", "tags": [], "files": files}, f)
    return root


def bench_verdicts(repeat: int, number: int) -> None:
    print("\n[4] C-extension verdicts (a store entry with one compiled module)")
    from pathlib import Path

    from envknit.store import verdicts as _verdicts
    from envknit.store.layout import read_entry

    home = tempfile.mkdtemp(prefix="envknit-bench-home-")
    os.environ["ENVKNIT_HOME"] = home
    entry = read_entry(Path(_cext_entry(home)))
    assert entry is not None and _verdicts.has_extensions(entry)
    paths = [str(entry.site_dir)]
    code = "import benchcx\nresult = x + 1"

    def configure(env: envknit.SubInterpreterEnv, guarded: bool) -> None:
        cext = _verdicts.entries_for_child([entry]) if guarded else {}
        answer = env._request({"kind": "configure", "paths": paths, "cext": cext}, None)
        assert answer["ok"], answer

    # one-time probe: a fresh interpreter meets the entry with no verdict on disk
    verdict_file = _verdicts.verdict_path(entry)

    def first_import(known: bool) -> float:
        if not known:
            verdict_file.unlink(missing_ok=True)
            _verdicts.reset_memory()
        with envknit.SubInterpreterEnv("bench-verdict") as env:
            configure(env, True)
            start = time.perf_counter()
            assert env.try_import("benchcx") is True
            return (time.perf_counter() - start) * 1e3

    first_import(False)
    probe, known = [], []
    for _ in range(max(3, repeat // 3)):
        probe.append(first_import(False))
        known.append(first_import(True))
    with envknit.SubInterpreterEnv("plain") as plain, \
            envknit.SubInterpreterEnv("guarded") as guarded:
        configure(plain, False)
        configure(guarded, True)
        assert plain.eval_json(code, x=1) == guarded.eval_json(code, x=1) == 2
        samples: dict[str, list[float]] = {}
        cases = {
            "tiny": lambda: plain.eval_json(SNIPPET, x=1),
            "plain": lambda: plain.eval_json(code, x=1),
            "guarded": lambda: guarded.eval_json(code, x=1),
        }
        # Many short rounds, the cases alternating, and the median of the per-round
        # differences: drift on a shared machine then hits both sides of each pair alike.
        for _ in range(repeat * 10):
            for name, func in cases.items():
                samples.setdefault(name, []).append(median_us(func, 1, max(number // 10, 1)))
    med = {name: statistics.median(values) for name, values in samples.items()}
    paired = statistics.median(g - p for g, p in zip(samples["guarded"], samples["plain"],
                                                     strict=True))
    row("eval_json importing it, no verdict map (today)", med["plain"], "us")
    row("eval_json importing it, entry judged 'loads'", med["guarded"], "us", med["plain"],
        f"(paired median difference {paired:+.2f} us; goal < 2 us)")
    row("eval_json(`result = x + 1`) for scale", med["tiny"], "us", med["plain"])
    row("first import, verdict already on disk", statistics.median(known), "ms")
    row("first import, probed in a throwaway process", statistics.median(probe), "ms",
        statistics.median(known), "(once per entry and Python build)")
    import shutil

    shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", choices=["calls", "lifecycle", "parallel", "verdicts"],
                        action="append",
                        help="run only these sections (repeatable)")
    args = parser.parse_args()
    if sys.version_info < (3, 12):
        print("bench_subinterp needs CPython 3.12+", file=sys.stderr)
        return 0
    print(f"Python {sys.version.split()[0]} ({sys.implementation.name}), "
          f"adapter {type(get_adapter()).__name__}")
    quick = args.quick
    only = set(args.only or ["calls", "lifecycle", "parallel", "verdicts"])
    if "calls" in only:
        bench_calls(repeat=5 if quick else 15, number=200 if quick else 500)
    if "lifecycle" in only:
        bench_lifecycle(repeat=5 if quick else 21)
    if "parallel" in only:
        bench_parallel(repeat=3 if quick else 7, n=2_000_000 if quick else 4_000_000)
    if "verdicts" in only:
        bench_verdicts(repeat=5 if quick else 15, number=200 if quick else 500)
    return 0


if __name__ == "__main__":
    sys.exit(main())
