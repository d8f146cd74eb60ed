"""CPython 3.12 adapter: the private ``_xxsubinterpreters`` and ``_xxinterpchannels`` modules.

Rides on private CPython 3.12 APIs that changed in 3.13 (see ``_py313.py``).
"""

from __future__ import annotations

import sys
from typing import cast

from ._contract import RunFailure

assert sys.version_info >= (3, 12)

import _xxsubinterpreters as _interpreters  # noqa: E402

import _xxinterpchannels as _channels  # noqa: E402

__all__ = ["Py312Adapter"]

_EMPTY = object()


class Py312Adapter:
    """Interpreters from ``_xxsubinterpreters.create(isolated=True)``, results over channels."""

    # send() on a 3.12 channel never blocks, so the single driving thread cannot deadlock.
    send_setup = (
        "import _xxinterpchannels as _envknit_ch\n"
        "def _envknit_send(text, _send=_envknit_ch.send, _cid=__envknit_q__):\n"
        "    _send(_cid, text)\n"
        "del _envknit_ch, __envknit_q__\n"
    )
    recv_setup = (
        "import _xxinterpchannels as _envknit_ch\n"
        "def _envknit_recv(_recv=_envknit_ch.recv, _cid=__envknit_rq__):\n"
        "    return _recv(_cid, None)\n"
        "del _envknit_ch, __envknit_rq__\n"
    )

    def create(self) -> object:
        # The returned InterpreterID owns the interpreter: dropping it destroys the interpreter,
        # so the caller keeps it for the interpreter's whole life.
        return _interpreters.create(isolated=True)

    def destroy(self, interp: object) -> None:
        _interpreters.destroy(interp)

    def prepare(self, script: str) -> object:
        return script  # 3.12's run_string() takes source text only

    def run(
        self, interp: object, script: object, shared: dict[str, object] | None
    ) -> RunFailure | None:
        try:
            _interpreters.run_string(interp, cast(str, script), shared=shared)
        except _interpreters.RunFailedError as exc:
            # 3.12 gives only "<class 'ValueError'>: message", no type object and no traceback.
            text = str(exc)
            head, sep, message = text.partition(": ")
            if sep and head.startswith("<class '") and head.endswith("'>"):
                return RunFailure(type_name=head[8:-2], message=message)
            return RunFailure(type_name="RunFailedError", message=text)
        return None

    def create_queue(self) -> object:
        return _channels.create()

    def queue_get(self, queue: object) -> str | None:
        item = _channels.recv(queue, _EMPTY)
        if item is _EMPTY:
            return None
        return str(item)

    def queue_put(self, queue: object, text: str) -> None:
        _channels.send(queue, text)

    def destroy_queue(self, queue: object) -> None:
        _channels.destroy(queue)
