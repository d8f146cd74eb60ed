"""Run by the clean venv's python: new ``envknit.worker()`` to first result vs ``python -c pass``.

    python _spawn_driver.py ROUNDS DIST VERSION     (in a folder holding the lock)

Prints ``{"worker": [...], "pass": [...], "first": [t]}`` (seconds), the two interleaved, the
order alternating.
It imports envknit before timing: the figure is what a new worker costs a running program.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import envknit


def main() -> int:
    rounds, dist, version = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    samples: dict[str, list[float]] = {"worker": [], "pass": []}

    def spawn() -> None:
        envknit.shutdown_workers()
        t0 = time.perf_counter()
        with envknit.worker(dist, version) as mod:
            mod.echo(1)
        samples["worker"].append(time.perf_counter() - t0)
        envknit.shutdown_workers()

    def bare() -> None:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples["pass"].append(time.perf_counter() - t0)

    spawn()  # the first worker of a process also reads the lock and the store: shown apart
    samples["first"] = samples["worker"][:]
    samples["worker"].clear()
    for r in range(rounds):
        for case in (spawn, bare) if r % 2 == 0 else (bare, spawn):
            case()
    print(json.dumps(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
