#!/usr/bin/env python3
"""Start-up benchmarks against clean baselines: ``envknit run``, a new worker, configure_from_lock.

    python bench/bench_startup.py [--rounds N] [--only run|worker|configure ...]
    python bench/run.py --only bench_startup        # all three figures

Everything timed runs in a venv built by this run from the base interpreter, envknit installed
non-editable, no ``.pth`` file (bench/_clean.py), uv offline with the default index on a
loopback index that must see no request. Figures, medians of paired rounds (the
cases' order rotates every round), each with its baseline from the same rounds:

1. ``envknit run -- python -c pass`` vs ``python -c pass`` and vs
   ``uv run --no-project --python PY python -c pass`` (goal: at most as slow as uv run);
2. a new ``envknit.worker()`` to its first result, in a process that has imported envknit, vs
   ``python -c pass`` from that process (goal: <= 1.5x);
3. ``python -c "import envknit; envknit.configure_from_lock(LOCK)"``, LOCK with two
   environments, vs ``python -c pass`` (goal: < 25 ms more): the usual case, the lock's table
   cached under ``$ENVKNIT_HOME/cache`` by an earlier process; for scale, the same with the
   table removed before each run (a changed lock or store) and ``import envknit`` alone.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _clean import (
    Row,
    add_source_option,
    clean_env,
    counting_index,
    must_run,
    offline_env,
    paired,
    print_rows,
    row,
)

from tests._builders import make_store_entry, package_files, write_lock

CONFIG = """\
environments:
  default:
    packages: [benchpkg==1.0, helper==1.0]
  other:
    packages: [benchpkg==2.0]
"""


def make_project(project: Path, home: Path) -> None:
    """A project whose two-environment lock is installed in ``home``'s store."""
    project.mkdir()
    envs = {}
    for env_name, version, extra in (("default", "1.0", True), ("other", "2.0", False)):
        files = package_files("benchpkg", version, {"core.py": "def echo(x):\n    return x\n"})
        files["benchpkg/__init__.py"] = f"__version__ = {version!r}\nfrom .core import echo\n"
        pkgs = [make_store_entry(home, "benchpkg", version, files)]
        if extra:
            pkgs.append(make_store_entry(home, "helper", "1.0"))
        envs[env_name] = pkgs
    write_lock(project / "envknit.lock.yaml", envs)
    (project / "envknit.yaml").write_text(CONFIG)
    # configure_from_lock caches no table while a store directory is younger than its racy
    # window (a file system's timestamp tick): age the fixture store as a real one would be
    old = time.time() - 3600
    for root, dirs, _ in os.walk(home):
        for name in dirs:
            os.utime(os.path.join(root, name), (old, old))


#: The figures, by the name ``--only`` takes, and the cases each one times in the paired rounds.
#: (The worker figure is timed apart, inside one process: bench/_spawn_driver.py.)
FIGURES: dict[str, tuple[str, ...]] = {
    "run": ("pass", "run", "uv run"),
    "worker": (),
    "configure": ("pass", "import", "configure", "uncached"),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES),
                        help="the figures to measure (default: all)")
    add_source_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envknit-bench-") as tmp_name, \
            counting_index() as (index_url, asked):
        tmp = Path(tmp_name)
        venv = clean_env(tmp / "venv", args.source)
        home, project = tmp / "home", tmp / "project"
        make_project(project, home)
        (tmp / "wheels").mkdir()
        env = offline_env(wheels=tmp / "wheels", cache=tmp / "uv-cache", index_url=index_url,
                          extra={"ENVKNIT_HOME": str(home)})
        py = str(venv.python)
        run_cmd = [str(venv.envknit), "run", "--", "python", "-c", "pass"]
        uv_run = [str(venv.uv), "run", "--no-project", "--python", py, "python", "-c", "pass"]
        configure = "import envknit; envknit.configure_from_lock('envknit.lock.yaml')"
        commands = {
            "pass": [py, "-c", "pass"],
            "run": run_cmd,
            "uv run": uv_run,
            "import": [py, "-c", "import envknit"],
            "configure": [py, "-c", configure],
            "uncached": [py, "-c", configure],
        }
        wanted = {case for figure in args.only for case in FIGURES[figure]}
        cases = {name: cmd for name, cmd in commands.items() if name in wanted}
        cache = home / "cache"

        def case(name: str, cmd: list[str]) -> str:
            if name == "uncached":  # what a changed lock or store costs: the table is rebuilt
                for table in cache.glob("routes-*.txt"):  # not `run`'s plans beside them
                    table.unlink()
            return must_run(cmd, cwd=project, env=env)

        for name, cmd in cases.items():  # warm-up: fills envknit's caches and the OS's
            case(name, cmd)
        cached = True
        if "configure" in cases:
            case("configure", cases["configure"])
            cached = bool(list(cache.glob("routes-*.txt")))  # False: a checkout before the cache
        samples = paired(
            {name: functools.partial(case, name, cmd) for name, cmd in cases.items()},
            args.rounds if cases else 0,
        )
        spawn = None
        if "worker" in args.only:
            out = must_run([py, str(Path(__file__).with_name("_spawn_driver.py")),
                            str(args.rounds), "benchpkg", "1.0"], cwd=project, env=env)
            spawn = json.loads(out)
        version = subprocess.run([py, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        uv_version = must_run([venv.uv, "--version"], cwd=project, env=env).strip()
        if asked:
            raise SystemExit(f"uv asked the index although offline: {asked}")

    print(f"envknit from {args.source}", flush=True)
    print(f"Python {version} (clean venv from the base interpreter, envknit non-editable, "
          f"no .pth); {uv_version}; medians of {args.rounds} paired rounds; "
          f"index requests: 0", flush=True)
    bare = "python -c pass"
    rows = []
    if "run" in args.only:
        rows += [
            row(samples, "1. envknit run -- python -c pass", "run", "pass", bare),
            row(samples, "1. envknit run -- python -c pass", "run", "uv run",
                "uv run --no-project python -c pass", max_ratio=1.0),
            row(samples, "   uv run --no-project python -c pass", "uv run", "pass", bare),
        ]
    if spawn is not None:
        rows.append(Row(label="2. new worker() to first result", ours=spawn["worker"],
                        base=spawn["pass"], base_label=bare, max_ratio=1.5,
                        ours_cpu=spawn["worker_cpu"], base_cpu=spawn["pass_cpu"]))
    if "configure" in args.only:
        rows += [
            row(samples, "3. import envknit + configure_from_lock (2 envs)", "configure",
                "pass", bare, max_extra_ms=25),
            row(samples, "   the same, table not cached (lock or store changed)", "uncached",
                "pass", bare),
            row(samples, "   import envknit", "import", "pass", bare),
        ]
    print_rows(rows)
    if not cached:
        print("   (configure_from_lock cached no table: figure 3 is a miss too)", flush=True)
    if spawn is not None:
        print(f"   the process's first worker (also reads the lock and the store): "
              f"{statistics.median(spawn['first']) * 1000:.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
