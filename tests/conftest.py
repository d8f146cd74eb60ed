"""Fixtures only: every test gets its own ENVKNIT_HOME and leaves the import system as it was.

Helpers that tests import live in ``tests/_helpers.py`` and its siblings, never here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Each part of envknit exposes a test-only reset hook; called after every test when present.
_RESET_HOOKS = (
    ("envknit.routing", "_reset_for_tests"),
    ("envknit._worker", "_reset_for_tests"),
    ("envknit._subinterp", "_reset_for_tests"),
)


def _is_envknit(name: str) -> bool:
    return name == "envknit" or name.startswith("envknit.")


@pytest.fixture(scope="session")
def _network_uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for the ``network`` tests: what they download is fetched once a session."""
    return tmp_path_factory.mktemp("uv-cache-network")


@pytest.fixture(autouse=True)
def _isolate(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("envknit-home")
    monkeypatch.setenv("ENVKNIT_HOME", str(home))
    # never the machine's uv cache: one changed there (a CA-injection step editing certifi
    # through a hard link) would fail the suite, and the suite must not change it either
    if request.node.get_closest_marker("network") is not None:
        uv_cache = request.getfixturevalue("_network_uv_cache")
    else:
        uv_cache = tmp_path_factory.mktemp("uv-cache")
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    modules = dict(sys.modules)
    meta_path = list(sys.meta_path)
    path = list(sys.path)
    path_hooks = list(sys.path_hooks)
    import builtins

    real_import = builtins.__import__
    try:
        yield home
    finally:
        for modname, hook in _RESET_HOOKS:
            if modname in sys.modules:
                func = getattr(importlib.import_module(modname), hook, None)
                if func is not None:
                    func()
        builtins.__import__ = real_import
        sys.meta_path[:] = meta_path
        sys.path[:] = path
        sys.path_hooks[:] = path_hooks
        sys.path_importer_cache.clear()
        for name in list(sys.modules):
            # envknit's own modules stay: the package caches lazily loaded names and state
            # (live interpreters, workers) that the reset hooks above must still reach.
            if name not in modules and not _is_envknit(name):
                del sys.modules[name]
        sys.modules.update(modules)


@pytest.fixture
def envknit_home(_isolate: Path) -> Path:
    """This test's ENVKNIT_HOME (already exported in the environment)."""
    return _isolate
