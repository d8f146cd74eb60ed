"""The main job, ``scripts/dev.py demo``: the toy demo offline, the real-package part online."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._helpers import gen2

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"

pytestmark = [gen2, pytest.mark.slow, pytest.mark.timeout(300)]


def run_script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(SCRIPTS / name)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout + proc.stderr
    return proc


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.update(UV_CACHE_DIR=str(tmp_path / "uv-cache"), **extra)
    return env


def test_toy_demo_and_offline_note(tmp_path: Path) -> None:
    out = run_script("demo_hard_isolation.py", _env(tmp_path)).stdout
    assert "env v1: greeting 1.0.0 says 'Hello, world'" in out
    assert "raise_on_cext=True -> CExtIncompatibleError" in out
    offline = run_script("demo_pypi.py", _env(tmp_path, UV_OFFLINE="1")).stdout
    assert offline.strip() == (
        "(real packages skipped: UV_OFFLINE is set; the demo above ran offline)"
    )


@pytest.mark.network
def test_real_packages_from_the_index(tmp_path: Path) -> None:
    out = run_script("demo_pypi.py", _env(tmp_path)).stdout
    assert "old: attrs 23.1.0, asdict -> {'x': 1, 'y': 2}" in out
    assert "new: attrs 24.2.0, asdict -> {'x': 1, 'y': 2}" in out
    assert "with envknit.use('attrs', '24.2.0'): import attrs -> 24.2.0 from" in out
    assert "envknit.use('numpy', '2.1.3') -> CExtensionError" in out
    assert "np.arange(6).reshape(2, 3).sum(axis=1).tolist() -> [3, 12]" in out
    assert "interp.try_import('numpy') -> False" in out
    assert "numpy.__version__') -> '2.1.3' (from the worker)" in out
    assert "np.__version__ = '2.1.3'" in out
