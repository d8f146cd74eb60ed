#!/usr/bin/env python3
"""Lock and install benchmarks: envknit lock / install against uv, offline, from a clean venv.

    python bench/bench_cli.py [--rounds N] [--packages N] [--only lock,cold,warm]
    # or: bench/run.py --only bench_cli

Every command timed runs from a venv built by this run from the base interpreter with envknit
installed non-editable (bench/_clean.py), and uv is offline for real: ``UV_OFFLINE=1``, its
own ``UV_CACHE_DIR``, ``UV_FIND_LINKS`` at wheels this script builds (pure Python, ~250 KiB
each; the first depends on all the others), the default index on a loopback index that must
see no request. Figures, medians of paired rounds (the order rotates every round):

1. ``envknit lock`` of one environment of N packages vs ``uv pip compile --generate-hashes``
   of the same requirement for the same target (goal <= 2x); both with a warm uv cache; and
   the floor of any lock that runs uv's two compiles (bench/_lock_floor.py: a Python that
   starts, runs both at once and reads them, nothing else), and the same with one compile.
   A lock after the first keeps each target's usable files (envknit._filecache) and runs
   one compile: the ``envknit`` rows measure that re-lock; ``first`` removes them before
   every round (a target's first lock);
2. cold ``envknit install`` (empty store, empty uv cache) vs ``uv venv`` + ``uv pip install
   --no-deps --require-hashes`` of the same pins (empty uv cache) (goal <= 1.1x);
3. ``envknit install`` of a second project whose packages are all in the store vs the same uv
   pair with a warm uv cache (goal <= 1.0x), and the bytes each adds on disk;
4. ``envknit install`` into an empty store with a warm uv cache (a new ``ENVKNIT_HOME``, or
   entries removed by ``store gc``) vs the same uv pair with a warm uv cache (no goal).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
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

from tests._builders import build_wheel, package_files

PY = "{}.{}".format(*sys.version_info[:2])
FIGURES = ("lock", "cold", "warm", "uvcache")


def make_wheels(dest: Path, count: int) -> list[str]:
    """``count`` packages, each with 20 modules of ~10 KB; the first depends on the others."""
    names = [f"benchpkg{i}" for i in range(count)]
    body = "".join(f"def f{j}(x):\n    return x + {j}\n\n" for j in range(400))
    for i, name in enumerate(names):
        modules = {f"mod{k}.py": body for k in range(20)}
        requires = [f"{n}==1.0" for n in names[1:]] if i == 0 else []
        build_wheel(dest, name, "1.0", package_files(name, "1.0", modules), requires=requires)
    return names


def tree_bytes(root: Path, *, unshared_only: bool = False) -> int:
    """Bytes of the files under ``root`` (only those not hard-linked elsewhere if asked)."""
    total = 0
    seen: set[int] = set()
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            st = os.lstat(os.path.join(dirpath, fname))
            if st.st_ino in seen or (unshared_only and st.st_nlink > 1):
                continue
            seen.add(st.st_ino)
            total += st.st_size
    return total


def floor_commands(py: str, uv: str, folder: Path, requirement: str) -> tuple[list[str], ...]:
    """The floor of a lock (bench/_lock_floor.py): a Python that starts and runs, at once and
    reading all their output, the two compiles ``envknit lock`` runs (``envknit._uvlock``), and
    nothing else; and the same with one compile (the requirements.txt one)."""
    folder.mkdir()
    (folder / "main.in").write_text(f"{requirement}\n")
    (folder / "dev.in").write_text("")
    common = [uv, "--directory", str(folder), "pip", "compile", "--python", py,
              "--python-version", PY, "--generate-hashes", "--no-header", "--quiet"]
    graph = [*common, "--annotation-style", "split", "main.in", "dev.in"]
    named = [*common, "--format", "pylock.toml", "main.in", "dev.in"]
    script = str(Path(__file__).with_name("_lock_floor.py"))
    return [py, "-I", script, *graph], [py, "-I", script, *graph, "::", *named]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--packages", type=int, default=10)
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=set(FIGURES),
                        help="comma-separated figures to measure: lock, cold, warm, uvcache "
                        "(default: all)")
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="also time the envknit of CHECKOUT (say, main before a change) "
                        "in the same rounds: 'before' rows")
    add_source_option(parser)
    args = parser.parse_args()
    if args.only - set(FIGURES):
        parser.error(f"--only: unknown figure(s) {sorted(args.only - set(FIGURES))}")
    with tempfile.TemporaryDirectory(prefix="envknit-bench-") as tmp_name, \
            counting_index() as (index_url, asked):
        tmp = Path(tmp_name)
        venv = clean_env(tmp / "venv", args.source)
        py, uv, envknit = str(venv.python), str(venv.uv), str(venv.envknit)
        before = str(clean_env(tmp / "venv-before", args.compare).envknit) if args.compare else ""
        wheels = tmp / "wheels"
        names = make_wheels(wheels, args.packages)
        fresh = itertools.count()
        rows: list[Row] = []

        def env_for(cache: Path, home: Path | None = None) -> dict[str, str]:
            extra = {"ENVKNIT_HOME": str(home)} if home else {}
            return offline_env(wheels=wheels, cache=cache, index_url=index_url, extra=extra)

        project = tmp / "project"
        project.mkdir()
        (project / "envknit.yaml").write_text(
            f"environments:\n  default:\n    packages: ['{names[0]}==1.0']\n"
        )
        (tmp / "req.in").write_text(f"{names[0]}==1.0\n")
        pins = tmp / "pins.txt"
        pins.write_text("".join(
            f"{w.name.split('-')[0]}==1.0 --hash=sha256:"
            f"{hashlib.sha256(w.read_bytes()).hexdigest()}\n"
            for w in sorted(wheels.glob("*.whl"))
        ))

        # 1. lock, both with the same warm uv cache (each warmed by a first run, which also
        # writes the lock the installs read)
        lock_env = env_for(tmp / "lock-cache", tmp / "lock-home")
        lock_cmd = [envknit, "lock"]
        compile_cmd = [uv, "pip", "compile", "--python", py, "--python-version", PY,
                       "--generate-hashes", "--quiet", str(tmp / "req.in")]
        floor1, floor2 = floor_commands(py, uv, tmp / "floor", names[0])
        for cmd in (lock_cmd, compile_cmd, floor2):
            must_run(cmd, cwd=project, env=lock_env)
        # the first lock of a target: its own home, whose kept files go before every round
        first_home = tmp / "lock-home-first"
        first_env = env_for(tmp / "lock-cache", first_home)
        must_run(lock_cmd, cwd=project, env=first_env)

        def first_lock() -> object:
            shutil.rmtree(first_home / "cache" / "files")
            return must_run(lock_cmd, cwd=project, env=first_env)

        if "lock" in args.only:
            cases: dict[str, Callable[[], object]] = {
                "envknit": lambda: must_run(lock_cmd, cwd=project, env=lock_env),
                "first": first_lock,
                "uv": lambda: must_run(compile_cmd, cwd=project, env=lock_env),
                "floor2": lambda: must_run(floor2, cwd=project, env=lock_env),
                "floor1": lambda: must_run(floor1, cwd=project, env=lock_env),
            }
            if before:  # main (say) in the same rounds, with its own home (its own caches)
                before_env = env_for(tmp / "lock-cache", tmp / "lock-home-before")
                before_project = tmp / "project-before"
                before_project.mkdir()
                shutil.copy(project / "envknit.yaml", before_project)
                must_run([before, "lock"], cwd=before_project, env=before_env)
                cases["before"] = lambda: must_run([before, "lock"], cwd=before_project,
                                                   env=before_env)
            samples = paired(cases, args.rounds)
            base = "uv pip compile --generate-hashes"
            label = f"1. envknit lock ({args.packages} packages)"
            rows.append(row(samples, label, "envknit", "uv", base, max_ratio=2.0))
            rows.append(row(samples, "1. floor: python + both compiles at once", "floor2", "uv",
                            base))
            rows.append(row(samples, "1. floor: python + one compile", "floor1", "uv", base))
            rows.append(row(samples, "1. envknit lock vs the floor", "envknit", "floor2",
                            "python + both compiles"))
            rows.append(row(samples, "1. re-lock (files kept: every round but a target's "
                            "first) vs its floor", "envknit", "floor1", "python + one compile"))
            rows.append(row(samples, "1. first lock (no files kept)", "first", "uv", base))
            rows.append(row(samples, "1. first lock vs its floor", "first", "floor2",
                            "python + both compiles"))
            if before:
                rows.append(row(samples, f"1. before ({args.compare})", "before", "uv", base))
                rows.append(row(samples, "1. envknit lock vs before", "envknit", "before",
                                "before"))

        def uv_install(cache: Path) -> Path:
            target = tmp / f"venv{next(fresh)}"
            e = env_for(cache)
            must_run([uv, "venv", "-q", "--python", py, str(target)], cwd=tmp, env=e)
            must_run([uv, "pip", "install", "-q", "--no-deps", "--require-hashes", "--python",
                      str(target / "bin" / "python"), "-r", str(pins)], cwd=tmp, env=e)
            return target

        def ek_install(home: Path, cache: Path, where: Path = project, exe: str = envknit) -> None:
            must_run([exe, "install"], cwd=where, env=env_for(cache, home))

        def figure(cases: dict[str, Callable[[], object]], label: str, base_label: str,
                   max_ratio: float | None = None) -> None:
            """``cases`` (envknit, uv and, with --compare, before) paired; its rows."""
            samples = paired(cases, args.rounds)
            rows.append(row(samples, label, "envknit", "uv", base_label, max_ratio=max_ratio))
            if "before" in cases:
                rows.append(row(samples, f"{label[:2]} before ({args.compare})", "before", "uv",
                                base_label))
                rows.append(row(samples, f"{label[:2]} envknit vs before", "envknit", "before",
                                "before"))

        def with_before(cases: dict[str, Callable[[], object]],
                        before_case: Callable[[], object]) -> dict[str, Callable[[], object]]:
            return {**cases, "before": before_case} if before else cases

        # 2. cold: empty store and empty uv cache / new venv and empty uv cache
        if "cold" in args.only:
            figure(with_before({
                "envknit": lambda: ek_install(tmp / f"home{next(fresh)}", tmp / f"c{next(fresh)}"),
                "uv": lambda: uv_install(tmp / f"c{next(fresh)}"),
            }, lambda: ek_install(tmp / f"home{next(fresh)}", tmp / f"c{next(fresh)}",
                                  exe=before)),
                "2. cold envknit install", "uv venv + uv pip install, empty cache", 1.1)

        # 3. warm: a second project, all in the store / a new venv, warm uv cache
        home, cache, uv_cache = tmp / "warm-home", tmp / "warm-cache", tmp / "warm-uv-cache"
        if "warm" in args.only:
            ek_install(home, cache)
            uv_install(uv_cache)
        added: list[int] = []
        venvs: list[Path] = []

        def ek_second() -> None:
            second = tmp / f"second{next(fresh)}"
            second.mkdir()
            for name in ("envknit.yaml", "envknit.lock.yaml"):
                shutil.copy(project / name, second)
            before = tree_bytes(home)
            ek_install(home, cache, second)
            added.append(tree_bytes(home) - before)

        if "warm" in args.only:
            before_home = tmp / "warm-home-before"
            if before:
                ek_install(before_home, cache, exe=before)

            def before_second() -> None:
                second = tmp / f"second{next(fresh)}"
                second.mkdir()
                for name in ("envknit.yaml", "envknit.lock.yaml"):
                    shutil.copy(project / name, second)
                ek_install(before_home, cache, second, exe=before)

            figure(with_before({"envknit": ek_second,
                                "uv": lambda: venvs.append(uv_install(uv_cache))}, before_second),
                   "3. envknit install, second project (warm store)",
                   "uv venv + uv pip install, warm cache", 1.0)
        # 4. the store empty but uv's cache warm (a new ENVKNIT_HOME, entries gc'd) / a new
        # venv, warm uv cache
        if "uvcache" in args.only:
            store_cache = tmp / "uvcache-cache"
            ek_install(tmp / f"home{next(fresh)}", store_cache)
            uv_install(store_cache)
            figure(with_before({
                "envknit": lambda: ek_install(tmp / f"home{next(fresh)}", store_cache),
                "uv": lambda: uv_install(store_cache),
            }, lambda: ek_install(tmp / f"home{next(fresh)}", store_cache, exe=before)),
                "4. envknit install, empty store, warm uv cache",
                "uv venv + uv pip install, warm cache")
        if venvs:  # measured here: the temporary directory goes with the block
            venv_bytes = statistics.median(tree_bytes(v) for v in venvs)
            venv_unshared = statistics.median(tree_bytes(v, unshared_only=True) for v in venvs)
        uv_version = must_run([uv, "--version"], cwd=tmp, env=lock_env).strip()
        wheel_kib = tree_bytes(wheels) // 1024
        if asked:
            raise SystemExit(f"uv asked the index although offline: {asked}")

    print(f"envknit from {args.source}", flush=True)
    print(f"Python {sys.version.split()[0]} (clean venv from the base interpreter, envknit "
          f"non-editable); {uv_version}; {args.packages} pure-Python packages, {wheel_kib} KiB "
          f"of wheels; offline (index requests: 0); medians of {args.rounds} paired rounds",
          flush=True)
    print_rows(rows)
    if venvs:
        print(f"   bytes added on disk by 3 (median): envknit home {statistics.median(added):.0f}"
              f" B (max {max(added)} B); uv venv {venv_bytes:.0f} B apparent, "
              f"{venv_unshared:.0f} B not hard-linked to the uv cache", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
