"""Subprocess workers: run a locked package in its own process and reach it through proxies."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ._proxy import WorkerModuleProxy, WorkerProxy, import_module

__all__ = ["WorkerModuleProxy", "WorkerProxy", "shutdown_workers", "worker"]


@contextmanager
def worker(name: str, version: str, *, timeout: float | None = None) -> Iterator[WorkerModuleProxy]:
    """Import ``name==version`` in a worker process and yield a proxy of the module.

    The version is looked up in the locks given to ``envknit.configure_from_lock()`` and in
    ``./envknit.lock.yaml``; the worker runs that environment's target Python with only the
    environment's store entries (and that Python's standard library) on ``sys.path``. Workers
    are pooled per environment and reused by later blocks; ``timeout`` (seconds) bounds every
    call made through the proxy and what it returns. See docs/workers.md.
    """
    # Imported here, not at module level: locating reads the lock (YAML, packaging) and the
    # pool needs subprocess, which every `envknit` command would otherwise pay at start-up
    # through `import envknit`.
    from ._locate import locate
    from ._pool import get_worker

    located = locate(name, version)
    pooled = get_worker(located.spec)
    yield import_module(pooled, located.module, timeout)


def shutdown_workers() -> None:
    """Stop every worker process. Proxies from them stop working; new calls respawn."""
    pool = sys.modules.get(f"{__name__}._pool")
    if pool is not None:  # not loaded: no worker was ever asked for, so none runs
        pool.shutdown_workers()


def _reset_for_tests() -> None:
    """Stop every worker and forget cached look-ups (called after each test)."""
    shutdown_workers()
    from ._locate import forget

    forget()
