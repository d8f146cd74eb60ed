"""Start-up budgets as module counts: what ``import envknit`` and ``envknit run`` load.

Timing asserts flake on a shared machine; the modules a path imports do not, and they are what
start-up time is made of (``python -X importtime`` shows the rest). Each check runs in a fresh
interpreter started with ``-S`` (so that no ``.pth`` file, such as the editable install's import
finder, loads modules first and hides them from the count), which imports ``site`` by hand
(without processing ``.pth`` files) and then counts the modules that appear in ``sys.modules``.
The budgets are today's numbers: a change that needs more must raise them here, on purpose,
and say why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._builders import make_store_entry, write_lock

pytestmark = pytest.mark.timeout(120)

# The largest count over CPython 3.10-3.13 (they differ: importlib.util pulls in contextlib on
# 3.10/3.11, say). Before the start-up work of issue 12: 44, 47 and 58 (the child 58 before
# the binary lane, 55 with it and tempfile loaded late).
# What `import envknit` may load, envknit's own modules included: the package, its version and
# the error tree (and __future__).
IMPORT_BUDGET = 4
# What `envknit run` may load on its fast path (a fresh cache) before it execs the command.
RUN_BUDGET = 9  # the package, the error tree, cli, cli._run, cli._errors, _where, zlib
# What a new worker's child (``python -I -S _boot.py``, stdlib only) has loaded once it has
# answered the handshake and an import request, beyond a bare ``python -I -S script.py``: os and
# site (which `python -c pass` loads too), the child, the wire format, the runner, _json, select,
# struct, __future__. Counted this way the child loaded 56 before (json, re, enum, typing,
# importlib.util, signal, base64, fcntl, the lane...).
CHILD_BUDGET = 17
# What `import envknit; envknit.configure_from_lock(LOCK)` may load when the lock's table is
# cached ($ENVKNIT_HOME/cache, envknit._lockcache): envknit's routing modules, the cache
# module, envknit._where, collections (for a namedtuple), contextvars, zlib (3.13: 27). Before
# the cache: 118 (yaml, packaging, dataclasses, pathlib, typing, json, csv...).
CONFIGURE_BUDGET = 28
# The same when the table is not cached (a changed lock or store): the cached path's, the lock
# and the store read without the lock model, pathlib or json (envknit._lockread, _lockfast,
# _textfile) and the cache's writer (envknit._atomic, fcntl) (3.13: 32). Before: 118.
CONFIGURE_MISS_BUDGET = 33
# What `envknit install` may load when every locked package is already in the store (a second
# project): the lock (read without PyYAML, envknit._lockread), the store, the project's
# registration, and what they import (dataclasses with inspect, pathlib, re, json, hashlib,
# envknit._lockfast for pure_python_fits).
# Before issue 12's third pass: 126 on 3.13 (PyYAML, typing, subprocess, shutil...).
INSTALL_BUDGET = 80
# What the install path never loads when uv has nothing to do (yaml, argparse: ~10 ms each).
INSTALL_HEAVY = ("argparse", "yaml", "packaging", "subprocess", "typing", "shutil", "tempfile",
                 "threading", "asyncio", "csv", "base64")
# Never on these paths: each costs milliseconds, and neither path needs it.
HEAVY = ("argparse", "yaml", "packaging", "dataclasses", "pathlib", "subprocess", "tempfile",
         "inspect", "asyncio", "threading")

# argv: the checkout and the site-packages folders (yaml, packaging), which -S leaves out
_PRELUDE = "import sys\nsys.path[:0] = sys.argv[1:]\nimport site\n_before = set(sys.modules)\n"
_PATHS = [str(Path(__file__).resolve().parent.parent),
          *(p for p in sys.path if p.endswith("site-packages"))]
_REPORT = "print('\\n'.join(sorted(set(sys.modules) - _before)))\n"


def _new_modules(code: str, cwd: Path | None = None) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-S", "-c", _PRELUDE + code, *_PATHS], capture_output=True, text=True,
        timeout=60, check=False, cwd=cwd,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def _check(loaded: list[str], budget: int) -> None:
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert not heavy, f"loads {heavy}"
    assert len(loaded) <= budget, f"{len(loaded)} modules > {budget}: {loaded}"


def test_import_envknit_stays_within_its_module_budget() -> None:
    loaded = _new_modules("import envknit\n" + _REPORT)
    assert "envknit" in loaded
    _check(loaded, IMPORT_BUDGET)


def test_envknit_run_fast_path_stays_within_its_module_budget(tmp_path: Path) -> None:
    home = Path(os.environ["ENVKNIT_HOME"])
    project = tmp_path / "project"
    project.mkdir()
    (project / "envknit.yaml").write_text("environments:\n  default:\n    packages: [alpha]\n")
    write_lock(project / "envknit.lock.yaml", {"default": [make_store_entry(home, "alpha", "1.0")]})
    # the command's exec is replaced by a report of what was loaded up to that point
    code = (
        "import os\n"
        "def _exec(*args):\n"
        "    sys.stdout.write('\\n'.join(sorted(set(sys.modules) - _before)))\n"
        "    sys.stdout.flush()\n"
        "    os._exit(0)\n"
        "os.execvpe = _exec\n"
        "from envknit.cli import main\n"
        "main(['run', '--', 'true'])\n"
    )
    slow = _new_modules(code, cwd=project)  # the first run reads the lock and fills the cache
    assert "envknit.lock" in slow
    fast = _new_modules(code, cwd=project)
    assert "envknit.cli._run" in fast
    _check(fast, RUN_BUDGET)


def test_install_from_a_full_store_stays_within_its_module_budget(tmp_path: Path) -> None:
    home = Path(os.environ["ENVKNIT_HOME"])
    project = tmp_path / "project"
    project.mkdir()
    (project / "envknit.yaml").write_text("environments:\n  default:\n    packages: [alpha]\n")
    write_lock(project / "envknit.lock.yaml",
               {"default": [make_store_entry(home, "alpha", "1.0"),
                            make_store_entry(home, "beta", "2.0")]})
    code = ("import os\nsys.stdout = open(os.devnull, 'w')\n"
            "from envknit.cli import main\n"
            "assert main(['install']) == 0\nsys.stdout = sys.__stdout__\n" + _REPORT)
    loaded = _new_modules(code, cwd=project)
    assert "envknit.store.install" in loaded
    heavy = [m for m in loaded if m.split(".")[0] in INSTALL_HEAVY]
    assert not heavy, f"loads {heavy}"
    assert len(loaded) <= INSTALL_BUDGET, f"{len(loaded)} modules > {INSTALL_BUDGET}: {loaded}"


def test_configure_from_lock_on_a_cached_lock_stays_within_its_module_budget(
    tmp_path: Path,
) -> None:
    home = Path(os.environ["ENVKNIT_HOME"])
    project = tmp_path / "project"
    project.mkdir()
    envs = {"a": [make_store_entry(home, "alpha", "1.0"), make_store_entry(home, "beta", "1.0")],
            "b": [make_store_entry(home, "alpha", "2.0")]}
    write_lock(project / "envknit.lock.yaml", envs)
    old = time.time() - 3600  # a store directory changed just now is not cached (racy mtime)
    for root, dirs, _ in os.walk(home):
        for name in dirs:
            os.utime(os.path.join(root, name), (old, old))
    code = ("import envknit\n"
            "assert envknit.configure_from_lock('envknit.lock.yaml') == 3\n" + _REPORT)
    slow = _new_modules(code, cwd=project)  # reads the lock and the store, fills the cache
    assert "envknit._lockfast" in slow
    _check(slow, CONFIGURE_MISS_BUDGET)
    heavy = [m for m in slow if m.split(".")[0] in ("typing", "re", "json", "enum")]
    assert not heavy, f"a miss loads {heavy}"
    assert list((home / "cache").glob("routes-*.txt"))
    fast = _new_modules(code, cwd=project)
    assert "envknit.routing._registry" in fast
    heavy = [m for m in fast if m.split(".")[0] in (*HEAVY, "typing", "re", "json", "enum")]
    assert not heavy, f"loads {heavy}"
    assert len(fast) <= CONFIGURE_BUDGET, f"{len(fast)} modules > {CONFIGURE_BUDGET}: {fast}"


def _modules_of(python: str, script: Path) -> set[str]:
    proc = subprocess.run([python, "-I", "-S", str(script)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_worker_child_stays_within_its_module_budget(tmp_path: Path) -> None:
    from envknit._worker import _pool

    # a real worker (python -I -S _boot.py), after the handshake and an import request; its
    # modules against those of a bare `python -I -S script.py` of this interpreter
    script = tmp_path / "bare.py"
    script.write_text("import sys\nprint('\\n'.join(sys.modules))\n")
    bare = _modules_of(sys.executable, script)
    worker = _pool.Worker(_pool.WorkerSpec(python=sys.executable, paths=(), label="budget"))
    try:
        worker.request("import", {"module": "sys"}, timeout=60, decode=lambda ref: ref)
        loaded = worker.request(
            "eval_json", {"code": "import sys\nresult = sorted(sys.modules)"}, timeout=60
        )
    finally:
        worker.close()
    new = sorted(set(loaded) - bare)
    assert "_envknit_worker_protocol" in new
    _check(new, CHILD_BUDGET)
    # the lane (json, re, base64, mmap) loads when a buffer first travels, not at start
    lazy = [m for m in new if m.split(".")[0] in ("json", "re", "enum", "typing", "base64",
                                                  "_envknit_worker_lane", "traceback")]
    assert not lazy, f"loads {lazy} at start"
