"""Routed imports under threads and asyncio: each context gets its own versions, no leaks."""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.metadata
import random
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import envknit

from ._routing_fixtures import make_mylib_lock

VERSIONS = ("1.0.0", "2.0.0")


@pytest.fixture
def lock(envknit_home: Path, tmp_path: Path) -> Path:
    path = make_mylib_lock(envknit_home, tmp_path)
    envknit.configure_from_lock(path)
    return path


def _observed() -> tuple[str, str, str, str]:
    import helper
    import mylib

    return (
        mylib.__version__,
        helper.__version__,
        importlib.import_module("mylib").__version__,
        importlib.metadata.version("mylib"),
    )


@pytest.mark.timeout(120)
def test_eight_threads_each_see_their_own_version(lock: Path) -> None:
    rounds = 40
    barrier = threading.Barrier(8)
    wrong: list[tuple[int, int, tuple[str, ...]]] = []
    done: list[int] = []

    def body(index: int) -> None:
        barrier.wait()
        for i in range(rounds):
            # alternate so that every thread switches versions all the time
            version = VERSIONS[(index + i) % 2]
            with envknit.use("mylib", version):
                seen = _observed()
                if seen != (version,) * 4:
                    wrong.append((index, i, seen))
                with envknit.use("mylib", VERSIONS[(index + i + 1) % 2]) as inner:
                    if inner.__version__ == version:
                        wrong.append((index, i, ("inner",)))
                if _observed() != (version,) * 4:
                    wrong.append((index, i, ("after inner",)))
        done.append(index)

    envknit.enable()
    threads = [threading.Thread(target=body, args=(n,)) for n in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: inside blocks too
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=100)
    finally:
        sys.setswitchinterval(interval)
    assert sorted(done) == list(range(8))
    assert wrong == []


@pytest.mark.timeout(120)
def test_twenty_asyncio_tasks_await_inside_their_blocks(lock: Path) -> None:
    async def task(index: int) -> list[tuple[str, ...]]:
        errors: list[tuple[str, ...]] = []
        for i in range(10):
            version = VERSIONS[(index + i) % 2]
            with envknit.use("mylib", version) as entered:
                await asyncio.sleep(random.random() / 1000)
                if _observed() != (version,) * 4 or entered.__version__ != version:
                    errors.append((str(index), version, *_observed()))
                await asyncio.sleep(0)
                if entered.helper_lazy()[0] != version:
                    errors.append((str(index), "lazy"))
        return errors

    async def main() -> list[list[tuple[str, ...]]]:
        return await asyncio.gather(*(task(n) for n in range(20)))

    results = asyncio.run(main())
    assert results == [[] for _ in range(20)]


def test_context_thread_executor_and_wrap_carry_the_snapshot(lock: Path) -> None:
    envknit.set_default("mylib", "2.0.0")  # what a context without a block gets
    results: dict[str, str] = {}

    def record(key: str) -> str:
        import mylib

        results[key] = mylib.__version__
        return str(mylib.__version__)

    with envknit.use("mylib", "1.0.0"):
        carried = envknit.ContextThread(target=record, args=("context",))
        plain = threading.Thread(target=record, args=("plain",))
        wrapped = envknit.context_wrap(record)
        with envknit.ContextExecutor(max_workers=2) as pool:
            inside = pool.submit(record, "submit-inside")
            mapped = list(pool.map(record, ["map-1", "map-2"]))
    carried.start()  # started after the block: the snapshot was taken at creation
    plain.start()
    carried.join(10)
    plain.join(10)
    with envknit.ContextExecutor(max_workers=2) as pool:
        outside = pool.submit(record, "submit-outside")
        # a wrapped function keeps its snapshot wherever it runs, concurrently too
        both = [pool.submit(wrapped, f"wrapped-{n}") for n in range(2)]
        assert [f.result(10) for f in both] == ["1.0.0", "1.0.0"]
    assert inside.result(10) == "1.0.0" and mapped == ["1.0.0", "1.0.0"]
    assert outside.result(10) == "2.0.0"  # no block: the default
    assert results["context"] == "1.0.0"
    assert results["plain"] == "2.0.0"  # a plain Thread starts with an empty context


def test_context_thread_subclass_overriding_run(lock: Path) -> None:
    seen: list[str] = []

    class Worker(envknit.ContextThread):
        def run(self) -> None:
            import mylib

            seen.append(mylib.__version__)

    with envknit.use("mylib", "1.0.0"):
        thread = Worker()
    thread.start()
    thread.join(10)
    assert seen == ["1.0.0"]


def test_one_use_object_shared_by_tasks(lock: Path) -> None:
    shared = envknit.use("mylib", "1.0.0")

    async def task() -> str:
        with shared as module:
            await asyncio.sleep(0)
            import mylib

            assert mylib is module
        return str(module.__version__)

    async def main() -> list[str]:
        return await asyncio.gather(*(task() for _ in range(10)))

    assert asyncio.run(main()) == ["1.0.0"] * 10
    with shared, shared as inner:  # nested entries of one object
        assert inner.__version__ == "1.0.0"


def _pinned_mylib() -> str | None:
    from envknit.routing._context import current

    return current().pins.get("mylib")


@pytest.mark.timeout(60)
def test_block_held_across_yield_and_finished_in_another_thread(lock: Path) -> None:
    def steps() -> Iterator[str]:
        with envknit.use("mylib", "2.0.0") as mylib:
            yield str(mylib.__version__)
            yield "second"

    with envknit.use("mylib", "1.0.0"):
        gen = steps()
        assert next(gen) == "2.0.0"
        assert _observed() == ("2.0.0",) * 4  # suspended inside the block: still open here
        errors: list[BaseException] = []

        def finish() -> None:
            try:
                assert list(gen) == ["second"]
                assert _pinned_mylib() is None  # this thread never entered the block
            except BaseException as exc:  # any failure, reported to the main thread
                errors.append(exc)

        thread = threading.Thread(target=finish)
        thread.start()
        thread.join(30)
        assert errors == []
        assert _observed() == ("1.0.0",) * 4  # back to the outer block: not pinned to 2.0.0
    assert _pinned_mylib() is None


def test_generator_closed_or_collected_out_of_order_pins_nothing(lock: Path) -> None:
    def steps() -> Iterator[None]:
        with envknit.use("mylib", "2.0.0"):
            yield

    gen = steps()
    next(gen)
    with envknit.use("mylib", "1.0.0"):
        gen.close()  # its block exits while a later block is open in this context
        assert _observed() == ("1.0.0",) * 4
    assert _pinned_mylib() is None

    gen = steps()
    next(gen)
    assert _pinned_mylib() == "2.0.0"
    del gen
    gc.collect()
    assert _pinned_mylib() is None


def test_exit_without_enter_is_still_an_error(lock: Path) -> None:
    with pytest.raises(RuntimeError, match="without a matching __enter__"):
        envknit.use("mylib", "1.0.0").__exit__(None, None, None)
