#!/usr/bin/env python3
"""Developer entry point: set up per-Python virtual environments, run the demo or the tests.

    python3 scripts/dev.py demo     # the main job: a demo of hard isolation (needs CPython 3.12+),
                                    # then the same on real packages when PyPI is reachable
    python3 scripts/dev.py test     # ruff + mypy, then the whole suite on every CPython 3.10-3.13
    python3 scripts/dev.py bench    # the benchmarks (bench/), printed as medians and ratios

Interpreters are looked up on PATH (``python3.X``) and in pyenv's versions folder. Each gets a
virtual environment in ``.venvs/<X.Y>`` with envknit installed in editable mode. Standard library
only: this script runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venvs"
VERSIONS = ("3.10", "3.11", "3.12", "3.13")
# the one venv that gets the heavy 'ray' extra, so tests/test_ray.py runs there (and only there)
RAY_PYTHON = "3.12"


def log(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def find_interpreters() -> dict[str, Path]:
    """Map 'X.Y' -> an interpreter, for every CPython 3.10-3.13 found."""
    found: dict[str, Path] = {}
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates: list[tuple[str, Path]] = []
    for ver in VERSIONS:
        exe = shutil.which(f"python{ver}")
        if exe:
            candidates.append((ver, Path(exe)))
    versions_dir = pyenv_root / "versions"
    if versions_dir.is_dir():
        for child in sorted(versions_dir.iterdir(), reverse=True):
            m = re.match(r"^(\d+\.\d+)\.\d+$", child.name)
            if m and m[1] in VERSIONS and (child / "bin" / "python").is_file():
                candidates.append((m[1], child / "bin" / "python"))
    for exe_name in ("python3", "python"):
        exe = shutil.which(exe_name)
        if exe:
            out = subprocess.run(
                [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, check=False,
            ).stdout.strip()
            if out in VERSIONS:
                candidates.append((out, Path(exe)))
    for ver, exe in candidates:
        if ver in found:
            continue
        out = subprocess.run(
            [str(exe), "-c",
             "import sys; print(sys.implementation.name, '%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        ).stdout.split()
        if out == ["cpython", ver]:
            found[ver] = exe
    return dict(sorted(found.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))))


def ensure_venv(ver: str, base: Path, extras: str) -> Path:
    """Create or refresh ``.venvs/<ver>`` and return its python."""
    venv = VENVS / ver
    py = venv / "bin" / "python"
    stamp_text = (ROOT / "pyproject.toml").read_bytes() + extras.encode() + str(base).encode()
    stamp = hashlib.sha256(stamp_text).hexdigest()
    stamp_file = venv / ".envknit-stamp"
    if py.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return py
    log(f"setting up {venv} ({base})")
    if venv.exists():
        shutil.rmtree(venv)
    quiet([str(base), "-m", "venv", str(venv)])
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "-q"]
    quiet([*pip, "install", "-U", "pip"])
    quiet([*pip, "install", "-e", f"{ROOT}[{extras}]"])
    stamp_file.write_text(stamp)
    return py


def quiet(cmd: list[str]) -> None:
    """Run an installer step with its output captured: shown only if the step fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        sys.exit(f"[dev] failed (exit status {proc.returncode}): {' '.join(cmd)}")


def setup(interpreters: dict[str, Path]) -> dict[str, Path]:
    newest = max(interpreters, key=lambda v: tuple(map(int, v.split("."))))
    def extras(ver: str) -> str:
        return "test" + (",lint" if ver == newest else "") + (",ray" if ver == RAY_PYTHON else "")

    return {ver: ensure_venv(ver, base, extras(ver)) for ver, base in interpreters.items()}


def require_gen2(interpreters: dict[str, Path]) -> None:
    if not any(tuple(map(int, v.split("."))) >= (3, 12) for v in interpreters):
        sys.exit("[dev] no CPython 3.12+ found (PATH or pyenv): the Gen 2 tests cannot run")


def run_lint(py: Path) -> int:
    bindir = py.parent
    rc = 0
    for cmd in (
        [str(bindir / "ruff"), "check", "envknit", "tests", "bench", "scripts"],
        [str(bindir / "mypy"), "--python-version", "3.10", "envknit"],
        [str(bindir / "mypy"), "--python-version", "3.13", "envknit"],
    ):
        log(" ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)))
        rc |= subprocess.run(cmd, cwd=ROOT, check=False).returncode
    return rc


def junit_counts(path: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) from a pytest junit XML file."""
    if not path.is_file():
        return (0, 1, 0)
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    tests = failed = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failed += int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    return (tests - failed - skipped, failed, skipped)


def cmd_test(args: argparse.Namespace) -> int:
    interpreters = find_interpreters()
    log("interpreters: " + ", ".join(f"{v} ({p})" for v, p in interpreters.items()))
    require_gen2(interpreters)
    venvs = setup(interpreters)
    rc = 0
    if not args.no_lint:
        rc |= run_lint(venvs[max(venvs, key=lambda v: tuple(map(int, v.split("."))))])
    totals = [0, 0, 0]
    report_dir = ROOT / ".venvs" / "reports"
    report_dir.mkdir(parents=True, exist_ok=True)
    for ver, py in venvs.items():
        report = report_dir / f"junit-{ver}.xml"
        report.unlink(missing_ok=True)
        cmd = [str(py), "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}",
               *args.pytest_args]
        log(f"pytest on Python {ver}")
        result = subprocess.run(cmd, cwd=ROOT, check=False)
        passed, failed, skipped = junit_counts(report)
        if result.returncode not in (0,) and failed == 0:
            failed = 1  # pytest failed before reporting (collection error, crash)
        log(f"Python {ver}: {passed} passed, {failed} failed, {skipped} skipped")
        for i, n in enumerate((passed, failed, skipped)):
            totals[i] += n
        rc |= result.returncode
    print(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped", flush=True)
    return 1 if rc else 0


def gen2_python() -> Path:
    interpreters = find_interpreters()
    require_gen2(interpreters)
    venvs = setup({v: p for v, p in interpreters.items() if v in ("3.12", "3.13")})
    return venvs[max(venvs, key=lambda v: tuple(map(int, v.split("."))))]


def cmd_demo(args: argparse.Namespace) -> int:
    py = gen2_python()
    rc = subprocess.run(
        [str(py), str(ROOT / "scripts" / "demo_hard_isolation.py"), *args.rest],
        cwd=ROOT, check=False,
    ).returncode
    if rc or args.offline:
        return rc
    # the same ideas on real packages from the index (skipped with a note when offline)
    return subprocess.run(
        [str(py), str(ROOT / "scripts" / "demo_pypi.py")], cwd=ROOT, check=False
    ).returncode


def cmd_bench(args: argparse.Namespace) -> int:
    interpreters = find_interpreters()
    require_gen2(interpreters)
    venvs = setup(interpreters)
    return subprocess.run(
        [str(venvs[max(venvs)]), str(ROOT / "bench" / "run.py"),
         "--pythons", *(str(p) for p in venvs.values()), *args.rest],
        cwd=ROOT, check=False,
    ).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("test", help="lint and run the suite on every CPython 3.10-3.13 found")
    t.add_argument("--no-lint", action="store_true", help="skip ruff and mypy")
    t.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    t.set_defaults(func=cmd_test)
    d = sub.add_parser("demo", help="the hard-isolation demo, then real packages if online")
    d.add_argument("--offline", action="store_true", help="only the demo on toy packages")
    d.add_argument("rest", nargs="*")
    d.set_defaults(func=cmd_demo)
    b = sub.add_parser("bench", help="the benchmarks")
    b.add_argument("rest", nargs="*")
    b.set_defaults(func=cmd_bench)
    args = parser.parse_args()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
