"""envknit._uv: the user's UV_* settings pass through, no Python download; its scratch folder."""

from __future__ import annotations

from pathlib import Path

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


def test_the_scratch_folder_is_private_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envknit._uvlock import _remove, _scratch_folder

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    folder = Path(_scratch_folder())
    assert folder.parent == tmp_path and (folder.stat().st_mode & 0o777) == 0o700
    (folder / "main.in").write_text("x\n")
    _remove(str(folder))
    assert list(tmp_path.iterdir()) == []
    folder = Path(_scratch_folder())
    (folder / "sub").mkdir()  # not uv's doing, but removed all the same
    _remove(str(folder))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))  # tempfile's choice then
    folder = Path(_scratch_folder())
    assert folder.is_dir()
    _remove(str(folder))
    assert not folder.exists()


def test_uv_bin_is_the_one_the_uv_package_finds() -> None:
    # the shortcut for a virtual environment's bin folder names the same binary
    import uv

    from envknit._uv import uv_bin

    assert uv_bin() == uv.find_uv_bin()
