"""CPython 3.14+ adapter: the public ``concurrent.interpreters`` API of PEP 734.

Written to the documented 3.14 API
(https://docs.python.org/3.14/library/concurrent.interpreters.html); Python 3.14 is not
installed on the machine this was developed on, so this adapter has not been run here.
"""

from __future__ import annotations

import sys

from ._contract import RunFailure

assert sys.version_info >= (3, 14)

from concurrent import interpreters  # type: ignore[import-not-found]  # noqa: E402

__all__ = ["Py314Adapter"]


class Py314Adapter:
    """``interpreters.create()`` (own GIL), results through ``interpreters.create_queue()``."""

    # A Queue object is shareable in 3.14, so the child receives the Queue itself.
    send_setup = "_envknit_send = __envknit_q__.put_nowait\ndel __envknit_q__\n"
    recv_setup = (
        "def _envknit_recv(_q=__envknit_rq__):\n"
        "    return None if _q.empty() else _q.get_nowait()\n"
        "del __envknit_rq__\n"
    )

    def create(self) -> object:
        return interpreters.create()

    def destroy(self, interp: object) -> None:
        interp.close()  # type: ignore[attr-defined]

    def prepare(self, script: str) -> object:
        return script

    def run(
        self, interp: object, script: object, shared: dict[str, object] | None
    ) -> RunFailure | None:
        if shared:
            interp.prepare_main(shared)  # type: ignore[attr-defined]
        try:
            interp.exec(script)  # type: ignore[attr-defined]
        except interpreters.ExecutionFailed as exc:
            info = exc.excinfo
            return RunFailure(
                type_name=str(info.type.__qualname__),
                message=str(info.msg),
                traceback=str(getattr(info, "errdisplay", "") or info.formatted or ""),
            )
        return None

    def create_queue(self) -> object:
        return interpreters.create_queue()

    def queue_get(self, queue: object) -> str | None:
        try:
            return str(queue.get_nowait())  # type: ignore[attr-defined]
        except interpreters.QueueEmpty:
            return None

    def queue_put(self, queue: object, text: str) -> None:
        queue.put_nowait(text)  # type: ignore[attr-defined]

    def destroy_queue(self, queue: object) -> None:
        # Queues are reference counted in 3.14; dropping the last reference frees them.
        return None
