"""Worker behaviour seen from fresh host processes: output, crashes, exit, Ctrl-C, fork, import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ._worker_fixtures import make_demo_project

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def demo(envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_demo_project(envknit_home, tmp_path, monkeypatch)


def _run_host(*args: str, stderr: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run a host program in a fresh Python process; it must exit with code 0 and write exactly
    ``stderr`` (nothing, unless the test's own code prints there)."""
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == stderr
    return proc


def test_printing_package_does_not_corrupt_the_protocol(demo: Path) -> None:
    script = textwrap.dedent(
        """
        import envknit
        with envknit.worker("demo", "1.0") as mod:
            for i in range(3):
                assert mod.noisy({"i": i}) == {"i": i}
        print("HOST-DONE")
        """
    )
    # the worker's prints reach the host's stdout and stderr
    proc = _run_host("-c", script, stderr=b"more noise\n" * 3)
    assert b"noise noise" in proc.stdout
    assert proc.stdout.rstrip().endswith(b"HOST-DONE")


def test_host_survives_a_segfaulting_worker_in_a_fresh_process(demo: Path) -> None:
    script = textwrap.dedent(
        """
        import envknit
        with envknit.worker("demo", "1.0") as mod:
            try:
                mod.segfault()
            except envknit.WorkerCrashedError as exc:
                assert exc.signal == "SIGSEGV", exc
            print("RESULT", mod.echo(41) + 1)
        """
    )
    proc = _run_host("-c", script)
    assert b"RESULT 42" in proc.stdout


def test_script_without_main_guard_is_not_reimported(demo: Path, tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import envknit
            print("TOP-LEVEL RAN")
            with envknit.worker("demo", "1.0") as mod:
                print("ANSWER", mod.echo(7))
            """
        )
    )
    proc = _run_host(str(script))
    assert proc.stdout.count(b"TOP-LEVEL RAN") == 1
    assert b"ANSWER 7" in proc.stdout


def test_workers_stop_when_the_host_exits(demo: Path) -> None:
    script = textwrap.dedent(
        """
        import envknit
        with envknit.worker("demo", "1.0") as mod:
            print("PID", mod.pid(), flush=True)
        # no shutdown_workers(): the atexit hook must stop the worker
        """
    )
    proc = _run_host("-c", script)
    pid = int(proc.stdout.split(b"PID", 1)[1].split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the worker is gone (stopped and reaped by the atexit hook)


def test_ctrl_c_while_waiting_kills_the_worker_and_the_next_call_is_fresh(demo: Path) -> None:
    script = textwrap.dedent(
        """
        import signal, threading
        import envknit
        with envknit.worker("demo", "1.0") as mod:
            first = mod.pid()
            main = threading.main_thread().ident
            threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT)).start()
            try:
                mod.sleep(30)
            except KeyboardInterrupt:
                print("INTERRUPTED", flush=True)
            assert mod.echo("next") == "next"
            assert mod.pid() != first
        print("DONE")
        """
    )
    proc = _run_host("-c", script)
    assert b"INTERRUPTED" in proc.stdout
    assert b"DONE" in proc.stdout


def test_import_envknit_registers_no_hook_until_a_worker_is_asked_for(
    demo: Path, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        """
        import atexit, os

        calls = []
        real_register, real_at_fork = atexit.register, os.register_at_fork

        def register(func, *args, **kwargs):
            calls.append(("atexit", str(getattr(func, "__module__", ""))))
            return real_register(func, *args, **kwargs)

        def at_fork(**kwargs):
            calls.append(("fork", *(str(getattr(f, "__module__", "")) for f in kwargs.values())))
            real_at_fork(**kwargs)

        atexit.register, os.register_at_fork = register, at_fork
        import envknit

        envknit.shutdown_workers()  # nothing to stop: must not start or register anything
        ours = lambda: [c for c in calls if any(m.startswith("envknit") for m in c[1:])]
        assert ours() == [], ours()
        with envknit.worker("demo", "1.0") as mod:
            assert mod.echo(1) == 1
        assert sorted(c[0] for c in ours()) == ["atexit", "fork"], ours()
        print("OK")
        """
    )
    assert b"OK" in _run_host("-c", script).stdout


def test_a_forked_child_forgets_the_parents_workers(demo: Path) -> None:
    script = textwrap.dedent(
        """
        import os
        import envknit

        with envknit.worker("demo", "1.0") as mod:
            parent_worker = mod.pid()
            child = os.fork()
            if child == 0:
                # The child must neither use nor stop the parent's worker: it starts its own.
                ok = mod.pid() not in (parent_worker, os.getpid())
                envknit.shutdown_workers()
                os._exit(0 if ok else 1)
            _, status = os.waitpid(child, 0)
            assert os.waitstatus_to_exitcode(status) == 0, status
            assert mod.pid() == parent_worker  # still the same, still answering
        print("OK")
        """
    )
    assert b"OK" in _run_host("-c", script).stdout


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc/self/status")
def test_large_bytes_cross_both_ways_without_a_third_copy(demo: Path) -> None:
    # 300 MiB each way, past the 64 MiB JSON limit, on the binary lane. Each side's address
    # space may grow by 500-700 MiB: room for the value and one copy, never for the base64
    # form (400 MiB) on top, nor for a third copy.
    script = textwrap.dedent(
        """
        import envknit

        mib = 2**20
        with envknit.worker("demo", "1.0") as mod:
            mod.cap_memory(500 * mib)  # the worker's own address space
            got = mod.big(300 * mib)
            print("REPLY", len(got) == 300 * mib and got[-1:] == b"x")
            del got
            with open("/proc/self/status") as status:
                kib = next(int(l.split()[1]) for l in status if l.startswith("VmSize:"))
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (kib * 1024 + 700 * mib, resource.RLIM_INFINITY))
            big = b"y" * (300 * mib)
            back = mod.echo(big)
            print("ECHO", back == big)
            del big, back
            assert mod.echo(2) == 2
        """
    )
    out = _run_host("-c", script).stdout
    assert b"REPLY True" in out
    assert b"ECHO True" in out
