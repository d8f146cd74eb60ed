"""A lock used on another Python than the one it targets: every way in notices and says so.

An environment locked for OTHER (another CPython found on this machine, or a made-up one) holds
``pure`` (py3-none-any: loads anywhere) and ``fast`` (a wheel tagged for OTHER only).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest

import envknit
from envknit.errors import InterpreterNotFoundError
from envknit.pythons import find_python
from tests._builders import make_store_entry, package_files, write_lock
from tests._cli_helpers import cli
from tests._helpers import gen2

pytest_plugins = ("tests._cli_fixtures",)
pytestmark = pytest.mark.timeout(120)

RUNNING = "{}.{}".format(*sys.version_info[:2])
OTHER = "3.10" if RUNNING != "3.10" else "3.11"
OTHER_TAG = f"cp3{OTHER[2:]}-cp3{OTHER[2:]}-linux_x86_64"
PROBE = "import sys\nPY = '%d.%d' % sys.version_info[:2]\n"


def _have(version: str) -> bool:
    try:
        find_python(version)
    except InterpreterNotFoundError:
        return False
    return True


def _lock(tmp_path: Path, home: Path, *, compiled: bool, python: str = OTHER) -> Path:
    files = package_files("pure", "1.0")
    files["pure/__init__.py"] += PROBE  # pure.PY: the Python that imported it
    pkgs = [make_store_entry(home, "pure", "1.0", files)]
    if compiled:
        files = {**package_files("fast", "2.0"), f"fast/_speed.cpython-3{OTHER[2:]}.so": b"\0"}
        pkgs.append(make_store_entry(home, "fast", "2.0", files, tag=OTHER_TAG))
    return write_lock(tmp_path / "envknit.lock.yaml", {"old": pkgs}, python_version=python)


def test_use_of_a_package_that_loads_here_warns(tmp_path: Path, envknit_home: Path) -> None:
    lock = _lock(tmp_path, envknit_home, compiled=False)
    envknit.configure_from_lock(lock)  # every environment: a lock may hold some for workers
    with pytest.warns(envknit.TargetPythonWarning) as caught:
        use = envknit.use("pure", "1.0")
    message = str(caught[0].message)
    assert f"environment 'old' targets Python {OTHER}, this is Python {RUNNING}" in message
    assert f"re-lock it for Python {RUNNING}" in message and "'envknit lock --env old'" in message
    assert caught[0].filename == __file__  # points at the caller's line
    with use as pure:
        assert pure.__version__ == "1.0"


def test_configure_from_lock_naming_the_environment_warns(
    tmp_path: Path, envknit_home: Path
) -> None:
    lock = _lock(tmp_path, envknit_home, compiled=True)
    with pytest.warns(envknit.TargetPythonWarning, match=r"fast 2\.0 is installed for Python"):
        envknit.configure_from_lock(lock, env="old")


def test_use_of_a_package_built_for_the_other_python_raises(
    tmp_path: Path, envknit_home: Path
) -> None:
    lock = _lock(tmp_path, envknit_home, compiled=True)
    envknit.configure_from_lock(lock)
    with pytest.raises(envknit.TargetPythonError) as caught:
        envknit.use("fast", "2.0")
    assert isinstance(caught.value, RuntimeError)
    message = str(caught.value)
    assert message.startswith(f"{lock}: environment 'old' targets Python {OTHER}, this is "
                              f"Python {RUNNING}: fast 2.0 is installed for Python {OTHER} only")
    assert "envknit.worker()" in message


@gen2
def test_sub_interpreter_refuses_or_warns(tmp_path: Path, envknit_home: Path) -> None:
    compiled = _lock(tmp_path, envknit_home, compiled=True)
    with envknit.SubInterpreterEnv("t") as interp:
        with pytest.raises(envknit.TargetPythonError, match=r"fast 2\.0 is installed for Python"):
            interp.configure_from_lock(compiled, env_name="old")
        pure_only = _lock(tmp_path, envknit_home, compiled=False)
        with pytest.warns(envknit.TargetPythonWarning, match="its packages load here"):
            interp.configure_from_lock(pure_only, env_name="old")
        assert interp.eval_json("import pure; result = pure.__version__") == "1.0"


@pytest.mark.skipif(not _have(OTHER), reason=f"no CPython {OTHER} on this machine")
def test_worker_runs_the_target_python_and_says_so(
    tmp_path: Path, envknit_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = _lock(tmp_path, envknit_home, compiled=False)
    envknit.configure_from_lock(lock)
    with caplog.at_level(logging.INFO, logger="envknit"), envknit.worker("pure", "1.0") as pure:
        assert pure.__version__ == "1.0"
        assert pure.PY == OTHER  # the worker's own Python
    assert f"the worker runs Python {OTHER}" in caplog.text


def test_worker_for_a_python_that_is_not_here(tmp_path: Path, envknit_home: Path) -> None:
    lock = _lock(tmp_path, envknit_home, compiled=False, python="3.99")
    envknit.configure_from_lock(lock)
    with pytest.raises(InterpreterNotFoundError) as caught, envknit.worker("pure", "1.0"):
        pass
    message = str(caught.value)
    assert message.startswith(f"environment 'old' of {lock} targets Python 3.99, but no Python "
                              "3.99 interpreter found; searched PATH (python3.99")
    assert "'uv python install 3.99'" in message and "re-lock it" in message


@pytest.mark.skipif(not _have(OTHER), reason=f"no CPython {OTHER} on this machine")
def test_run_verbose_and_status_say_which_python(
    tmp_path: Path, env: dict[str, str]
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    cli("init", "--python", OTHER, cwd=root, env=env)
    cli("add", "alpha==1.0", cwd=root, env=env)
    cli("lock", cwd=root, env=env)
    cli("install", cwd=root, env=env)
    python = find_python(OTHER)
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    quiet = cli("run", "--", "python", "-c", code, cwd=root, env=env)
    assert (quiet.stdout.strip(), quiet.stderr) == (OTHER, "")
    loud = cli("run", "--verbose", "--", "python", "-c", code, cwd=root, env=env, expect=None)
    assert (loud.returncode, loud.stdout.strip()) == (0, OTHER), loud.stderr
    # the interpreter is a bare venv of the base Python (no site-packages but the locked ones)
    assert re.fullmatch(rf"envknit: run: environment 'default' uses Python {OTHER} \(\S+\) for "
                        rf"python, python3 and python{OTHER}; 2 package directories on "
                        r"PYTHONPATH\n", loud.stderr), loud.stderr
    status = cli("status", cwd=root, env=env).stdout.splitlines()
    assert status[0].startswith(f"envknit runs on Python {sys.version.split()[0]} (")
    assert "'envknit run' and workers use each environment's own Python" in status[0]
    assert status[1].startswith(f"default: Python {OTHER} ({python}), 2 locked")
