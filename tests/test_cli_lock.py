"""``envknit lock``'s own path (cli._lock): the lock model's bytes, uv first, nothing left over."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from envknit import locking
from envknit.cli import _lock
from envknit.config import load_config
from envknit.lock import LOCK_FILENAME, load_lock
from tests._cli_helpers import PY, cli

pytest_plugins = ("tests._cli_fixtures",)
pytestmark = pytest.mark.timeout(180)

# dev packages, a marker (PyYAML writes that requirement), a mapping requirement, an
# environment name that reads as a number, an unpinned requirement
THREE = f"""\
environments:
  default:
    packages: ["alpha==1.0"]
    dev_packages: [tool]
  "2024":
    python_version: "{PY}"
    packages:
      - {{name: alpha, version: "2.0"}}
      - "gamma; python_version >= '3'"
  new:
    packages: [alpha>=2]
    dev_packages: ["tool==1.0"]
"""
# the modules `envknit lock` must not load once envknit.yaml is cached: each costs
# milliseconds of a command that uv answers in ~20
HEAVY = ("re", "json", "typing", "dataclasses", "pathlib", "subprocess", "tomllib", "tomli",
         "yaml", "argparse", "packaging", "hashlib", "enum", "collections", "functools",
         "tempfile", "shutil", "threading", "concurrent")


@pytest.fixture
def three(tmp_path: Path) -> Path:
    project = tmp_path / "three"
    project.mkdir()
    (project / "envknit.yaml").write_text(THREE)
    return project


def _model_lock(project: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                only: str | None = None) -> str:
    """The lock text the lock model (``envknit.locking``) writes for ``project``."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(project)
    config = load_config(project / "envknit.yaml")
    targets = [config.environment(only)] if only else list(config.environments.values())
    base = load_lock(project / LOCK_FILENAME) if only else None
    return locking.lock_environments(targets, base=base).dumps()


def test_the_lock_is_the_models_byte_for_byte(
    three: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cli("lock", cwd=three, env=env)
    assert first.stderr.splitlines() == [f"resolving {n} ..." for n in ("default", "2024", "new")]
    written = (three / LOCK_FILENAME).read_text(encoding="utf-8")
    assert "'2024':" in written and 'python_version >= "3"' in written
    cli("lock", cwd=three, env=env)  # envknit.yaml from the cache now: the same bytes
    assert (three / LOCK_FILENAME).read_text(encoding="utf-8") == written
    assert _model_lock(three, env, monkeypatch) == written
    # --env keeps the others, as the model's with_environments does
    (three / "envknit.yaml").write_text(THREE.replace('["tool==1.0"]', "[]"))
    cli("lock", "--env", "new", cwd=three, env=env)
    kept = (three / LOCK_FILENAME).read_text(encoding="utf-8")
    assert kept != written
    assert _model_lock(three, env, monkeypatch, only="new") == kept


def test_a_cached_lock_loads_no_heavy_module(three: Path, env: dict[str, str]) -> None:
    # without the marker (its requirement is packaging's to check, and PyYAML's to write)
    marker = """      - "gamma; python_version >= '3'"\n"""
    (three / "envknit.yaml").write_text(THREE.replace(marker, ""))
    cli("lock", cwd=three, env=env)
    paths = [str(Path(__file__).resolve().parent.parent),
             *(p for p in sys.path if p.endswith("site-packages"))]
    code = ("import sys\nsys.path[:0] = sys.argv[1:]\nimport site\nbefore = set(sys.modules)\n"
            "from envknit.cli import main\nstatus = main(['lock'])\n"
            "print(status, sorted(set(sys.modules) - before))\n")
    for _ in range(2):  # the first finds uv again (-S: this is no virtual environment)
        proc = subprocess.run([sys.executable, "-S", "-c", code, *paths], cwd=three, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    status, loaded = proc.stdout.splitlines()[-1].split(" ", 1)
    assert status == "0", proc.stdout + proc.stderr
    # packaging's own __init__ (its version: "alpha>=2" took its parser when it was cached)
    heavy = [m for m in eval(loaded) if m.split(".")[0] in HEAVY and m != "packaging"]
    assert not heavy, f"loads {heavy}"


def test_an_unreadable_kept_lock_stops_uv_and_leaves_no_folder(
    three: Path, env: dict[str, str], tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (three / LOCK_FILENAME).write_text("schema_version: '9.0'\nenvironments: {}\n")
    proc = cli("lock", "--env", "new", cwd=three, env={**env, "TMPDIR": str(scratch)},
               expect=1)
    assert proc.stderr.startswith("envknit: error: ") and proc.stderr.count("\n") == 1
    assert list(scratch.iterdir()) == []


def test_an_environment_without_its_python_fails_in_its_turn(
    three: Path, env: dict[str, str]
) -> None:
    (three / "envknit.yaml").write_text(THREE.replace(f'python_version: "{PY}"',
                                                      'python_version: "3.2"'))
    proc = cli("lock", cwd=three, env=env, expect=1)
    lines = proc.stderr.splitlines()
    assert lines[:3] == [f"resolving {n} ..." for n in ("default", "2024", "new")]
    assert lines[3].startswith("envknit: error: ") and "3.2" in lines[3]
    assert not (three / LOCK_FILENAME).exists()


def test_the_lock_file_name_is_the_models() -> None:
    assert _lock._LOCK_FILENAME == LOCK_FILENAME


def test_a_failing_uv_says_why_in_one_line(three: Path, env: dict[str, str]) -> None:
    (three / "envknit.yaml").write_text(THREE.replace("alpha>=2", "alpha>=9"))
    proc = cli("lock", cwd=three, env=env, expect=1)
    error = proc.stderr.splitlines()[-1]
    assert error.startswith("envknit: error: new: resolving for Python ") and "alpha" in error
    assert not (three / LOCK_FILENAME).exists()


def test_the_first_environment_in_order_reports(three: Path, env: dict[str, str]) -> None:
    text = THREE.replace('"alpha==1.0"', '"alpha>=7"').replace("alpha>=2", "alpha>=9")
    (three / "envknit.yaml").write_text(text)
    proc = cli("lock", cwd=three, env=env, expect=1)
    assert proc.stderr.splitlines()[-1].startswith("envknit: error: default: ")
    assert os.listdir(three) == ["envknit.yaml"]
