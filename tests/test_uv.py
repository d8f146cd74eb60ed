"""The environment uv runs with: the user's UV_* settings pass through, Python downloads never."""

from __future__ import annotations

import pytest

from envknit._uv import uv_environ


def test_uv_variables_pass_through_and_python_downloads_are_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = {
        "UV_INDEX_URL": "https://example.invalid/simple",
        "UV_FIND_LINKS": "/wheels",
        "UV_EXTRA_INDEX_URL": "https://extra.invalid/simple",
        "UV_OFFLINE": "1",
        "UV_CACHE_DIR": "/cache",
    }
    for key, value in user.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "automatic")  # the user's wish is overridden
    monkeypatch.setenv("VIRTUAL_ENV", "/some/venv")  # --python/--target decide, not the shell
    env = uv_environ()
    assert {k: env[k] for k in user} == user
    assert env["UV_PYTHON_DOWNLOADS"] == "never"
    assert "VIRTUAL_ENV" not in env
