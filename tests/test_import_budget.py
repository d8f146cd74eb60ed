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
RUN_BUDGET = 8  # the package, the error tree, cli, cli._run, cli._errors, zlib
# What a new worker's child loads before it serves (``python -I -S``, stdlib only).
CHILD_BUDGET = 55  # json, re, typing, traceback, the binary lane (3.13: 52)
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
    assert "yaml" in slow
    fast = _new_modules(code, cwd=project)
    assert "envknit.cli._run" in fast
    _check(fast, RUN_BUDGET)


def test_worker_child_stays_within_its_module_budget() -> None:
    root = Path(__file__).resolve().parent.parent / "envknit"
    child = next(p for p in (root / "_worker" / "_child.py", root / "worker" / "_child.py")
                 if p.is_file())
    # what the worker's child runs at start: isolated, no site, _child.py by path
    code = (
        "import sys\n"
        "_before = set(sys.modules)\n"
        "from importlib.util import module_from_spec, spec_from_file_location\n"
        "spec = spec_from_file_location('_envknit_worker_child', sys.argv[1])\n"
        "module = module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print('\\n'.join(sorted(set(sys.modules) - _before)))\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(child)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.split()
    assert "_envknit_worker_protocol" in loaded
    _check(loaded, CHILD_BUDGET)
