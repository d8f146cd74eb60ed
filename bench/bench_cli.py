#!/usr/bin/env python3
"""Store and CLI benchmarks: envknit install / run against uv venv + uv pip install / python.

    python bench/bench_cli.py [--repeat N] [--packages N]

Offline: the script builds its own wheels (pure Python, a few hundred KB each) in a temporary
folder and points uv at them (UV_FIND_LINKS, and UV_OFFLINE=1 so that no index is asked). Every
figure is a median of repeated runs, printed with the baseline measured in the same run and the
ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests._builders import build_wheel, package_files  # noqa: E402

ENVKNIT = Path(sys.executable).parent / "envknit"
PY = "{}.{}".format(*sys.version_info[:2])
# The CLI by itself: the envknit package's __init__ (the library's public API, which imports
# the other parts of envknit) replaced by an empty package, then the same main().
# It also reports its own CPU time (start-up, imports, its work; not uv's, which runs in a
# child): a figure the other jobs on a shared machine disturb far less than wall time.
STUB = (
    "import atexit, sys, time, types; m = types.ModuleType('envknit'); "
    f"m.__path__ = [{str(HERE.parent / 'envknit')!r}]; sys.modules['envknit'] = m; "
    "atexit.register(lambda: print('CPU', time.process_time(), file=sys.stderr)); "
    "from envknit.cli import main; sys.exit(main(sys.argv[1:]))"
)


def uv_bin() -> str:
    import uv

    return str(uv.find_uv_bin())


def make_wheels(dest: Path, count: int) -> list[str]:
    """``count`` packages, each with 20 modules of ~10 KB; pkg0 depends on all the others."""
    names = [f"benchpkg{i}" for i in range(count)]
    for i, name in enumerate(names):
        body = "".join(f"def f{j}(x):\n    return x + {j}\n\n" for j in range(400))
        modules = {f"mod{k}.py": body for k in range(20)}
        requires = [f"{n}==1.0" for n in names[1:]] if i == 0 else []
        build_wheel(dest, name, "1.0", package_files(name, "1.0", modules), requires=requires)
    return names


CPU_SECONDS: list[float] = []  # what STUB reported, one per run


def run(cmd: list[str], cwd: Path, env: Mapping[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=dict(env), capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    lines = proc.stderr.splitlines()
    if lines and lines[-1].startswith("CPU "):
        CPU_SECONDS.append(float(lines[-1].split()[1]))


def timed(func: Callable[[], None]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


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


def report(label: str, ours: list[float], base: list[float], goal: float) -> None:
    a, b = statistics.median(ours), statistics.median(base)
    ratio = a / b if b else float("inf")
    verdict = "meets" if ratio <= goal else "misses"
    print(f"{label}: envknit {a * 1000:.1f} ms, baseline {b * 1000:.1f} ms, "
          f"ratio {ratio:.2f}x (goal <= {goal}x: {verdict})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--run-repeat", type=int, default=30)
    parser.add_argument("--packages", type=int, default=10)
    args = parser.parse_args()
    uv = uv_bin()
    with tempfile.TemporaryDirectory(prefix="envknit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        names = make_wheels(tmp / "wheels", args.packages)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL"))}
        base_env.update(UV_FIND_LINKS=str(tmp / "wheels"), UV_OFFLINE="1",
                        UV_PYTHON_DOWNLOADS="never")
        project = tmp / "project"
        project.mkdir()
        env = {**base_env, "ENVKNIT_HOME": str(tmp / "home0"), "UV_CACHE_DIR": str(tmp / "c0")}
        run([str(ENVKNIT), "init"], project, env)
        run([str(ENVKNIT), "add", f"{names[0]}==1.0"], project, env)
        run([str(ENVKNIT), "lock"], project, env)
        # the same pins, with hashes, for the uv baseline
        pins = tmp / "pins.txt"
        lines = []
        for wheel in sorted((tmp / "wheels").glob("*.whl")):
            dist = wheel.name.split("-")[0]
            sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
            lines.append(f"{dist}==1.0 --hash=sha256:{sha}\n")
        pins.write_text("".join(lines))
        print(f"{args.packages} pure-Python packages, "
              f"{tree_bytes(tmp / 'wheels') // 1024} KiB of wheels; Python {PY}; "
              f"medians of {args.repeat} (installs) / {args.run_repeat} (run)", flush=True)

        def uv_install(i: int, cache: Path) -> None:
            venv = tmp / f"venv{i}"
            shutil.rmtree(venv, ignore_errors=True)
            e = {**base_env, "UV_CACHE_DIR": str(cache)}
            run([uv, "venv", "-q", "--python", sys.executable, str(venv)], tmp, e)
            run([uv, "pip", "install", "-q", "--no-deps", "--require-hashes", "--python",
                 str(venv / "bin" / "python"), "-r", str(pins)], tmp, e)

        def ek_install(
            home: Path, cache: Path, where: Path = project, cmd: list[str] | None = None
        ) -> None:
            e = {**base_env, "ENVKNIT_HOME": str(home), "UV_CACHE_DIR": str(cache)}
            run([*(cmd or [str(ENVKNIT)]), "install"], where, e)

        # 1. cold: empty store / empty venv, empty uv cache for both
        # (the three are interleaved so that the machine's noise hits them alike)
        ours, base, stubbed = [], [], []
        for i in range(args.repeat):
            ours.append(timed(lambda i=i: ek_install(tmp / f"cold-home{i}", tmp / f"ek-c{i}")))
            base.append(timed(lambda i=i: uv_install(i, tmp / f"uv-c{i}")))
            stubbed.append(timed(lambda i=i: ek_install(
                tmp / f"cold-stub{i}", tmp / f"ek-s{i}", cmd=[sys.executable, "-c", STUB])))
        report("cold install", ours, base, 1.3)
        report("  same, without importing envknit/__init__", stubbed, base, 1.3)
        print(f"  envknit's own CPU time in that install (start-up, imports, its work; uv "
              f"excluded): {statistics.median(CPU_SECONDS) * 1000:.1f} ms", flush=True)

        # 2. warm: a second project whose packages are all in the store, vs a warm uv cache
        home, cache = tmp / "cold-home0", tmp / "ek-c0"
        second = tmp / "second"
        second.mkdir()
        shutil.copy(project / "envknit.yaml", second)
        shutil.copy(project / "envknit.lock.yaml", second)
        ours, base, ours_bytes, base_bytes, base_unshared = [], [], [], [], []
        for i in range(args.repeat):
            before = tree_bytes(home)
            ours.append(timed(lambda: ek_install(home, cache, second)))
            ours_bytes.append(tree_bytes(home) - before)
            base.append(timed(lambda i=i: uv_install(100 + i, tmp / "uv-c0")))
            base_bytes.append(tree_bytes(tmp / f"venv{100 + i}"))
            base_unshared.append(tree_bytes(tmp / f"venv{100 + i}", unshared_only=True))
        report("warm second project", ours, base, 1.0)
        added = statistics.median(ours_bytes)
        print(f"bytes added on disk (median): envknit home {added:.0f} B "
              f"(max {max(ours_bytes)} B: the project registration), "
              f"uv venv {statistics.median(base_bytes):.0f} B apparent, "
              f"{statistics.median(base_unshared):.0f} B not hard-linked to the uv cache "
              "(goal: the store adds no package bytes)", flush=True)

        # 3. envknit run -- python -c pass  vs  python -c pass
        e = {**base_env, "ENVKNIT_HOME": str(home), "UV_CACHE_DIR": str(cache)}
        run([str(ENVKNIT), "run", "--", "python", "-c", "pass"], project, e)  # fills the cache
        ours, base, stubbed = [], [], []
        for _ in range(args.run_repeat):
            ours.append(timed(lambda: run([str(ENVKNIT), "run", "--", "python", "-c", "pass"],
                                          project, e)))
            base.append(timed(lambda: run([sys.executable, "-c", "pass"], project, e)))
            stubbed.append(timed(lambda: run([sys.executable, "-c", STUB, "run", "--", "python",
                                              "-c", "pass"], project, e)))
        report("envknit run -- python -c pass", ours, base, 2.5)
        report("  same, without importing envknit/__init__", stubbed, base, 2.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
