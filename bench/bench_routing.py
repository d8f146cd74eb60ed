#!/usr/bin/env python3
"""Gen 1 routed imports: cold and warm import costs, and use() against a bare ContextVar.

    python bench/bench_routing.py            # prints medians and ratios; ~1 minute

Figures (each a median of repeated runs, with its baseline measured in the same run):
1. cold import of a routed package (``with use(): import pkg``) vs a plain import of the very
   same files from ``sys.path``, each in a fresh process (goal: <= 1.15x); figures 1 and 2
   are the CPU time of the import in the child process;
2. cold import of 30 standard-library modules in a fresh process, router enabled vs not
   (goal: <= 1.05x);
3. extra cost of one ``import`` statement of an already-imported unrelated module with the
   router enabled (goal: < 0.5 us);
4. entering and leaving ``use()`` vs setting and resetting a bare ContextVar.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for tests._builders (fixture store entries)

SAMPLES = 21
COLD_SAMPLES = 41
PKG = "benchpkg"
N_MODULES = 30
STDLIB_CANDIDATES = [
    "decimal", "fractions", "statistics", "csv", "sqlite3", "xml.dom.minidom", "email.mime.text",
    "http.client", "urllib.request", "ftplib", "smtplib", "imaplib", "poplib", "mailbox",
    "tarfile", "zipfile", "gzip", "bz2", "lzma", "difflib", "textwrap", "pprint", "calendar",
    "uuid", "secrets", "hmac", "wave", "colorsys", "graphlib", "shelve", "dbm", "plistlib",
    "configparser", "netrc", "getpass", "cmd", "code", "codeop", "pdb", "timeit", "trace",
    "tracemalloc", "webbrowser", "xml.etree.ElementTree", "html.parser", "json.tool", "queue",
    "sched", "selectors", "socketserver", "xmlrpc.client", "ipaddress", "mimetypes", "zoneinfo",
]


def _module_source(i: int) -> str:
    funcs = "\n".join(
        f"def f{i}_{k}(x, y={k}):\n    total = 0\n    for n in range(x):\n"
        f"        total += n * y + {k}\n    return {{'n': total, 'k': {k}}}\n"
        for k in range(12)
    )
    classes = "\n".join(
        f"class C{i}_{k}:\n    '''Doc {k}.'''\n    a = {k}\n\n    def m(self):\n"
        f"        return json.dumps({{'a': self.a}})\n"
        for k in range(6)
    )
    table = ", ".join(f"'k{k}': {k * i}" for k in range(40))
    return f"import json\nimport os\n\nTABLE = {{{table}}}\n\n{funcs}\n{classes}\n"


def package_files(version: str) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        f"{PKG}/m{i}.py": _module_source(i) for i in range(N_MODULES)
    }
    rel = ", ".join(f"m{i}" for i in range(N_MODULES // 2))
    absolute = "\n".join(f"from {PKG}.m{i} import f{i}_0" for i in range(N_MODULES // 2, N_MODULES))
    files[f"{PKG}/__init__.py"] = f"__version__ = {version!r}\nfrom . import {rel}\n{absolute}\n"
    return files


def build(root: Path) -> tuple[Path, Path]:
    """A store under ``root`` with benchpkg 1.0.0; returns (lock path, its site dir)."""
    from envknit.store.layout import find_entry
    from tests._builders import make_store_entry, write_lock

    home = root / "home"
    os.environ["ENVKNIT_HOME"] = str(home)
    pkg = make_store_entry(home, PKG, "1.0.0", package_files("1.0.0"))
    other = make_store_entry(home, "otherlib", "2.0.0")  # a second managed name, never used
    lock = write_lock(root / "envknit.lock.yaml", {"bench": [pkg, other]})
    entry = find_entry(PKG, "1.0.0", pkg.hashes, sys.version_info[:2], home)
    assert entry is not None
    return lock, entry.site_dir


# -- child processes (this same file, run with --child) ------------------------------------
# The CPU time of the child process, not wall time: on a shared 2-core machine wall time mostly
# measures the other jobs; both sides of every figure are measured the same way.
_clock = time.process_time


def child(mode: str, args: list[str]) -> None:
    import envknit

    if mode == "cold-plain":
        sys.path.insert(0, args[0])
        t0 = _clock()
        __import__(PKG)
        dt = _clock() - t0
    elif mode == "cold-routed":
        envknit.configure_from_lock(args[0])
        envknit.enable()
        t0 = _clock()
        with envknit.use(PKG, "1.0.0"):
            __import__(PKG)
        dt = _clock() - t0
    elif mode == "stdlib":
        enabled, lock, *mods = args
        envknit.configure_from_lock(lock)  # same preparation; only enable() differs
        if enabled == "1":
            envknit.enable()
        t0 = _clock()
        for name in mods:
            __import__(name)
        dt = _clock() - t0
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(dt))


def run_child(mode: str, *args: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, *args],
        check=True, capture_output=True, text=True, env=os.environ.copy(),
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1]))


def paired(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[float, float]:
    """Medians of ``COLD_SAMPLES`` fresh-process runs of two child modes, interleaved (which
    one goes first alternates, so neither profits from the other warming the OS caches)."""
    run_child(*a)  # warm-up: writes the bytecode caches both modes read
    run_child(*b)
    xs, ys = [], []
    for i in range(COLD_SAMPLES):
        if i % 2:
            ys.append(run_child(*b))
            xs.append(run_child(*a))
        else:
            xs.append(run_child(*a))
            ys.append(run_child(*b))
    return statistics.median(xs), statistics.median(ys)


def stdlib_modules(lock: Path) -> list[str]:
    probe = (
        "import sys, envknit; envknit.configure_from_lock(sys.argv[1]); envknit.enable();"
        "print(' '.join(sys.modules))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe, str(lock)], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    mods = [m for m in STDLIB_CANDIDATES if m not in loaded and m.split(".")[0] not in loaded]
    return mods[:30]


# -- in-process measurements ----------------------------------------------------------------
def warm_import_cost() -> tuple[float, float]:
    """(baseline, routed) median microseconds of one ``import json`` of a loaded module."""
    import envknit

    number = 200_000
    base, routed = [], []
    for _ in range(SAMPLES):
        envknit.disable()
        base.append(min(timeit.repeat("import json", number=number, repeat=3)) / number * 1e6)
        envknit.enable()
        routed.append(min(timeit.repeat("import json", number=number, repeat=3)) / number * 1e6)
    return statistics.median(base), statistics.median(routed)


def use_cost() -> tuple[float, float]:
    """(bare ContextVar set+reset, with use(): pass) median microseconds."""
    import envknit

    var: contextvars.ContextVar[int] = contextvars.ContextVar("bench")

    def bare() -> None:
        token = var.set(1)
        var.reset(token)

    def routed() -> None:
        with envknit.use(PKG, "1.0.0"):
            pass

    number = 20_000
    bases, uses = [], []
    for _ in range(SAMPLES):
        bases.append(min(timeit.repeat(bare, number=number, repeat=3)) / number * 1e6)
        uses.append(min(timeit.repeat(routed, number=number, repeat=3)) / number * 1e6)
    return statistics.median(bases), statistics.median(uses)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    parsed = parser.parse_args()
    if parsed.child:
        child(parsed.child[0], parsed.child[1:])
        return 0
    import envknit

    print(
        f"Python {sys.version.split()[0]}, medians of {COLD_SAMPLES} fresh processes (1, 2) "
        f"and {SAMPLES} samples (3, 4)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        lock, site = build(Path(tmp))
        plain, routed = paired(("cold-plain", str(site)), ("cold-routed", str(lock)))
        print(
            f"1. cold import of a {N_MODULES + 1}-module package: plain {plain * 1e3:.2f} ms, "
            f"routed {routed * 1e3:.2f} ms, ratio {routed / plain:.3f}x (goal <= 1.15x)"
        )
        mods = stdlib_modules(lock)
        off, on = paired(("stdlib", "0", str(lock), *mods), ("stdlib", "1", str(lock), *mods))
        print(
            f"2. cold import of {len(mods)} stdlib modules: router off {off * 1e3:.2f} ms, "
            f"on {on * 1e3:.2f} ms, ratio {on / off:.3f}x (goal <= 1.05x)"
        )
        envknit.configure_from_lock(lock)
        base, with_router = warm_import_cost()
        print(
            f"3. 'import json' (already imported): {base:.3f} us without router, "
            f"{with_router:.3f} us with it; extra {with_router - base:.3f} us (goal < 0.5 us)"
        )
        bare, entered = use_cost()
        print(
            f"4. enter+leave: bare ContextVar set/reset {bare:.3f} us, "
            f"'with use(): pass' {entered:.3f} us, ratio {entered / bare:.1f}x"
        )
        envknit.disable()
    return 0


if __name__ == "__main__":
    sys.exit(main())
