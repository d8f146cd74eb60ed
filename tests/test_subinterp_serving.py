"""The serving thread's wait (look, then sleep) and submit().result() reading its own answer."""

from __future__ import annotations

import concurrent.futures
import os
import select
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

import envknit
from envknit._subinterp import _server, _serving
from tests._helpers import gen2

needs_poll = pytest.mark.skipif(not hasattr(select, "poll"), reason="needs select.poll")
serving = pytest.mark.skipif(not _server.AVAILABLE, reason="the serving thread needs select.poll")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def _write_later(fd: int, seconds: float) -> threading.Thread:
    def write() -> None:
        time.sleep(seconds)
        os.write(fd, b"\0")

    thread = threading.Thread(target=write)
    thread.start()
    return thread


@needs_poll
def test_waiter_times_out_and_wakes_for_a_byte(pipe: tuple[int, int]) -> None:
    r, w = pipe
    waiter = _serving.Waiter(r)
    assert waiter.wait(0.05) is False
    assert waiter.wait(0) is False
    os.write(w, b"\0")
    assert waiter.wait(0) is True  # readable: found by the first look
    assert waiter.wait(None) is True  # the byte is still there (the waiter never reads)
    os.read(r, 1)
    writer = _write_later(w, 0.1)
    assert waiter.wait(30) is True
    writer.join()


@needs_poll
def test_waiter_looks_less_after_long_waits_and_more_after_short_ones(
    pipe: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_serving, "_STOLEN", 10.0)  # this machine's load must not make it calm
    r, w = pipe
    spin = 0.2  # a wait over 2 * spin is long, one under it short
    waiter = _serving.Waiter(r, spin)
    waiter.budget = spin / 8
    writer = _write_later(w, 0.6)
    assert waiter.wait() is True
    writer.join()
    os.read(r, 1)
    assert waiter.budget == 0.0  # a thread that waits for rare requests sleeps at once
    os.write(w, b"\0")
    assert waiter.wait() is True
    os.read(r, 1)
    assert waiter.budget == spin / 8  # a short wait: it looks again, a little
    assert _serving.Waiter(r, 0.0).wait(0.01) is False  # spin 0: never looks


@needs_poll
def test_waiter_that_lost_its_core_sleeps_at_once_for_a_while(
    pipe: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A yield that kept the waiter off its core for over a millisecond means another process
    # wanted it: the waiter stops looking and sleeps, and does not look again for a while.
    r, w = pipe
    yields = []

    def slow_yield() -> None:
        yields.append(1)
        time.sleep(0.003)

    monkeypatch.setattr(os, "sched_yield", slow_yield)
    waiter = _serving.Waiter(r, 0.05)
    writer = _write_later(w, 0.1)
    assert waiter.wait() is True
    writer.join()
    os.read(r, 1)
    assert yields == [1]
    assert waiter.budget == 0.05  # not a verdict on how long requests take
    os.write(w, b"\0")
    assert waiter.wait() is True
    assert yields == [1]  # calm: it slept at once


def _callback_threads(future: Future[object]) -> list[str]:
    names: list[str] = []
    future.add_done_callback(lambda _: names.append(threading.current_thread().name))
    return names


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(_server.Server, name)

    def counted(self: _server.Server, *args: object) -> object:
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(_server.Server, name, counted)
    return calls


@gen2
@serving
def test_submit_result_takes_its_answer_on_the_calling_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # result() waits for the serving thread's answer itself (as a timed call does) instead of
    # the helper thread taking it and settling the Future: the Future settles on the caller's
    # thread, and the helper thread never wakes for it.
    with envknit.SubInterpreterEnv("own") as env:
        assert env.submit("result = 1").result(timeout=60) == 1  # starts the serving thread
        taken = _counting(monkeypatch, "take_submitted")
        for i in range(10):  # each call long enough to be claimed before it answers
            future = env.submit("import time\ntime.sleep(0.03)\nresult = i", i=i)
            names = _callback_threads(future)
            assert future.result(timeout=60) == i
            assert future.done() and future.exception() is None
            assert names == [threading.current_thread().name]
        assert taken == []
        failing = env.submit("import time\ntime.sleep(0.05)\nraise KeyError('k')")
        error = failing.exception(timeout=60)
        assert isinstance(error, envknit.SubInterpreterError) and "KeyError" in str(error)
        with pytest.raises(envknit.SubInterpreterError, match="KeyError"):
            failing.result(timeout=60)
        assert taken == []
        assert env.eval_json("result = 'timed'", timeout=30) == "timed"


@gen2
@serving
def test_result_that_times_out_leaves_a_plain_future() -> None:
    # A result(timeout) that ends first gives the answer back to the helper thread: the
    # Future still settles (callbacks, done(), futures.wait), a later result() gets the value,
    # and the next calls get their own answers.
    with envknit.SubInterpreterEnv("late") as env:
        assert env.submit("result = 1").result(timeout=60) == 1
        slow = "import time\ntime.sleep(0.4)\nresult = v"
        first = env.submit(slow, v="first")
        with pytest.raises(concurrent.futures.TimeoutError):
            first.result(timeout=0.05)
        assert not first.done() and not first.cancel()
        assert first.result(timeout=60) == "first"  # claimed again, answered to this thread
        second = env.submit(slow, v="second")
        names = _callback_threads(second)
        with pytest.raises(concurrent.futures.TimeoutError):
            second.exception(timeout=0.05)
        done, _ = concurrent.futures.wait([second], timeout=60)
        assert done == {second} and second.result(timeout=0) == "second"
        assert names and names[0].startswith("envknit-subinterp-")  # the helper thread
        assert env.eval_json("result = 'mine'", timeout=30) == "mine"
        assert env.submit("result = 'next'").result(timeout=60) == "next"


@gen2
@serving
def test_a_caller_that_gives_up_after_its_claim_was_seen_leaves_the_answer_to_the_helper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The serving thread saw the claim, so the answer's wake-up goes to the caller's pipe; the
    # caller stops waiting just then (its timeout, a signal): the helper thread takes over that
    # pipe for this call and settles the Future.
    with envknit.SubInterpreterEnv("orphan") as env:
        assert env.submit("result = 1").result(timeout=60) == 1
        future = env.submit("import time\ntime.sleep(0.2)\nresult = 'kept'")
        names = _callback_threads(future)
        wait = _server.Server.wait

        def gives_up_once_answered(self: _server.Server, timeout: float | None) -> bool:
            while not self.answered():
                time.sleep(0.005)
            return False

        monkeypatch.setattr(_server.Server, "wait", gives_up_once_answered)
        assert future.result(timeout=60) == "kept"  # the helper thread settled it
        monkeypatch.setattr(_server.Server, "wait", wait)
        assert names and names[0].startswith("envknit-subinterp-")
        assert env.eval_json("result = 'mine'", timeout=30) == "mine"
        assert env.submit("result = 'next'").result(timeout=60) == "next"
        assert [env.submit("result = i", i=i).result(timeout=60) for i in range(5)] == [
            0, 1, 2, 3, 4,
        ]


@gen2
@serving
def test_a_claim_that_comes_after_the_answer_is_forwarded_to_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The answer went to the helper thread (nobody had claimed it); a caller claims it before
    # the helper takes it: the helper hands the wake-up on to the caller, which takes it.
    with envknit.SubInterpreterEnv("forward") as env:
        assert env.submit("result = 1").result(timeout=60) == 1
        entered, go = threading.Event(), threading.Event()
        take = _server.Server.take_submitted

        def held(self: _server.Server) -> None:
            entered.set()
            go.wait(30)
            take(self)

        monkeypatch.setattr(_server.Server, "take_submitted", held)
        future = env.submit("result = 'forwarded'")
        names = _callback_threads(future)
        assert entered.wait(30)  # answered, to the helper thread, which waits in take_submitted
        releaser = threading.Timer(0.2, go.set)
        releaser.start()
        assert future.result(timeout=60) == "forwarded"
        releaser.join()
        monkeypatch.setattr(_server.Server, "take_submitted", take)
        assert names == [threading.current_thread().name]
        assert env.eval_json("result = 'mine'", timeout=30) == "mine"
        assert env.submit("result = 'next'").result(timeout=60) == "next"


@gen2
@serving
def test_the_serving_thread_waits_for_a_claim_only_when_one_is_expected() -> None:
    # After a call whose caller waited in result(), the next submitted call tells the serving
    # thread to look for a claim a moment before it wakes the helper thread; after one settled
    # by the helper thread (nobody waited), it does not.
    with envknit.SubInterpreterEnv("expect") as env:
        assert env.submit("result = 0").result(timeout=60) == 0  # starts the serving thread
        assert env.submit("import time\ntime.sleep(0.05)\nresult = 1").result(timeout=60) == 1
        server = env._ensure().driver._server
        assert server is not None and server.expect_claim
        unclaimed = env.submit("result = 2")
        assert concurrent.futures.wait([unclaimed], timeout=60).done == {unclaimed}
        assert not server.expect_claim
        assert env.submit("import time\ntime.sleep(0.05)\nresult = 3").result(timeout=60) == 3
        assert server.expect_claim


def _cpu_ticks(tid: int) -> tuple[int, str]:
    """User + system clock ticks of thread ``tid`` of this process, and its state letter."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12]), fields[0]


@gen2
@serving
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_idle_serving_thread_uses_no_cpu() -> None:
    # The serving thread looks for the next request only right after an answer; then it
    # sleeps in poll() until a request comes.
    with envknit.SubInterpreterEnv("idle") as env:
        for i in range(300):
            assert env.eval_json("result = i", i=i, timeout=30) == i
        tid = env.eval_json("import threading\nresult = threading.get_native_id()", timeout=30)
        time.sleep(0.1)
        before, _ = _cpu_ticks(tid)
        time.sleep(0.5)
        after, state = _cpu_ticks(tid)
        assert (after - before, state) == (0, "S")
        assert env.eval_json("result = 'awake'", timeout=30) == "awake"
