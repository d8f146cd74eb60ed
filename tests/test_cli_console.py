"""The console entry point: ``main()``, then ``os._exit`` once output is flushed, when safe."""

from __future__ import annotations

import atexit
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import envknit.cli as cli_pkg
from tests._cli_helpers import ENVKNIT

pytestmark = pytest.mark.timeout(120)


class _Exited(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@pytest.fixture
def fake_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    def _exit(status: int) -> None:
        raise _Exited(status)

    monkeypatch.setattr(os, "_exit", _exit)


@pytest.mark.usefixtures("fake_exit")
def test_console_ends_with_os_exit_after_flushing(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    flushed: list[bool] = []

    class Tracked(io.StringIO):
        def flush(self) -> None:
            flushed.append(True)
            super().flush()

    monkeypatch.setattr(sys, "stdout", Tracked())
    monkeypatch.setattr(sys, "stderr", out)
    monkeypatch.setattr(cli_pkg, "main", lambda: 3)
    monkeypatch.setattr(cli_pkg, "_teardown_needed", lambda: False)
    with pytest.raises(_Exited) as exc:
        cli_pkg.console()
    assert exc.value.status == 3
    assert flushed


@pytest.mark.usefixtures("fake_exit")
def test_console_returns_when_a_flush_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(io.StringIO):
        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Broken())
    monkeypatch.setattr(cli_pkg, "main", lambda: 0)
    monkeypatch.setattr(cli_pkg, "_teardown_needed", lambda: False)
    assert cli_pkg.console() == 0  # sys.exit then reports it, as without console()


@pytest.mark.usefixtures("fake_exit")
def test_console_keeps_the_teardown_when_something_registered_cleanup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli_pkg, "main", lambda: 5)
    callback = lambda: None  # noqa: E731
    atexit.register(callback)
    try:
        assert cli_pkg._teardown_needed()
        assert cli_pkg.console() == 5
    finally:
        atexit.unregister(callback)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        assert cli_pkg._teardown_needed()
    finally:
        stop.set()
        thread.join()


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60, check=False, cwd=Path(__file__).parent)


_FAST = ("import os, sys\n"
         "real = os._exit\n"
         "def _exit(status):\n"
         "    sys.stderr.write(f'fast exit {status}\\n'); sys.stderr.flush(); real(status)\n"
         "os._exit = _exit\n")


def test_python_m_envknit_takes_the_fast_exit_with_its_status(tmp_path: Path) -> None:
    code = _FAST + "import runpy\nsys.argv[0] = 'envknit'\nrunpy.run_module('envknit', " \
        "run_name='__main__')\n"
    # no envknit.yaml above tmp_path's cwd: status 1 and one error line, then os._exit(1)
    proc = subprocess.run([sys.executable, "-c", code, "install"], capture_output=True,
                          text=True, timeout=60, check=False, cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("envknit: error: ") and lines[1:] == ["fast exit 1"]


def test_console_runs_atexit_callbacks_registered_before_it() -> None:
    code = (_FAST + "import atexit\natexit.register(lambda: print('cleaned up'))\n"
            "sys.argv[1:] = ['--version']\n"
            "from envknit.cli import console\n")
    # --version ends through argparse's SystemExit: the usual teardown, callbacks run
    proc = _run(code + "sys.exit(console())\n")
    assert proc.returncode == 0 and "cleaned up" in proc.stdout
    assert "fast exit" not in proc.stderr
    # a command that returns: the callback keeps the teardown (no os._exit)
    proc = _run(code.replace("['--version']", "['status', '--help']") + "sys.exit(console())\n")
    assert proc.returncode == 0 and "cleaned up" in proc.stdout


def test_console_script_output_is_complete_through_a_pipe(tmp_path: Path) -> None:
    assert "console" in ENVKNIT.read_text()  # the script calls console(), not main()
    # stdout is a pipe (block-buffered): everything printed before os._exit arrives
    proc = subprocess.run([str(ENVKNIT), "init"], capture_output=True, text=True, timeout=60,
                          check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "envknit.yaml" in proc.stdout
    assert (tmp_path / "envknit.yaml").is_file()


def test_console_with_stdout_closed_at_start(tmp_path: Path) -> None:
    # fd 1 closed when the process starts: sys.stdout is None, and the exit is still clean
    proc = subprocess.run([sys.executable, "-m", "envknit", "install"], stdout=None,
                          stderr=subprocess.PIPE, text=True, timeout=60, check=False,
                          cwd=tmp_path, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 1
    assert proc.stderr.startswith("envknit: error: ") and proc.stderr.count("\n") == 1
