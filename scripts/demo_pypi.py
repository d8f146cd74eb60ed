#!/usr/bin/env python3
"""Demo of envknit on real packages from the index: the CLI, two attrs side by side, numpy routed.

What a user does, start to finish, in a temporary project and store: ``envknit init / add / lock
/ install``, then attrs 23.1.0 and 24.2.0 at once in two sub-interpreters and in one routed
process, and numpy (whose C extension refuses sub-interpreters) run in a worker process. Skipped
with a note when the index cannot be reached (``UV_OFFLINE`` set, or no answer within 5 s).
Needs CPython 3.12+.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

OLD, NEW, NUMPY = "23.1.0", "24.2.0", "2.1.3"
INDEX = "https://pypi.org/simple/"


def index_reachable() -> str | None:
    """Why the index can't be used, or None when it answers."""
    if os.environ.get("UV_OFFLINE", "").lower() in ("1", "true", "yes"):
        return "UV_OFFLINE is set"
    index = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or INDEX
    url = index.rstrip("/") + "/attrs/"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5):
            return None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url} did not answer ({exc})"


def envknit_cli(*args: str, cwd: Path) -> None:
    """Run ``envknit ARGS`` as a user would, echoing the command and its output."""
    print(f"   $ envknit {' '.join(args)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "envknit", *args], cwd=cwd, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    for line in proc.stdout.splitlines():
        print(f"     {line}")
    if proc.returncode != 0:
        raise SystemExit(f"envknit {' '.join(args)} failed (exit status {proc.returncode})")
    if time.perf_counter() - start > 1:
        print(f"     ({time.perf_counter() - start:.1f} s)")


def show(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    if sys.version_info < (3, 12):
        print(f"This demo needs CPython 3.12+; this is {sys.version.split()[0]}.")
        return 1
    why_not = index_reachable()
    if why_not is not None:
        print(f"\n(real packages skipped: {why_not}; the demo above ran offline)")
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="envknit-demo-pypi-") as tmp:
        project, home = Path(tmp) / "project", Path(tmp) / "home"
        project.mkdir()
        os.environ["ENVKNIT_HOME"] = str(home)  # a throw-away store; uv's cache is yours
        show(f"7. real packages from the index, in a temporary project and store ({home})")
        envknit_cli("init", cwd=project)
        envknit_cli("add", f"attrs=={OLD}", cwd=project)
        envknit_cli("add", f"attrs=={NEW}", "--env", "new", cwd=project)
        envknit_cli("add", f"numpy=={NUMPY}", "--env", "np", cwd=project)
        envknit_cli("lock", cwd=project)
        envknit_cli("install", cwd=project)

        import envknit

        lock = project / "envknit.lock.yaml"
        show(f"8. attrs {OLD} and {NEW} side by side: two sub-interpreters, one process")
        code = ("import attrs, importlib.metadata\n"
                "@attrs.define\nclass Point:\n    x: int\n    y: int\n"
                "result = [importlib.metadata.version('attrs'), attrs.asdict(Point(1, 2))]")
        with envknit.SubInterpreterEnv("old") as old, envknit.SubInterpreterEnv("new") as new:
            old.configure_from_lock(lock, env_name="default")
            new.configure_from_lock(lock, env_name="new")
            for interp in (old, new):
                version, point = interp.eval_json(code)
                print(f"   {interp.name}: attrs {version}, asdict -> {point}")

        show("9. the same two versions routed by context in this interpreter (Gen 1)")
        envknit.configure_from_lock(lock)
        for version in (OLD, NEW):
            with envknit.use("attrs", version):
                import attrs

                where = Path(attrs.__file__ or "").relative_to(home)
                print(f"   with envknit.use('attrs', {version!r}): import attrs -> "
                      f"{importlib.metadata.version('attrs')} from $ENVKNIT_HOME/{where}")

        show(f"10. numpy {NUMPY}: compiled, so it can't be loaded twice here; routed to a worker")
        try:
            with envknit.use("numpy", NUMPY):
                pass
        except envknit.CExtensionError as exc:
            print(f"   envknit.use('numpy', {NUMPY!r}) -> {type(exc).__name__} "
                  f"(an extension module loads once per process)")
        with envknit.use("numpy", NUMPY, auto_worker=True) as np:
            print(f"   with envknit.use('numpy', {NUMPY!r}, auto_worker=True) as np:")
            print(f"       np.arange(6).reshape(2, 3).sum(axis=1).tolist() -> "
                  f"{np.arange(6).reshape(2, 3).sum(axis=1).tolist()}")
            print(f"       np.linspace(0, 1, 5).tolist() -> {np.linspace(0, 1, 5).tolist()}")
        with envknit.worker("numpy", NUMPY) as np:
            print(f"   envknit.worker('numpy', {NUMPY!r}): the same worker process, reused -> "
                  f"np.__version__ = {np.__version__!r}")

        show(f"11. numpy {NUMPY} asked of a sub-interpreter: judged in a throwaway process, then "
             "routed to a worker")
        with envknit.SubInterpreterEnv("np", fallback="worker") as interp:
            interp.configure_from_lock(lock, env_name="np")
            loads = interp.try_import("numpy")
            print(f"   interp.try_import('numpy') -> {loads} (the verdict is kept in "
                  "$ENVKNIT_HOME/verdicts; the host never loads the extension)")
            version = interp.eval_json("import numpy; result = numpy.__version__")
            print(f"   interp.eval_json('import numpy; result = numpy.__version__') -> "
                  f"{version!r} (from the worker)")
    print(f"\n(real-package part: {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
