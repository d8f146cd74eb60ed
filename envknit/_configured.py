"""The lock files given to ``configure_from_lock()``, in order: read by the router and workers."""

from __future__ import annotations

import _thread

# configure_from_lock() has a start-up budget (docs/benchmarks.md): paths are kept as strings
# (pathlib is imported only when someone asks for them) and the lock is _thread's (threading
# costs a few ms and nothing here needs more than a lock).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["add_lock", "any_locks", "configured_locks", "forget_locks"]

# Replaced, never mutated, so that readers need no lock (rebinding a global is atomic).
_locks: tuple[str, ...] = ()
_write = _thread.allocate_lock()


def configured_locks() -> tuple[Path, ...]:
    """The lock files passed to ``configure_from_lock()`` so far, in order (resolved paths)."""
    from pathlib import Path

    return tuple(Path(p) for p in _locks)


def any_locks() -> bool:
    """Whether ``configure_from_lock()`` was called (without building paths)."""
    return bool(_locks)


def add_lock(path: str) -> None:
    """Remember ``path`` (a real path) after the one configured before it, once."""
    global _locks
    with _write:
        if path not in _locks:
            _locks = (*_locks, path)


def forget_locks() -> None:
    """Forget every configured lock (tests)."""
    global _locks
    with _write:
        _locks = ()
