"""envknit.worker(): real worker processes, proxies, errors, timeouts, crashes and the pool."""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import site
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import envknit
from envknit import _configured
from envknit._worker import WorkerProxy, _pool, _protocol
from envknit._worker._proxy import worker_stats
from envknit.errors import (
    EntryMissingError,
    EnvknitTimeoutError,
    MessageTooLargeError,
    ProtocolError,
    VersionNotInstalledError,
    WorkerCrashedError,
    WorkerError,
    WorkerRemoteError,
)

from ._builders import make_store_entry, write_lock
from ._worker_fixtures import make_demo, make_demo_project

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def demo(envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_demo_project(envknit_home, tmp_path, monkeypatch)


def test_module_proxy_reads_attributes_and_calls_functions(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        assert mod.__version__ == "1.0"
        value = {"a": [1, 2.5, None, True], "b": "✓"}
        assert mod.echo(value) == value
        assert mod.echo((1, b"\x00raw", {3: "x"})) == (1, b"\x00raw", {3: "x"})
        # Look like tags, are data: both ways, with and without a tagged value beside them.
        lookalike = {"$r": 1, "k": "$b", "l": ["$t", {"$d": []}]}
        assert mod.echo(lookalike) == lookalike
        assert mod.echo([lookalike, b"1"]) == [lookalike, b"1"]
        assert mod.echo("$r") == "$r"
        assert mod.pid() != os.getpid()


def test_worker_runs_isolated_on_the_environments_path_only(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        info = mod.info()
        assert info["flags"] == [1, 1]  # -I -S
        host_site = set(site.getsitepackages()) | {site.getusersitepackages()}
        assert not host_site & set(info["path"])
        assert any(p.endswith("/site") and "/store/demo/1.0/" in p for p in info["path"])
        # pyyaml is installed in the host's venv, not in the locked environment.
        assert mod.can_import("yaml") is False
        assert mod.can_import("json") is True


def test_unplain_results_come_back_as_proxies(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        arr = mod.numbers(4)  # array.array: from a C module, not JSON
        assert isinstance(arr, WorkerProxy)
        assert arr.tolist() == [0, 1, 2, 3]
        assert len(arr) == 4
        assert arr[2] == 2
        assert list(arr) == [0, 1, 2, 3]
        assert repr(arr) == "array('i', [0, 1, 2, 3])"
        assert arr.typecode == "i"
        assert 3 in arr
        arr[0] = 9
        assert arr.tolist()[0] == 9
        box = mod.make_box(5)
        assert repr(box) == "Box(5)"
        assert box.value == 5
        box.value = 7
        assert mod.unbox(box) == 7  # a proxy passed back as an argument
        assert box.get() == 7
        assert [x for x in box] == [5, 6, 7]
        assert "get" in dir(box)


def test_big_iterations_are_batched_but_complete(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        assert sum(mod.numbers(1000)) == sum(range(1000))


def test_remote_builtin_error_keeps_type_message_and_traceback(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        with pytest.raises(ValueError, match="bad value") as info:
            mod.fail("ValueError", "bad value")
        err = info.value
        assert isinstance(err, WorkerRemoteError)
        assert err.remote_type == "ValueError"
        assert err.remote_message == "bad value"
        assert "in fail" in err.remote_traceback
        assert "demo/core.py" in err.remote_traceback
        # the worker's own frames (the child and the shared runner) are left out
        assert "_child.py" not in err.remote_traceback and "_runner.py" not in err.remote_traceback
        with pytest.raises(KeyError):
            mod.fail("KeyError", "k")
        with pytest.raises(FileNotFoundError) as oserr:
            mod.missing_file()
        assert oserr.value.remote_type == "FileNotFoundError"
        with pytest.raises(AttributeError):
            mod.no_such_attribute  # noqa: B018 - the attribute access is the test
        assert getattr(mod, "no_such_attribute", "default") == "default"


def test_remote_custom_error_names_its_type_and_is_its_builtin_base(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod, pytest.raises(ValueError) as info:
        mod.custom()
    assert isinstance(info.value, WorkerRemoteError)
    assert info.value.remote_type == "demo.core.CustomError"
    assert "demo.core.CustomError: custom failure (raised in a worker process)" in str(info.value)


def test_timeout_kills_and_replaces_the_worker_without_stale_replies(demo: Path) -> None:
    with envknit.worker("demo", "1.0", timeout=1.0) as mod:
        first_pid = mod.pid()
        with pytest.raises(TimeoutError) as info:
            mod.sleep(1.6)
        assert isinstance(info.value, EnvknitTimeoutError)
        assert "within 1 s" in str(info.value)
        # The sleeping worker would answer 1.6 in a moment; the next call gets its own answer.
        assert mod.echo("second") == "second"
        assert mod.pid() != first_pid
        assert mod.sleep(0.1) == 0.1


def test_timeout_holds_when_the_worker_stopped_reading_a_large_request(demo: Path) -> None:
    import signal

    with envknit.worker("demo", "1.0", timeout=1.0) as mod:
        stopped, echo = mod.pid(), mod.echo  # echo looked up now: the call below only writes
        os.kill(stopped, signal.SIGSTOP)  # alive, but it reads nothing any more
        try:
            with pytest.raises(TimeoutError):
                echo(b"x" * 4_000_000)  # far more than a pipe holds: the write must wait
        finally:
            with contextlib.suppress(ProcessLookupError):  # gone once killed and reaped
                os.kill(stopped, signal.SIGCONT)
        assert mod.echo("next") == "next"
        assert mod.pid() != stopped


@pytest.mark.parametrize(
    ("func", "args", "signal", "exit_code"),
    [
        ("segfault", (), "SIGSEGV", None),
        ("sigsegv", (), "SIGSEGV", None),
        ("hard_exit", (3,), None, 3),
    ],
)
def test_crash_names_signal_or_exit_code_and_next_call_respawns(
    demo: Path, func: str, args: tuple[Any, ...], signal: str | None, exit_code: int | None
) -> None:
    with envknit.worker("demo", "1.0") as mod:
        first_pid = mod.pid()
        echo = mod.echo  # a function kept across the crash is looked up again afterwards
        with pytest.raises(WorkerCrashedError) as info:
            getattr(mod, func)(*args)
        err = info.value
        assert (err.signal, err.exit_code) == (signal, exit_code)
        assert (signal or f"exited with code {exit_code}") in str(err)
        assert f"pid {first_pid}" in str(err)
        assert mod.echo("alive") == "alive"
        assert echo("again") == "again"
        assert mod.pid() != first_pid


def test_proxies_from_a_replaced_worker_fail_clearly(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        box = mod.make_box(1)
        with pytest.raises(WorkerCrashedError):
            mod.hard_exit(5)
        with pytest.raises(WorkerError, match="has since been replaced"):
            box.get()
        assert mod.make_box(2).get() == 2


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
def test_crashes_timeouts_and_shutdowns_leak_no_file_descriptors(demo: Path) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    with envknit.worker("demo", "1.0", timeout=0.5) as mod:
        mod.pid()
        before = open_fds()
        for _ in range(3):
            with pytest.raises(WorkerCrashedError):
                mod.hard_exit(1)
            with pytest.raises(TimeoutError):
                mod.sleep(5)
            envknit.shutdown_workers()
            mod.pid()  # a new process, with new pipes
        assert open_fds() == before


def test_oversized_messages_fail_before_memory_runs_out(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pool, "MAX_MESSAGE_SIZE", 100_000)
    with envknit.worker("demo", "1.0") as mod:
        pid = mod.pid()
        with pytest.raises(MessageTooLargeError) as sent:
            mod.echo("x" * 200_000)
        assert sent.value.limit == 100_000
        assert "exceeds the limit of 100000 bytes" in str(sent.value)
        with pytest.raises(MessageTooLargeError) as received:
            mod.repeat("x", 200_000)  # the worker measures its reply and sends an error instead
        assert received.value.size > 200_000
        assert mod.echo("still fine") == "still fine"
        assert mod.pid() == pid  # neither failure cost the worker
        # The limit is for JSON: bytes travel on the binary lane, outside the frame.
        assert mod.echo(b"x" * 200_000) == b"x" * 200_000
        assert mod.big(200_000) == b"x" * 200_000


def test_default_limit_is_documented_64_mib() -> None:
    assert _protocol.DEFAULT_MAX_MESSAGE_SIZE == 64 * 1024 * 1024
    assert _pool.MAX_MESSAGE_SIZE == _protocol.DEFAULT_MAX_MESSAGE_SIZE


def test_protocol_version_is_checked_at_start_up(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_protocol, "PROTOCOL_VERSION", 999)
    expected = pytest.raises(ProtocolError, match="speaks protocol 3, this envknit speaks 999")
    with expected, envknit.worker("demo", "1.0"):
        pass


def test_threads_calling_at_once_each_get_their_own_answer(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:

        def run(n: int) -> list[tuple[Any, Any]]:
            return [(mod.echo([n, i]), mod.make_box(n * 100 + i).get()) for i in range(25)]

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(run, range(6)))
    assert answers == [[([n, i], n * 100 + i) for i in range(25)] for n in range(6)]


def test_a_timeout_in_one_thread_gives_no_other_thread_a_stale_reply(demo: Path) -> None:
    with envknit.worker("demo", "1.0", timeout=0.5) as slow, envknit.worker("demo", "1.0") as mod:
        first_pid = mod.pid()  # one pooled worker behind both proxies

        def sleeper() -> str:
            with pytest.raises(TimeoutError):
                slow.sleep(1.5)  # would answer 1.5 later, if the process were kept
            return "timed out"

        def caller(n: int) -> list[Any]:
            return [mod.echo([n, i]) for i in range(10)]

        with ThreadPoolExecutor(4) as pool:
            timed_out = pool.submit(sleeper)
            calls = [pool.submit(caller, n) for n in range(3)]
            assert timed_out.result(60) == "timed out"
            assert [c.result(60) for c in calls] == [[[n, i] for i in range(10)] for n in range(3)]
        assert mod.pid() != first_pid  # the process that timed out was replaced
        assert slow.echo("after") == "after"


def test_collected_proxies_are_released_in_the_worker(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        make_box = mod.make_box  # the function's own handle stays (cached on the module proxy)
        before = worker_stats(mod)["handles"]
        boxes = [make_box(i) for i in range(20)]
        assert worker_stats(mod)["handles"] == before + 20
        del boxes
        gc.collect()
        assert worker_stats(mod)["handles"] == before


def test_pool_reuses_the_worker_across_blocks_and_shutdown_stops_it(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        pid = mod.pid()
    with envknit.worker("demo", "1.0") as again:
        assert again.pid() == pid
    envknit.shutdown_workers()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with envknit.worker("demo", "1.0") as fresh:
        assert fresh.pid() != pid


def test_unknown_version_names_the_locked_ones(demo: Path) -> None:
    expected = pytest.raises(VersionNotInstalledError, match=r"demo==2\.0 is not installed.*1\.0")
    with expected, envknit.worker("demo", "2.0"):
        pass
    with pytest.raises(ModuleNotFoundError), envknit.worker("nothing", "1.0"):
        pass


def test_distribution_whose_import_name_differs_gives_its_public_module(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # Like PyYAML (top_level.txt: _yaml, yaml): the private module sorts first.
    files: dict[str, str | bytes] = {
        "_fancy/__init__.py": "PRIVATE = True\n",
        "fancy/__init__.py": "__version__ = '9.9'\nimport os\ndef pid():\n    return os.getpid()\n",
    }
    pkg = make_store_entry(envknit_home, "PyFancy", "9.9", files)
    write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})
    with envknit.worker("PyFancy", "9.9") as fancy:
        assert fancy.__version__ == "9.9"
        assert fancy.pid() != os.getpid()


def test_locked_but_not_installed_says_run_install(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pkg = make_store_entry(tmp_path / "elsewhere", "ghost", "1.0")  # not in ENVKNIT_HOME
    write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})
    with pytest.raises(EntryMissingError, match="run 'envknit install"), envknit.worker(
        "ghost", "1.0"
    ):
        pass


def test_configured_locks_are_searched(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "somewhere" / "envknit.lock.yaml"
    lock.parent.mkdir()
    make_demo(envknit_home, lock, version="3.1")
    monkeypatch.chdir(tmp_path)  # no lock in the working directory
    monkeypatch.setattr(_configured, "configured_locks", lambda: (lock,))
    with envknit.worker("demo", "3.1") as mod:
        assert mod.__version__ == "3.1"


def test_proxies_have_no_public_constructor() -> None:
    with pytest.raises(TypeError, match=r"made by envknit\.worker"):
        WorkerProxy()
    assert WorkerProxy.__module__ == "envknit"


def test_use_auto_worker_yields_a_worker_proxy_for_compiled_packages(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files: dict[str, str | bytes] = {
        "cext/__init__.py": "import os\n__version__ = '1.0'\ndef pid():\n    return os.getpid()\n",
        # Never imported: it only marks the distribution as having a compiled extension.
        "cext/_speedups.cpython-312-x86_64-linux-gnu.so": b"\x7fELF not really",
    }
    lock = write_lock(
        tmp_path / "ml.lock.yaml", {"ml": [make_store_entry(envknit_home, "cext", "1.0", files)]}
    )
    envknit.configure_from_lock(str(lock))
    with envknit.use("cext", "1.0", auto_worker=True) as cext:
        assert isinstance(cext, WorkerProxy)
        assert cext.__version__ == "1.0"
        assert cext.pid() != os.getpid()


def _other_python() -> str | None:
    """A CPython 3.10-3.13 on this machine other than the running one, as "3.N"."""
    from envknit.errors import InterpreterNotFoundError
    from envknit.pythons import find_python

    for minor in (12, 13, 11, 10):
        if (3, minor) == sys.version_info[:2]:
            continue
        try:
            find_python(f"3.{minor}")
        except InterpreterNotFoundError:
            continue
        return f"3.{minor}"
    return None


def test_worker_runs_the_python_the_environment_targets(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _other_python()
    if target is None:
        pytest.skip("only one CPython version on this machine")
    monkeypatch.chdir(tmp_path)
    make_demo(envknit_home, tmp_path / "envknit.lock.yaml", python_version=target)
    with envknit.worker("demo", "1.0") as mod:
        assert mod.info()["version"] == [int(p) for p in target.split(".")]
        assert mod.echo((1, b"2")) == (1, b"2")


def test_arithmetic_and_ordering_operators_run_in_the_worker(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        arr = mod.numbers(3)  # array('i', [0, 1, 2])
        assert (arr + arr).tolist() == [0, 1, 2, 0, 1, 2]
        assert (arr * 2).tolist() == [0, 1, 2, 0, 1, 2]
        box = mod.make_box(4)
        with pytest.raises(TypeError):
            box + 1  # Box has no __add__: the remote TypeError, still a TypeError
        assert arr < mod.numbers(4)
        dec = mod.decimal("2.5")  # a Decimal: not JSON, so a proxy
        assert isinstance(dec, WorkerProxy)
        assert (int(dec), float(dec), float(-dec)) == (2, 2.5, -2.5)
        one = mod.make_box(1)
        with pytest.raises(TypeError):
            int(one)  # Box has no __int__: the remote TypeError
        assert (arr == arr) is True  # identity on the host; proxies stay hashable
        assert len({arr, arr}) == 1


def test_module_proxy_kept_across_shutdown_respawns_and_is_stopped_again(demo: Path) -> None:
    with envknit.worker("demo", "1.0") as mod:
        first = mod.pid()
    envknit.shutdown_workers()
    second = mod.pid()  # the module is imported again in a new process
    assert second != first
    assert [w.pid for w in _pool.live_workers()] == [second]
    envknit.shutdown_workers()
    assert _pool.live_workers() == []
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


def test_proxies_cannot_be_pickled_or_copied(demo: Path) -> None:
    import copy
    import pickle

    with envknit.worker("demo", "1.0") as mod:
        box = mod.make_box(1)
        with pytest.raises(TypeError, match="cannot be pickled or copied"):
            pickle.dumps(box)
        with pytest.raises(TypeError, match="cannot be pickled or copied"):
            copy.copy(box)


def test_public_names_and_hostile_input() -> None:
    assert envknit.WorkerProxy is WorkerProxy
    with pytest.raises(envknit.InvalidNameError), envknit.worker("../evil", "1.0"):
        pass
    with pytest.raises(envknit.InvalidNameError), envknit.worker("demo", "1.0; rm -rf /"):
        pass


def test_an_environment_whose_python_is_missing_is_skipped_for_one_that_works(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envknit.errors import InterpreterNotFoundError

    monkeypatch.chdir(tmp_path)
    first = tmp_path / "a" / "envknit.lock.yaml"
    first.parent.mkdir()
    make_demo(envknit_home, first, python_version="3.99")  # no such Python here
    second = tmp_path / "b" / "envknit.lock.yaml"
    second.parent.mkdir()
    make_demo(envknit_home, second)
    monkeypatch.setattr(_configured, "configured_locks", lambda: (first,))
    with pytest.raises(InterpreterNotFoundError, match=r"3\.99"), envknit.worker("demo", "1.0"):
        pass
    monkeypatch.setattr(_configured, "configured_locks", lambda: (first, second))
    with envknit.worker("demo", "1.0") as mod:
        assert mod.echo(1) == 1




def test_a_later_block_sees_a_changed_lock_and_a_removed_entry(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # worker() remembers where a package was found; neither a re-locked version nor an entry
    # removed from the store may be served from that memory.
    lock = make_demo_project(envknit_home, tmp_path, monkeypatch)
    with envknit.worker("demo", "1.0") as mod:
        assert mod.__version__ == "1.0"
    make_demo(envknit_home, lock, version="2.0")  # the lock now pins 2.0 only
    with (
        pytest.raises(VersionNotInstalledError, match=r"demo==1\.0 .*2\.0"),
        envknit.worker("demo", "1.0"),
    ):
        pass
    with envknit.worker("demo", "2.0") as mod:
        assert mod.__version__ == "2.0"
    envknit.shutdown_workers()
    entry = envknit_home / "store" / "demo" / "2.0"
    assert entry.is_dir()
    shutil.rmtree(entry)
    with pytest.raises(EntryMissingError, match="run 'envknit install"), envknit.worker(
        "demo", "2.0"
    ):
        pass
