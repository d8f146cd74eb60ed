#!/usr/bin/env python3
"""Run every benchmark in bench/ and print its figures (medians, ratios against baselines).

    python3 scripts/dev.py bench            # sets up the venvs, then runs this
    python bench/run.py --pythons PY...     # PY: interpreters with envknit installed

Each ``bench_*.py`` is a standalone script. ``GEN2`` scripts run on every given 3.12+
interpreter; the others run on the newest one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GEN2 = {"bench_subinterp.py", "bench_lane.py"}


def version_of(python: str) -> tuple[int, int]:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return (int(out[0]), int(out[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pythons", nargs="+", default=[sys.executable])
    parser.add_argument("--only", nargs="*", default=None, help="bench_*.py names to run")
    args = parser.parse_args()
    pythons = sorted(args.pythons, key=version_of)
    rc = 0
    for script in sorted(HERE.glob("bench_*.py")):
        if args.only and script.name not in args.only and script.stem not in args.only:
            continue
        if script.name in GEN2:
            targets = [p for p in pythons if version_of(p) >= (3, 12)]
        else:
            targets = [pythons[-1]]
        for py in targets:
            print(f"\n=== {script.name} on Python {'.'.join(map(str, version_of(py)))} ===",
                  flush=True)
            rc |= subprocess.run([py, str(script)], check=False).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
