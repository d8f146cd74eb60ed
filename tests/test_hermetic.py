"""The suite is hermetic: every test has its own ENVKNIT_HOME and a uv cache under pytest's tmp."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _under(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root.resolve())


def test_own_home_and_uv_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    assert _under(os.environ["ENVKNIT_HOME"], base)
    assert _under(os.environ["UV_CACHE_DIR"], base)
    assert "network" not in Path(os.environ["UV_CACHE_DIR"]).name


@pytest.mark.network
def test_network_tests_share_a_session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # downloads are fetched once a session, still never into the machine's uv cache
    base = tmp_path_factory.getbasetemp()
    assert _under(os.environ["UV_CACHE_DIR"], base)
    assert Path(os.environ["UV_CACHE_DIR"]).name.startswith("uv-cache-network")
