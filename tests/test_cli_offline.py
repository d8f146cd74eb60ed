"""A folder of wheels and nothing else: ``--find-links DIR --no-index`` and ``--offline``.

The index is a loopback server that counts requests: the folder-of-wheels workflow must send it
none, while the same commands without ``--no-index`` do ask it (the control).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests._cli_helpers import build_fixture_wheels, cli
from tests._loopback import counting_index

pytestmark = pytest.mark.timeout(180)

CODE = "import alpha, beta; print(alpha.__version__, beta.__version__)"


def _env(tmp_path: Path, home: Path, index: str) -> dict[str, str]:
    """No UV_* from the caller: only an index URL that points at the counting server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.pop("VIRTUAL_ENV", None)
    env.update(ENVKNIT_HOME=str(home), UV_CACHE_DIR=str(tmp_path / "uv-cache"),
               UV_INDEX_URL=index, PYTHONDONTWRITEBYTECODE="1")
    return env


def _project(root: Path, env: dict[str, str]) -> Path:
    root.mkdir()
    build_fixture_wheels(root / "wheels")
    cli("init", cwd=root, env=env)
    cli("add", "alpha==1.0", cwd=root, env=env)
    return root


def test_folder_of_wheels_sends_no_request(tmp_path: Path, envknit_home: Path) -> None:
    with counting_index() as (index, seen):
        env = _env(tmp_path, envknit_home, index)
        root = _project(tmp_path / "p", env)
        # relative to the working directory, as a user types it
        cli("lock", "--find-links", "./wheels", "--no-index", cwd=root, env=env)
        cli("install", "--find-links", "wheels", "--no-index", cwd=root, env=env)
        out = cli("run", "--", "python", "-c", CODE, cwd=root, env=env).stdout
        assert out.split() == ["1.0", "1.0"]
        assert seen == []


def test_offline_with_an_empty_cache(tmp_path: Path, envknit_home: Path) -> None:
    with counting_index() as (index, seen):
        env = _env(tmp_path, envknit_home, index)
        root = _project(tmp_path / "p", env)
        cli("lock", "--offline", "--find-links", "wheels", cwd=root, env=env)
        cli("install", "--offline", "--find-links", "wheels", cwd=root, env=env)
        assert seen == []


def test_control_without_no_index_the_index_is_asked(
    tmp_path: Path, envknit_home: Path
) -> None:
    with counting_index() as (index, seen):
        env = _env(tmp_path, envknit_home, index)
        root = _project(tmp_path / "p", env)
        cli("lock", "--find-links", "wheels", cwd=root, env=env)
        assert any(path.startswith("/simple/alpha") for path in seen), seen


def test_find_links_folder_must_exist(tmp_path: Path, envknit_home: Path) -> None:
    with counting_index() as (index, _):
        env = _env(tmp_path, envknit_home, index)
        root = _project(tmp_path / "p", env)
        proc = cli("lock", "--find-links", "nowhere", "--no-index", cwd=root, env=env, expect=1)
        assert proc.stderr.startswith("envknit: error: --find-links 'nowhere': no such directory")
        assert proc.stderr.count("\n") == 1
