"""What a newcomer reads: help texts, one wording per situation, aligned lists, search places."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests._cli_helpers import cli, make_small_project

pytest_plugins = ("tests._cli_fixtures",)
pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(("command", "positional"), [("add", "REQUIREMENT"), ("remove", "NAME")])
def test_add_remove_help_explains_arguments_and_default_env(
    tmp_path: Path, env: dict[str, str], command: str, positional: str
) -> None:
    out = cli(command, "--help", cwd=tmp_path, env=env).stdout
    assert re.search(rf"^  {positional}\s+\S", out, re.MULTILINE), out  # the argument has help
    assert re.search(r"--env NAME\s+.*\(default: 'default'\)", " ".join(out.split())), out


def test_run_help_is_full_help(tmp_path: Path, env: dict[str, str]) -> None:
    out = cli("run", "--help", cwd=tmp_path, env=env).stdout
    assert out.startswith("usage: envknit run [--env NAME] [--no-dev] [--verbose] -- CMD")
    for option in ("--env NAME", "--no-dev", "--verbose", "PYTHONPATH"):
        assert option in out, out
    assert "(default: 'default')" in out


def test_missing_config_is_worded_once(tmp_path: Path, env: dict[str, str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    expected = (f"envknit: error: no envknit.yaml in {empty.resolve()} or any parent directory; "
                "run 'envknit init' to create one")
    for args in (["add", "attrs"], ["remove", "attrs"], ["lock"], ["install"], ["verify"],
                 ["status"], ["run", "--", "true"]):
        proc = cli(*args, cwd=empty, env=env, expect=1)
        assert proc.stderr.strip() == expected, args


def test_store_list_columns_are_aligned(
    tmp_path: Path, env: dict[str, str], envknit_home: Path
) -> None:
    make_small_project(tmp_path / "p", env, "alpha==1.0", "tool")
    out = cli("store", "list", cwd=tmp_path / "p", env=env).stdout.splitlines()
    header, rows = out[0], out[1:]
    assert header.split() == ["NAME", "VERSION", "ENTRY", "SIZE", "TAGS"], out
    assert len(rows) == 3, out
    for column in ("VERSION", "ENTRY", "TAGS"):
        start = header.index(column)
        for row in rows:
            assert row[start - 1] == " " and row[start] != " ", (column, out)
    size_end = header.index("SIZE") + len("SIZE")
    assert all(row[size_end - 1] != " " and row[size_end] == " " for row in rows), out


def test_python_not_found_lists_what_was_searched(
    tmp_path: Path, env: dict[str, str]
) -> None:
    uv_pythons = tmp_path / "uv-pythons"
    run_env = {**env, "UV_PYTHON_INSTALL_DIR": str(uv_pythons)}
    proc = cli("init", "--python", "3.99", cwd=tmp_path, env=run_env)
    proc = cli("lock", cwd=tmp_path, env=run_env, expect=1)
    assert proc.stderr.count("envknit: error:") == 1
    message = proc.stderr.strip().splitlines()[-1]  # after "resolving default ..."
    assert message.startswith("envknit: error: no Python 3.99 interpreter found"), message
    assert "PATH (python3.99, python3, python)" in message
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    assert f"pyenv ({pyenv})" in message
    assert f"uv-managed ({uv_pythons}" in message
    assert "pyenv install 3.99" in message and "uv python install 3.99" in message

