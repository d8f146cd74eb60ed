"""CPython 3.13 adapter: the private ``_interpreters`` and ``_interpqueues`` modules.

Rides on private CPython 3.13 APIs (3.14 publishes them as ``concurrent.interpreters``).
"""

from __future__ import annotations

import sys
from typing import Final, cast

from ._contract import RunFailure

assert sys.version_info >= (3, 13)

import _interpqueues as _queues  # noqa: E402
import _interpreters  # noqa: E402

__all__ = ["Py313Adapter"]

# _interpqueues.create(maxsize, fmt, unboundop): 0 = unbounded, fmt 0 = plain shareable object,
# unboundop 3 = UNBOUND (an item outlives the interpreter that put it). Final keeps the literal
# types that the stubs of create() and put() ask for.
_MAXSIZE: Final = 0
_FMT: Final = 0
_UNBOUNDOP: Final = 3


class Py313Adapter:
    """Interpreters from ``_interpreters.create('isolated')``, results over queues."""

    send_setup = (
        "import _interpqueues as _envknit_qs\n"
        "def _envknit_send(text, _put=_envknit_qs.put, _qid=__envknit_q__):\n"
        f"    _put(_qid, text, {_FMT}, {_UNBOUNDOP})\n"
        "del _envknit_qs, __envknit_q__\n"
    )
    recv_setup = (
        "import _interpqueues as _envknit_qs\n"
        "def _envknit_recv(_get=_envknit_qs.get, _count=_envknit_qs.get_count,\n"
        "                  _qid=__envknit_rq__):\n"
        "    return _get(_qid)[0] if _count(_qid) else None\n"
        "del _envknit_qs, __envknit_rq__\n"
    )

    def create(self) -> object:
        # A plain int id; nothing destroys the interpreter but destroy() (reqrefs=False).
        return _interpreters.create("isolated")

    def destroy(self, interp: object) -> None:
        _interpreters.destroy(cast(int, interp))

    def prepare(self, script: str) -> object:
        # exec() of a code object (marshalled across) measured 9.8 us against 16.3 us for the
        # same one-line script as text, which 3.13.0 compiles again on every call.
        return compile(script, "<envknit>", "exec")

    def run(
        self, interp: object, script: object, shared: dict[str, object] | None
    ) -> RunFailure | None:
        info = _interpreters.exec(cast(int, interp), script, shared)  # type: ignore[arg-type]
        if info is None:
            return None
        # exec() returns the uncaught exception as data; errdisplay can be missing (it was when
        # a sys.monitoring callback that raised was still active while formatting).
        return RunFailure(
            type_name=str(info.type.__qualname__),
            message=str(info.msg),
            traceback=str(getattr(info, "errdisplay", "") or ""),
        )

    def create_queue(self) -> object:
        return _queues.create(_MAXSIZE, _FMT, _UNBOUNDOP)

    def queue_get(self, queue: object) -> str | None:
        # get() on an empty queue raises QueueEmpty, a class 3.13.0 imports lazily from
        # test.support (absent from some installs), so look at the count first.
        if not _queues.get_count(cast(int, queue)):
            return None
        item = _queues.get(cast(int, queue))
        return str(item[0])

    def queue_put(self, queue: object, text: str) -> None:
        _queues.put(cast(int, queue), text, _FMT, _UNBOUNDOP)

    def destroy_queue(self, queue: object) -> None:
        _queues.destroy(cast(int, queue))
