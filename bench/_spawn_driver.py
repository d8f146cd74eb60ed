"""Run by the clean venv's python: new ``envknit.worker()`` to first result vs ``python -c pass``.

    python _spawn_driver.py ROUNDS DIST VERSION     (in a folder holding the lock)

Prints ``{"worker": [...], "pass": [...], "first": [t], ...}`` (seconds; ``*_cpu``: CPU time,
the worker's including this process's share), the two interleaved, the order alternating.
It imports envknit before timing: the figure is what a new worker costs a running program.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import envknit


def main() -> int:
    rounds, dist, version = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    samples: dict[str, list[float]] = {"worker": [], "pass": [], "worker_cpu": [], "pass_cpu": []}

    def cpu(who: int) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    def spawn() -> None:
        envknit.shutdown_workers()
        c0 = cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with envknit.worker(dist, version) as mod:
            mod.echo(1)
        samples["worker"].append(time.perf_counter() - t0)
        envknit.shutdown_workers()  # reaps the child: its CPU time counts from here on
        samples["worker_cpu"].append(cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN) - c0)

    def bare() -> None:
        c0 = cpu(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples["pass"].append(time.perf_counter() - t0)
        samples["pass_cpu"].append(cpu(resource.RUSAGE_CHILDREN) - c0)

    spawn()  # the first worker of a process also reads the lock and the store: shown apart
    samples["first"] = samples["worker"][:]
    samples["worker"].clear()
    samples["worker_cpu"].clear()
    for r in range(rounds):
        for case in (spawn, bare) if r % 2 == 0 else (bare, spawn):
            case()
    print(json.dumps(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
