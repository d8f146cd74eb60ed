"""envknit._uvlock: processes without subprocess: output read whole, reaped, killed on failure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from envknit import _uvlock
from envknit.errors import ResolverError

pytestmark = pytest.mark.timeout(60)


def _gone(pid: int) -> bool:
    """``pid`` was reaped (no zombie of ours is left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_large_output_on_both_pipes_is_read_whole_and_the_status_kept() -> None:
    # 300 KB on stderr before stdout is even written: a reader of one pipe would deadlock
    code = "import sys; sys.stderr.write('e' * 300000); sys.stdout.write('o' * 300000); " \
           "sys.exit(3)"
    procs = [_uvlock.spawn([sys.executable, "-c", code], os.environ) for _ in range(2)]
    _uvlock.communicate(procs)
    for proc in procs:
        assert (proc.status, len(proc.stdout), len(proc.stderr)) == (3, 300000, 300000)
        assert _gone(proc.pid)


def test_an_interrupt_while_waiting_kills_and_reaps(monkeypatch: pytest.MonkeyPatch) -> None:
    proc = _uvlock.spawn([sys.executable, "-c", "import time; time.sleep(60)"], os.environ)

    def interrupted(*_args: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(_uvlock.select, "poll", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _uvlock.communicate([proc])
    assert proc.status is not None and proc.status < 0  # killed by a signal
    assert _gone(proc.pid)


def test_a_missing_program_is_a_resolver_error(tmp_path: Path) -> None:
    with pytest.raises(ResolverError, match="cannot run uv"):
        _uvlock.spawn([str(tmp_path / "no-uv")], os.environ)


def test_abandoned_jobs_leave_no_process_and_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    fake_uv = tmp_path / "uv"
    fake_uv.write_text("#!/bin/sh\nsleep 60\n")
    fake_uv.chmod(0o755)
    jobs = [_uvlock.Job(name, ["x"], [], sys.executable, "3.12") for name in ("a", "b")]
    started = _uvlock.start(jobs, str(fake_uv), [])
    procs = [p for j in jobs for p in (j.graph, j.named) if p is not None]
    assert len(procs) == 4 and len(list(tmp_path.glob("envknit-lock-*"))) == 2
    _uvlock.abandon(started.jobs)
    assert all(_gone(p.pid) for p in procs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["uv"]


def test_a_failing_compile_is_the_environments_error(tmp_path: Path) -> None:
    fake_uv = tmp_path / "uv"
    fake_uv.write_text("#!/bin/sh\necho 'error: no solution' >&2\nexit 2\n")
    fake_uv.chmod(0o755)
    jobs = [_uvlock.Job("one", ["x"], [], sys.executable, "3.12")]
    _uvlock.finish(_uvlock.start(jobs, str(fake_uv), []))
    assert str(jobs[0].error) == (
        "one: resolving for Python 3.12 failed (uv exit status 2):\nerror: no solution")


def test_more_environments_than_run_at_once_all_finish(tmp_path: Path) -> None:
    fake_uv = tmp_path / "uv"
    fake_uv.write_text("#!/bin/sh\nexit 0\n")  # an empty resolution
    fake_uv.chmod(0o755)
    jobs = [_uvlock.Job(f"e{i}", [], [], sys.executable, "3.12")
            for i in range(_uvlock.MAX_AT_ONCE + 3)]
    _uvlock.finish(_uvlock.start(jobs, str(fake_uv), []))
    assert all(j.error is None and j.result == [] for j in jobs)


def test_uvs_path_and_version_are_remembered_beside_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "cache")
    monkeypatch.setattr(_uvlock, "_FOUND", {})
    monkeypatch.setattr(_uvlock, "_LOCATED", {})
    exe, version = _uvlock.find_uv(cache), _uvlock.uv_version(cache)
    assert version[0].isdigit() and exe == _uvlock._locate()

    def not_again() -> str:
        raise AssertionError("uv was looked for although its path is remembered")

    monkeypatch.setattr(_uvlock, "_FOUND", {})
    monkeypatch.setattr(_uvlock, "_LOCATED", {})
    monkeypatch.setattr(_uvlock, "_locate", not_again)
    monkeypatch.setattr(_uvlock, "spawn", not_again)
    assert (_uvlock.find_uv(cache), _uvlock.uv_version(cache)) == (exe, version)
    # another import path (another uv package may be found): looked for again
    monkeypatch.setattr(_uvlock, "_FOUND", {})
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    with pytest.raises(AssertionError, match="looked for"):
        _uvlock.find_uv(cache)
