"""Fixtures of the CLI tests, a pytest plugin: ``pytest_plugins = ("tests._cli_fixtures",)``.

As a plugin (not imported by the test modules) the session fixtures are shared by every CLI test
module: the fixture wheels are built once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._cli_helpers import build_fixture_wheels, uv_env

__all__ = ["env", "uv_cache", "wheels"]


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture wheels of ``build_fixture_wheels``, built once per session."""
    return build_fixture_wheels(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for the session (what a user's machine has after the first install)."""
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def env(wheels: Path, uv_cache: Path, envknit_home: Path) -> dict[str, str]:
    """The environment of the real ``envknit``: this test's store, uv offline on ``wheels``."""
    return uv_env(wheels, uv_cache, {"ENVKNIT_HOME": str(envknit_home)})
