"""Gen 1 soft isolation: use(), import_version, enable/disable, context propagation."""

from __future__ import annotations

from .. import _configured
from .._configured import configured_locks as configured_locks
from . import _router
from ._api import (
    configure_from_lock as configure_from_lock,
    import_version as import_version,
    set_default as set_default,
    use as use,
)
from ._context import context_wrap as context_wrap
from ._registry import REGISTRY as _REGISTRY
from ._router import disable as disable, enable as enable

__all__ = [
    "ContextExecutor", "ContextThread", "configure_from_lock", "configured_locks", "context_wrap",
    "disable", "enable", "import_version", "set_default", "use",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._executor import ContextExecutor as ContextExecutor
    from ._threads import ContextThread as ContextThread


def __getattr__(name: str) -> object:
    """``ContextExecutor`` and ``ContextThread`` load on first use (concurrent.futures is not
    light, and threading costs configure_from_lock's start-up ~1.5 ms)."""
    if name == "ContextExecutor":
        from ._executor import ContextExecutor

        globals()[name] = ContextExecutor
        return ContextExecutor
    if name == "ContextThread":
        from ._threads import ContextThread

        globals()[name] = ContextThread
        return ContextThread
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _reset_for_tests() -> None:
    """Disable the router and forget every configured lock, default and parked module."""
    _router.disable()
    _router.park_clear()
    _REGISTRY.clear()
    _configured.forget_locks()
