"""The lock files given to ``configure_from_lock()``, in order: read by the router and workers."""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["add_lock", "configured_locks", "forget_locks"]

# Replaced, never mutated, so that readers need no lock (rebinding a global is atomic).
_locks: tuple[Path, ...] = ()
_write = threading.Lock()


def configured_locks() -> tuple[Path, ...]:
    """The lock files passed to ``configure_from_lock()`` so far, in order (resolved paths)."""
    return _locks


def add_lock(path: Path) -> None:
    """Remember ``path`` (already resolved) after the one configured before it, once."""
    global _locks
    with _write:
        if path not in _locks:
            _locks = (*_locks, path)


def forget_locks() -> None:
    """Forget every configured lock (tests)."""
    global _locks
    with _write:
        _locks = ()
