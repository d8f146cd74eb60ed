"""The active versions (a ContextVar) and the helpers that carry them into threads."""

from __future__ import annotations

import contextvars
from collections import namedtuple
from types import MappingProxyType

# configure_from_lock() imports this module and has a start-up budget (docs/benchmarks.md):
# typing (with re, enum and contextlib before 3.13) only for the type checker, functools when
# context_wrap() runs, and ContextThread (threading) in ._threads, loaded on first use.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import NamedTuple, ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")

    class _ActiveFields(NamedTuple):
        pins: Mapping[str, str]
        env: str | None
        parent: Active | None
        ended: list[bool]
else:
    _ActiveFields = namedtuple("_ActiveFields", ("pins", "env", "parent", "ended"))

__all__ = ["ACTIVE", "Active", "context_wrap", "current"]


class Active(_ActiveFields):
    """What one context routes: distribution -> version pins, and the active environment.

    ``parent`` is the state the entry replaced. ``ended`` (one flag, shared by every copy of
    the context) is set when the ``use()`` block that made this state exited in *another*
    context (a generator finished in another thread): this context cannot be reset from
    there, so it skips ended states instead (see ``current``), and is never pinned for good.

    A named tuple rather than a frozen dataclass: one is built on every ``use()`` entry and
    tuple construction is several times cheaper.
    """

    __slots__ = ()


EMPTY = Active(MappingProxyType({}), None, None, [False])

#: Immutable value; ``use()`` sets a new one and resets it with its token, so threads and
#: asyncio tasks (which copy the context) never see each other's versions.
ACTIVE: contextvars.ContextVar[Active] = contextvars.ContextVar("envknit_active", default=EMPTY)


def current() -> Active:
    """What this context routes now: the newest state whose ``use()`` block has not ended."""
    active = ACTIVE.get()
    while active.ended[0]:
        active = active.parent or EMPTY
    return active


def context_wrap(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``func`` so that it runs with the active versions of the moment of wrapping.

    Each call runs in its own copy of that snapshot, so the wrapper may be called from
    several threads at once.
    """
    import functools

    snapshot = contextvars.copy_context()

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return snapshot.copy().run(func, *args, **kwargs)

    return run
