"""README.md and docs/getting-started.md walked end to end, offline, on fixture wheels.

Every documented command runs as written (with bash, in one project folder per page) and every
Python block runs as a script; what a page says a command prints is asserted. A command that
drifts from the docs fails here. Install lines are walked by test_install.py (they need PyPI).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests._cli_helpers import ENVKNIT
from tests._docwalk import (
    GETTING_STARTED,
    README,
    Block,
    build_doc_wheels,
    doc_env,
    shell_lines,
    walk,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def doc_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_doc_wheels(tmp_path_factory.mktemp("doc-wheels"))


def test_readme_walkthrough(doc_wheels: Path, tmp_path: Path, envknit_home: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    env = doc_env(doc_wheels, tmp_path, envknit_home, ENVKNIT.parent)
    ran = walk(README, python=sys.executable, cwd=project, env=env)
    # init, add x2, lock && install, run; the Gen 1 block (+ the Gen 2 block on 3.12+)
    assert len(ran) >= (7 if sys.version_info >= (3, 12) else 6), ran


def test_getting_started_walkthrough(
    doc_wheels: Path, tmp_path: Path, envknit_home: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "wheels").symlink_to(doc_wheels)  # the page's "./wheels" folder
    env = doc_env(doc_wheels, tmp_path, envknit_home, ENVKNIT.parent)
    ran = walk(GETTING_STARTED, python=sys.executable, cwd=project, env=env)
    # init + 4 adds, the yaml, lock, install, 3 runs, status/doctor/verify/gc, the offline 3
    assert len(ran) >= 17, ran


def test_walker_reads_promises() -> None:
    """The walker itself: trailing comments promise output only on `envknit run` lines."""
    block = Block(lang="sh", where="x.md:1", line=1, text=(
        'envknit init        # writes envknit.yaml\n'
        'envknit run -- python -c "print(1)  # not a comment"   # 1\n'
        "# a comment line\n"
        "envknit run -- pytest -q   # runs the tests\n"
    ))
    lines = shell_lines(block)
    assert [(ln.command, ln.expected) for ln in lines] == [
        ("envknit init", None),
        ('envknit run -- python -c "print(1)  # not a comment"', "1"),
        ("envknit run -- pytest -q", None),
    ]
    assert [ln.where for ln in lines] == ["x.md:1", "x.md:2", "x.md:4"]
