"""Gen 1 soft isolation: use(), import_version, enable/disable, context propagation."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ContextExecutor", "ContextThread", "configure_from_lock", "context_wrap", "disable",
    "enable", "import_version", "set_default", "use",
]


def _todo(*args: Any, **kwargs: Any) -> Any:  # placeholder until the Gen 1 issue lands
    raise NotImplementedError


use = import_version = enable = disable = set_default = configure_from_lock = context_wrap = _todo


def configured_locks() -> tuple[Any, ...]:
    """The lock files passed to configure_from_lock(), in order (contract for envknit.worker)."""
    return ()


ContextThread: Any = None
ContextExecutor: Any = None
