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
   of the same requirement for the same target (goal <= 2x); both with a warm uv cache;
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--packages", type=int, default=10)
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=set(FIGURES),
                        help="comma-separated figures to measure: lock, cold, warm, uvcache "
                        "(default: all)")
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="also time the install figures of the envknit of CHECKOUT (say, "
                        "main before a change) in the same rounds: 'before' rows")
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
        for cmd in (lock_cmd, compile_cmd):
            must_run(cmd, cwd=project, env=lock_env)
        if "lock" in args.only:
            rows.append(row(
                paired({"envknit": lambda: must_run(lock_cmd, cwd=project, env=lock_env),
                        "uv": lambda: must_run(compile_cmd, cwd=project, env=lock_env)},
                       args.rounds),
                f"1. envknit lock ({args.packages} packages)", "envknit", "uv",
                "uv pip compile --generate-hashes", max_ratio=2.0))

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
