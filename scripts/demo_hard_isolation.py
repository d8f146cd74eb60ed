#!/usr/bin/env python3
"""Demo of envknit's hard isolation (Gen 2): sub-interpreters with their own GIL.

Builds two versions of a tiny pure-Python package into a temporary store and lock, then shows
them running side by side, the host's packages invisible inside, C-extension detection, a
remote exception with its traceback, and a parallel CPU speed-up. Needs CPython 3.12+.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PACKAGE = "greeting"
SOURCES = {
    "1.0.0": 'def hello(name):\n    return "Hello, " + name\n',
    "2.0.0": 'def hello(name, punctuation="!"):\n    return f"Hello, {name}{punctuation}"\n',
}
CPU_JOB = "total = 0\nfor i in range(n):\n    total += i * i % 7\nresult = total"


def build_store(home: Path, workdir: Path) -> Path:
    """Two complete store entries of ``greeting`` and a lock with one environment per version."""
    from envknit.lock import DistFile, Lock, LockedEnvironment, LockedPackage, save_lock
    from envknit.store.layout import ENTRY_FILE, ENTRY_FORMAT, entry_dir

    python = "{}.{}".format(*sys.version_info[:2])
    environments = {}
    for version, body in SOURCES.items():
        files = {
            f"{PACKAGE}/__init__.py": f"__version__ = {version!r}\n{body}",
            f"{PACKAGE}-{version}.dist-info/METADATA":
                f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n",
        }
        sha = hashlib.sha256(f"{PACKAGE}=={version} demo".encode()).hexdigest()
        root = entry_dir(PACKAGE, version, sha, home)
        manifest = {}
        for rel, text in files.items():
            target = root / "site" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            manifest[f"site/{rel}"] = hashlib.sha256(text.encode()).hexdigest()
        filename = f"{PACKAGE}-{version}-py3-none-any.whl"
        (root / ENTRY_FILE).write_text(json.dumps({
            "format": ENTRY_FORMAT, "name": PACKAGE, "version": version, "sha256": sha,
            "filename": filename, "tags": ["py3-none-any"], "python": python,
            "files": manifest,
        }))
        env_name = "v" + version.split(".")[0]
        environments[env_name] = LockedEnvironment(
            name=env_name,
            python_version=python,
            packages=(LockedPackage(
                name=PACKAGE, version=version, dev=False, dependencies=(),
                files=(DistFile(name=filename, sha256=sha),),
            ),),
        )
    lock_path = workdir / "envknit.lock.yaml"
    save_lock(Lock(environments=environments, resolver_version="demo"), lock_path)
    return lock_path


def show(title: str) -> None:
    print(f"\n== {title}")


def main() -> int:
    if sys.version_info < (3, 12):
        print(f"Hard isolation needs CPython 3.12+; this is {sys.version.split()[0]}.")
        return 1
    with tempfile.TemporaryDirectory(prefix="envknit-demo-") as tmp:
        home = Path(tmp) / "home"
        os.environ["ENVKNIT_HOME"] = str(home)
        import envknit

        lock = build_store(home, Path(tmp))
        print(f"envknit {envknit.__version__} on Python {sys.version.split()[0]}: "
              f"two versions of {PACKAGE!r} in a temporary store ({home})")

        with envknit.SubInterpreterEnv("v1") as old, envknit.SubInterpreterEnv("v2") as new:
            show("1. two versions side by side, one process, two interpreters")
            old.configure_from_lock(lock, env_name="v1")
            new.configure_from_lock(lock, env_name="v2")
            code = f"import {PACKAGE}\nresult = [{PACKAGE}.__version__, {PACKAGE}.hello(who)]"
            for interp in (old, new):
                version, text = interp.eval_json(code, who="world")
                print(f"   env {interp.name}: {PACKAGE} {version} says {text!r}")
            print(f"   call('{PACKAGE}:hello') in v2 -> "
                  f"{new.call(f'{PACKAGE}:hello', 'envknit', punctuation='?')!r}")
            print(f"   same process id inside both: "
                  f"{old.eval_json('import os; result = os.getpid()') == os.getpid()}")

            show("2. the host's site-packages are invisible inside")
            paths = new.eval_json("import sys\nresult = sys.path")
            for path in paths:
                print(f"   sys.path: {path}")
            for name in ("envknit", "yaml"):
                try:
                    new.try_import(name)
                    print(f"   {name}: importable (unexpected)")
                except ImportError:
                    print(f"   {name}: not importable inside (the host has it)")

            show("3. C extensions that cannot load in a sub-interpreter are detected")
            print(f"   try_import('_testmultiphase') -> {new.try_import('_testmultiphase')}")
            print(f"   try_import('_testsinglephase') -> {new.try_import('_testsinglephase')}")
            try:
                new.try_import("_testsinglephase", raise_on_cext=True)
            except envknit.CExtIncompatibleError as exc:
                print(f"   raise_on_cext=True -> {type(exc).__name__}: {exc}")

            show("4. an exception inside arrives with its remote traceback")
            try:
                new.eval_json(textwrap.dedent("""\
                    def parse(text):
                        return int(text)
                    result = parse(value)
                """), value="forty-two")
            except envknit.SubInterpreterError as exc:
                print(textwrap.indent(str(exc), "   "))
            print(f"   ... and the interpreter is still usable: "
                  f"{new.eval_json('result = 6 * 7')}")

            show("5. a runaway loop is stopped by a timeout")
            start = time.perf_counter()
            try:
                new.eval_json("while True:\n    pass", timeout=0.5)
            except TimeoutError as exc:
                print(f"   {type(exc).__name__} after {time.perf_counter() - start:.2f} s: {exc}")

            show("6. CPU-bound code in two interpreters runs in parallel (own GIL each)")
            n = 2_000_000
            for interp in (old, new):
                interp.eval_json(CPU_JOB, n=1000)
            start = time.perf_counter()
            old.eval_json(CPU_JOB, n=n)
            new.eval_json(CPU_JOB, n=n)
            serial = time.perf_counter() - start
            start = time.perf_counter()
            futures = [old.submit(CPU_JOB, n=n), new.submit(CPU_JOB, n=n)]
            for future in futures:
                future.result()
            parallel = time.perf_counter() - start
            print(f"   one after the other: {serial:.2f} s; at the same time: {parallel:.2f} s "
                  f"-> speed-up {serial / parallel:.2f}x on {os.cpu_count()} CPU(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
