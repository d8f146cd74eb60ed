"""SubInterpreterEnv: eval_json, run_string, call, errors, try_import, timeouts, threads."""

from __future__ import annotations

import signal
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

import envknit
from envknit._subinterp import _server
from envknit.errors import (
    CExtIncompatibleError,
    EnvknitError,
    EnvknitTimeoutError,
    InterpreterClosedError,
    SubInterpreterError,
    UnsupportedPlatformError,
)
from tests._helpers import gen2

# The serving thread of timed calls and submit() needs poll() (see envknit/_subinterp/_server.py);
# the host helper thread that replaces it elsewhere is covered by test_timed_calls_fall_back_...
serving = pytest.mark.skipif(not _server.AVAILABLE, reason="the serving thread needs poll()")

pytestmark = pytest.mark.timeout(120)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.10/3.11 behaviour")
def test_old_python_is_refused_with_alternatives() -> None:
    with pytest.raises(UnsupportedPlatformError) as info:
        envknit.SubInterpreterEnv("ml")
    message = str(info.value)
    assert "{}.{}".format(*sys.version_info[:2]) in message
    assert "envknit.use(" in message and "envknit.worker(" in message
    assert isinstance(info.value, RuntimeError)


def test_public_identity() -> None:
    assert envknit.SubInterpreterEnv.__module__ == "envknit"


@gen2
def test_eval_json_binds_inputs_and_returns_result() -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        got = interp.eval_json(
            "result = {'sum': a + b, 'items': items[::-1], 'n': None}",
            a=1, b=2.5, items=["x", "y"],
        )
        assert got == {"sum": 3.5, "items": ["y", "x"], "n": None}
        assert interp.eval_json("x = 1") is None  # no result assigned


@gen2
def test_each_call_gets_a_fresh_namespace_and_never_an_old_result() -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        interp.eval_json("leftover = 1\nresult = 1")
        with pytest.raises(SubInterpreterError) as info:
            interp.eval_json("result = leftover")
        assert info.value.remote_type == "NameError"
        # a failing call followed by a succeeding one: each returns its own answer
        for i in range(20):
            assert interp.eval_json("result = i * 2", i=i) == i * 2


@gen2
def test_inputs_are_data_not_source() -> None:
    hostile = "'); import os; os._exit(9); ('"
    with envknit.SubInterpreterEnv("ml") as interp:
        assert interp.eval_json("result = s", s=hostile) == hostile


@gen2
def test_values_that_are_not_json_are_refused() -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        with pytest.raises(TypeError):
            interp.eval_json("result = 1", x=object())
        with pytest.raises(SubInterpreterError, match="JSON value"):
            interp.eval_json("result = {1, 2}")
        assert interp.eval_json("result = 'still fine'") == "still fine"


@gen2
@pytest.mark.parametrize(
    ("code", "remote_type", "text"),
    [
        ("def f(x):\n    return 1 / x\nresult = f(0)", "ZeroDivisionError", "return 1 / x"),
        ("raise SystemExit(3)", "SystemExit", "SystemExit: 3"),
        ("raise MemoryError('no room')", "MemoryError", "no room"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt", "KeyboardInterrupt"),
        ("def broken(:\n    pass", "SyntaxError", "invalid syntax"),
    ],
)
def test_remote_exceptions_carry_type_message_and_traceback(
    code: str, remote_type: str, text: str
) -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        with pytest.raises(SubInterpreterError) as info:
            interp.eval_json(code)
        err = info.value
        assert isinstance(err, EnvknitError) and isinstance(err, RuntimeError)
        assert err.remote_type == remote_type
        assert remote_type in str(err) and text in str(err)
        assert text in err.remote_traceback
        # envknit's own frames (the child and the shared runner) are hidden
        assert "_child.py" not in err.remote_traceback and "_runner.py" not in err.remote_traceback
        assert interp.eval_json("result = 'alive'") == "alive"


@gen2
def test_run_string_keeps_main_state_and_raises() -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        interp.run_string("counter = 41")
        interp.run_string("counter += 1")
        assert interp.eval_json("import __main__\nresult = __main__.counter") == 42
        with pytest.raises(SubInterpreterError, match="ValueError: nope"):
            interp.run_string("raise ValueError('nope')")


@gen2
def test_call_imports_and_calls_a_function() -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        assert interp.call("json:dumps", [1, "a"], sort_keys=True) == '[1, "a"]'
        assert interp.call("os.path:join", "a", "b") == "a/b"
        with pytest.raises(SubInterpreterError) as info:
            interp.call("json:no_such_function")
        assert info.value.remote_type == "AttributeError"
        with pytest.raises(SubInterpreterError, match=r"package\.module:function"):
            interp.call("json.dumps")
        with pytest.raises(SubInterpreterError) as info:
            interp.call("json:loads", "{")
        # the remote traceback starts at the called function, not in envknit's runner
        first = info.value.remote_traceback.split('  File "', 2)[1]
        assert first.split('"')[0].endswith("json/__init__.py")
        assert "_runner.py" not in info.value.remote_traceback


@gen2
def test_host_site_packages_are_invisible_by_default() -> None:
    import pytest as host_only  # installed in the venv, not in the standard library

    assert host_only
    with envknit.SubInterpreterEnv("ml") as interp:
        paths = interp.eval_json("import sys\nresult = sys.path")
        assert not any("site-packages" in p for p in paths)
        assert any(p.endswith("lib-dynload") for p in paths)
        with pytest.raises(ModuleNotFoundError):
            interp.try_import("pytest")
        with pytest.raises(ModuleNotFoundError):
            interp.try_import("envknit")
        assert interp.try_import("json") is True


@gen2
def test_try_import_on_extension_modules() -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        assert interp.try_import("_testmultiphase") is True
        assert interp.try_import("_testsinglephase") is False
        with pytest.raises(CExtIncompatibleError) as info:
            interp.try_import("_testsinglephase", raise_on_cext=True)
        assert isinstance(info.value, ImportError)
        assert "envknit.worker" in str(info.value)
        assert "_testsinglephase" in str(info.value)
        with pytest.raises(ModuleNotFoundError) as missing:
            interp.try_import("surely_not_a_module_xyz")
        assert not isinstance(missing.value, CExtIncompatibleError)


@gen2
def test_refused_extension_in_several_interpreters_in_a_row() -> None:
    # 3.12.1 aborts on the second refusal of a single-phase module unless envknit guards it.
    for _ in range(3):
        with envknit.SubInterpreterEnv("ml") as interp:
            assert interp.try_import("_testsinglephase") is False


@gen2
def test_closed_interpreter_raises() -> None:
    interp = envknit.SubInterpreterEnv("ml")
    with interp:
        assert interp.eval_json("result = 1") == 1
    assert interp.closed
    with pytest.raises(InterpreterClosedError):
        interp.eval_json("result = 1")


@gen2
def test_block_that_raises_still_destroys_the_interpreter() -> None:
    interp = envknit.SubInterpreterEnv("ml")
    with pytest.raises(KeyError), interp:
        interp.eval_json("result = 1")
        raise KeyError("host side")
    assert interp.closed


@gen2
def test_timeout_stops_a_python_loop_and_interpreter_stays_usable() -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        with pytest.raises(TimeoutError) as info:
            interp.eval_json("while True:\n    pass", timeout=0.3)
        assert isinstance(info.value, EnvknitTimeoutError)
        with pytest.raises(EnvknitTimeoutError):  # a loop that catches Exception still stops
            interp.eval_json(
                "while True:\n    try:\n        pass\n    except Exception:\n        pass",
                timeout=0.3,
            )
        assert interp.eval_json("result = sum(range(10))", timeout=5) == 45


_COUNT_WATCHDOG_WAITS = """
import sys
child = sys.modules["_envknit_child"]
watchdog = child._get_watchdog()
child._test_waits = waits = [0]
def counting(timeout=None, _wait=watchdog._cond.wait, _waits=waits):
    _waits[0] += 1
    return _wait(timeout)
watchdog._cond.wait = counting
"""
_WATCHDOG_WAITS = "import sys\nresult = sys.modules['_envknit_child']._test_waits[0]"


@gen2
def test_timed_calls_do_not_wake_the_watchdog_each_time() -> None:
    # The idle watchdog sleeps until the latest deadline, so a later call's deadline needs no
    # wake-up (every timed call used to wake it: 500 wake-ups for 500 calls).
    with envknit.SubInterpreterEnv("ml") as interp:
        interp.eval_json("result = 1", timeout=30)
        interp.run_string(_COUNT_WATCHDOG_WAITS)
        interp.eval_json("result = 1", timeout=30)  # its wait now counts
        before = interp.eval_json(_WATCHDOG_WAITS)
        for i in range(200):
            assert interp.eval_json("result = x + 1", x=i, timeout=30) == i + 1
        assert interp.eval_json(_WATCHDOG_WAITS) - before <= 5
        # A shorter deadline than the one the watchdog sleeps until still wakes it in time.
        with pytest.raises(EnvknitTimeoutError, match="stopped inside"):
            interp.eval_json("while True:\n    pass", timeout=0.3)
        assert interp.eval_json("result = 2", timeout=30) == 2


@gen2
def test_timeout_in_a_c_call_does_not_hang_the_caller() -> None:
    interp = envknit.SubInterpreterEnv("ml")
    with interp, pytest.raises(EnvknitTimeoutError, match="C function"):
        interp.eval_json("import time\ntime.sleep(3)\nresult = 1", timeout=0.1)
    # close() returned at once; the interpreter is destroyed when sleep() returns


@gen2
def test_calls_behind_a_stuck_call_wait_or_time_out_without_running() -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        interp.run_string("ran = []")
        with pytest.raises(EnvknitTimeoutError, match="C function"):
            interp.eval_json("import time\ntime.sleep(2.5)", timeout=0.1)
        with pytest.raises(EnvknitTimeoutError, match="did not start"):
            interp.eval_json("import __main__\n__main__.ran.append(1)", timeout=0.1)
        # a submitted call and one without a timeout wait for the stuck one, then run
        later = interp.submit("import __main__\nresult = len(__main__.ran)")
        assert interp.eval_json("import __main__\nresult = __main__.ran") == []
        assert later.result(timeout=60) == 0


_THREAD_NAME = "import threading\nresult = threading.current_thread().name"


def _host_helper_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("envknit-subinterp-")]


@gen2
@serving
def test_timed_calls_run_on_the_serving_thread_inside_one_wake_up_each_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A timed call is handed to a thread parked inside the interpreter: one request posted and
    # one answer waited for per call, and no host helper thread (whose hand-offs fight for the
    # main GIL) is started. Calls without a timeout still run on the caller's thread.
    counts = {"post": 0, "wait": 0}

    def counted(name: str) -> object:
        original = getattr(_server.Server, name)

        def wrapper(self: _server.Server, *args: object) -> object:
            counts[name] += 1
            return original(self, *args)

        return wrapper

    monkeypatch.setattr(_server.Server, "post", counted("post"))
    monkeypatch.setattr(_server.Server, "wait", counted("wait"))
    with envknit.SubInterpreterEnv("served") as env:
        assert env.eval_json(_THREAD_NAME, timeout=30) == "envknit-serve"
        for i in range(50):
            assert env.eval_json("result = x * 2", x=i, timeout=30) == 2 * i
        env.run_string("y = 7", timeout=30)
        assert env.eval_json("import __main__\nresult = __main__.y", timeout=30) == 7
        assert env.eval_json(_THREAD_NAME) != "envknit-serve"
        assert counts == {"post": 53, "wait": 53}
        assert _host_helper_threads() == []


@gen2
@serving
def test_submit_posts_to_the_serving_thread_from_the_caller_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # When the interpreter is idle, submit() posts straight to the serving thread from the
    # calling thread (the helper thread only settles the Future); busy, it queues. Either way
    # submitted calls run one at a time, in the order they were submitted.
    posters: list[tuple[str, bool]] = []
    post = _server.Server.post

    def counted(self: _server.Server, text: str, *, submitted: bool = False) -> None:
        posters.append((threading.current_thread().name, submitted))
        post(self, text, submitted=submitted)

    monkeypatch.setattr(_server.Server, "post", counted)
    with envknit.SubInterpreterEnv("order") as env:
        env.run_string("log = []")
        assert env.submit(_THREAD_NAME).result(timeout=60) == "envknit-serve"
        assert posters[-1][1] and posters[-1][0].startswith("envknit-subinterp-")
        posters.clear()
        for _ in range(3):
            assert env.submit("result = 1").result(timeout=60) == 1
        me = threading.current_thread().name
        assert posters == [(me, True)] * 3
        futures = [
            env.submit("import __main__\n__main__.log.append(i)\nresult = i", i=i)
            for i in range(20)
        ]
        assert [f.result(timeout=60) for f in futures] == list(range(20))
        assert env.eval_json("import __main__\nresult = __main__.log") == list(range(20))
        assert len(posters) == 3 + 20


@gen2
@serving
def test_a_cancelled_submit_that_has_not_started_never_runs() -> None:
    with envknit.SubInterpreterEnv("cancel") as env:
        env.run_string("ran = []")
        first = env.submit("import time, __main__\ntime.sleep(0.5)\n__main__.ran.append(1)")
        second = env.submit("import __main__\n__main__.ran.append(2)")
        assert second.cancel()
        first.result(timeout=60)
        assert env.submit("import __main__\nresult = __main__.ran").result(timeout=60) == [1]


@gen2
def test_timed_calls_fall_back_to_the_host_helper_thread_without_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Where select.poll is missing (Windows) timed calls use the host helper thread; the same
    # guarantees hold there (a loop is stopped, a C call does not hang the caller).
    monkeypatch.setattr(_server, "AVAILABLE", False)
    with envknit.SubInterpreterEnv("helper") as env:
        assert env.eval_json(_THREAD_NAME, timeout=30) != "envknit-serve"
        assert len(_host_helper_threads()) == 1
        with pytest.raises(EnvknitTimeoutError, match="stopped inside"):
            env.eval_json("while True:\n    pass", timeout=0.3)
        with pytest.raises(EnvknitTimeoutError, match="C function"):
            env.eval_json("import time\ntime.sleep(1.5)", timeout=0.1)
        assert env.eval_json("result = 3", timeout=30) == 3
        futures = [env.submit("result = i * 3", i=i) for i in range(5)]
        assert [f.result(timeout=60) for f in futures] == [0, 3, 6, 9, 12]
        assert env.submit(_THREAD_NAME).result(timeout=60) != "envknit-serve"


@gen2
@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_signal_during_a_timed_wait_leaves_the_call_to_finish_inside() -> None:
    # The main thread waits for a served call in poll(); a signal handler that raises ends the
    # wait, the call goes on inside, and the next call waits for it and gets its own answer.
    class Interrupted(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        with envknit.SubInterpreterEnv("sig") as env:
            env.run_string("ran = []", timeout=30)
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Interrupted):
                env.eval_json(
                    "import time, __main__\ntime.sleep(0.6)\n__main__.ran.append(1)",
                    timeout=30,
                )
            assert env.eval_json("import __main__\nresult = __main__.ran") == [1]
            assert env.eval_json("result = 'mine'", timeout=30) == "mine"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@gen2
@serving
def test_close_while_another_thread_waits_behind_a_stuck_call() -> None:
    # One thread waits (in poll) for a stuck call to end; closing from this thread peeks at the
    # same pipe from another poll object, returns at once, and the waiting call still runs.
    env = envknit.SubInterpreterEnv("busy")
    with pytest.raises(EnvknitTimeoutError, match="C function"):
        env.eval_json("import time\ntime.sleep(1.5)", timeout=0.1)
    with ThreadPoolExecutor(1) as pool:
        behind = pool.submit(env.eval_json, "result = 'behind'")
        while not env._ensure().driver._run_lock.locked():  # the call is waiting inside
            threading.Event().wait(0.01)
        env.close()
        assert behind.result(timeout=60) == "behind"


@gen2
def test_submit_returns_futures_and_interpreters_work_from_many_threads() -> None:
    envs = [envknit.SubInterpreterEnv(f"e{i}") for i in range(3)]
    try:
        futures: list[Future[object]] = [
            env.submit("result = n * n", n=i) for i, env in enumerate(envs)
        ]
        assert [f.result(timeout=60) for f in futures] == [0, 1, 4]

        def hammer(k: int) -> list[object]:
            env = envs[k % len(envs)]
            return [env.eval_json("result = [k, j]", k=k, j=j) for j in range(10)]

        with ThreadPoolExecutor(6) as pool:  # an exception in a thread re-raises here
            results = list(pool.map(hammer, range(6)))
        assert all(results[k] == [[k, j] for j in range(10)] for k in range(6))
    finally:
        for env in envs:
            env.close()


@gen2
def test_inline_timed_and_submitted_calls_on_one_interpreter_take_turns() -> None:
    # Calls without a timeout run on the caller's thread, the others on the interpreter's
    # helper thread: mixed from several threads they must never collide ("already running").
    with envknit.SubInterpreterEnv("mix") as env:

        def use(k: int) -> None:
            for j in range(15):
                if j % 3 == 0:
                    got = env.eval_json("result = [k, j]", k=k, j=j, timeout=60)
                elif j % 3 == 1:
                    got = env.submit("result = [k, j]", k=k, j=j).result(timeout=60)
                else:
                    got = env.eval_json("result = [k, j]", k=k, j=j)
                assert got == [k, j]

        with ThreadPoolExecutor(4) as pool:  # an exception in a thread re-raises here
            list(pool.map(use, range(4)))


@gen2
@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_signal_during_a_call_surfaces_after_it_and_the_next_call_is_not_confused() -> None:
    # A call without a timeout runs on this (main) thread; a signal that arrives meanwhile is
    # handled when the call returns, and the answer it left behind is never taken for the
    # next call's.
    class Interrupted(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        with envknit.SubInterpreterEnv("sig") as env:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Interrupted):
                env.eval_json(
                    "import time\nt = time.monotonic()\n"
                    "while time.monotonic() - t < 0.6:\n    pass\nresult = 'late'"
                )
            assert env.eval_json("result = 'mine'") == "mine"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@gen2
def test_a_future_callback_may_call_the_same_interpreter() -> None:
    with envknit.SubInterpreterEnv("cb") as env:
        seen: Future[object] = Future()

        def callback(done: Future[object]) -> None:
            try:
                seen.set_result(env.eval_json("result = r * 10", r=done.result()))
            except BaseException as exc:
                seen.set_exception(exc)

        env.submit("result = 4").add_done_callback(callback)
        assert seen.result(timeout=60) == 40


@gen2
def test_submit_delivers_remote_errors() -> None:
    with envknit.SubInterpreterEnv("ml") as interp:
        future = interp.submit("raise LookupError('gone')")
        with pytest.raises(SubInterpreterError, match="LookupError: gone"):
            future.result(timeout=60)


# Strict alternation through a shared memory byte, with a 60 s GIL switch interval inside each
# interpreter: each side spins in Python bytecode (holding its GIL) until the other side moves.
# Two interpreters sharing one GIL could not make a single hand-off without the spinner giving
# the GIL up, which it does not do for 60 s; with their own GILs the 100 hand-offs take
# milliseconds, however loaded the machine is (the OS time-slices the two threads).
_PING_PONG = """
import mmap, os, sys, time
fd = os.open(path, os.O_RDWR)
mm = mmap.mmap(fd, 1)
os.close(fd)
old = sys.getswitchinterval()
sys.setswitchinterval(60.0)
try:
    end = time.monotonic() + 30
    done = 0
    while done < rounds and time.monotonic() < end:
        if mm[0] % 2 == me:
            mm[0] = mm[0] + 1
            done += 1
finally:
    sys.setswitchinterval(old)
    mm.close()
result = done
"""


@gen2
def test_two_interpreters_run_python_bytecode_at_the_same_time(tmp_path: Path) -> None:
    shared = tmp_path / "flag"
    shared.write_bytes(b"\0")
    with envknit.SubInterpreterEnv("a") as a, envknit.SubInterpreterEnv("b") as b:
        fa = a.submit(_PING_PONG, path=str(shared), me=0, rounds=100)
        fb = b.submit(_PING_PONG, path=str(shared), me=1, rounds=100)
        assert (fa.result(timeout=60), fb.result(timeout=60)) == (100, 100)
    assert shared.read_bytes() == bytes([200])


@gen2
def test_bad_arguments_are_refused_before_anything_starts() -> None:
    with pytest.raises(envknit.InvalidNameError):
        envknit.SubInterpreterEnv("../x")
    with pytest.raises(ValueError, match="fallback"):
        envknit.SubInterpreterEnv("ml", fallback="process")  # type: ignore[arg-type]
    with envknit.SubInterpreterEnv("ml") as interp, pytest.raises(ValueError, match="timeout"):
        interp.eval_json("result = 1", timeout=-1)
