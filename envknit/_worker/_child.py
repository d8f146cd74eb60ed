"""The worker process: serves the host's requests over two pipes (stdlib only, run by path).

Started as ``python -I -S .../_child.py READ_FD WRITE_FD``: isolated mode, so neither the user's
site-packages, ``PYTHONPATH`` nor the host's ``__main__`` is involved. The first frame from the
host carries the protocol version and the environment's ``sys.path`` entries, as data. stdout and
stderr are left alone: a package that prints cannot corrupt the protocol, which has its own pipes.
"""

from __future__ import annotations

import builtins
import importlib
import operator
import os
import signal
import site
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .. import _lane as L, _runner as R
    from . import _protocol as P
else:

    def _load(name: str, path: str) -> ModuleType:
        # Loaded by file path under a private name: putting this directory on sys.path would
        # let envknit's own modules shadow the environment's packages.
        import importlib.util

        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    _HERE = os.path.dirname(os.path.abspath(__file__))
    P = _load("_envknit_worker_protocol", os.path.join(_HERE, "_protocol.py"))
    L = _load("_envknit_worker_lane", os.path.join(os.path.dirname(_HERE), "_lane.py"))
    R = _load("_envknit_runner", os.path.join(os.path.dirname(_HERE), "_runner.py"))

__all__ = ["Server", "main"]

#: Frames of this file (and of the shared runner) never show in a remote traceback.
_OWN_FILES = (R.normalize(__file__),)
_OPERATORS = frozenset((*P.BINARY_OPERATORS, *P.UNARY_OPERATORS, *P.COMPARISONS))
_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    name: getattr(builtins, name) for name in P.CONVERSIONS
}


def _describe_error(exc: BaseException) -> dict[str, Any]:
    report = R.report(exc, _OWN_FILES, chained=False)
    report["builtin"] = R.builtin_base(type(exc))
    return report


class Server:
    """Holds the worker's objects under handle ids and answers one request at a time."""

    def __init__(self, reader: P.FrameReader, write_fd: int, limit: int) -> None:
        self.reader = reader
        self.write_fd = write_fd
        self.limit = limit
        self.handles: dict[int, Any] = {}
        self.next_handle = 1
        #: whether the request being served may hold tagged values (see ``P.is_tagged``).
        self.tagged = True
        #: the lane files of the reply being built (and, until the next request, of the last).
        self.outbox = L.Outbox(all_buffers=False)
        self.ops: dict[str, Callable[[dict[str, Any]], Any]] = {
            "import": self.op_import,
            "getattr": self.op_getattr,
            "setattr": self.op_setattr,
            "call": self.op_call,
            "getitem": self.op_getitem,
            "setitem": self.op_setitem,
            "len": lambda m: len(self.obj(m)),
            "bool": lambda m: bool(self.obj(m)),
            "repr": lambda m: repr(self.obj(m)),
            "str": lambda m: str(self.obj(m)),
            "dir": lambda m: sorted(dir(self.obj(m))),
            "contains": lambda m: self.arg(m["item"]) in self.obj(m),
            "iter": lambda m: self.handle(iter(self.obj(m))),
            "next": self.op_next,
            "eval_json": self.op_eval_json,
            "call_target": self.op_call_target,
            "stats": lambda m: {"handles": len(self.handles), "pid": os.getpid()},
            "operator": self.op_operator,
            "array": self.op_array,
        }

    # -- values ------------------------------------------------------------------------------
    def handle(self, value: Any, *, cache: bool = False) -> dict[str, Any]:
        """Keep ``value`` here and return its reference."""
        hid = self.next_handle
        self.next_handle += 1
        self.handles[hid] = value
        ref: dict[str, Any] = {"$r": hid, "type": R.type_name(type(value))}
        if cache:
            ref["cache"] = True
        return ref

    def result(self, value: Any, *, cache: bool = False) -> Any:
        """``value`` by value when the wire format can carry all of it, else as a handle.

        Large bytes go on the binary lane; other buffers (arrays) stay here as handles, which
        the host fetches by value when asked (``op_array``: ``numpy.asarray(proxy)``).
        """
        outbox = self.outbox
        mark = outbox.checkpoint()  # a reply may hold several results (iteration batches)
        try:
            return P.encode(value, limit=self.limit, lane=outbox)
        except (P.NotPlain, RecursionError):
            outbox.discard(mark)  # bytes written for a container that stays here after all
            return self.handle(value, cache=cache)

    def by_value(self, value: Any) -> Any:
        """``value`` with every buffer on the lane (results of eval_json, call_target, array)."""
        self.outbox.all_buffers = True
        return P.encode(value, limit=self.limit, lane=self.outbox)

    def obj(self, msg: dict[str, Any]) -> Any:
        hid = msg["ref"]
        try:
            return self.handles[hid]
        except KeyError:
            raise LookupError(f"no object with handle {hid} in this worker (released?)") from None

    def arg(self, data: Any) -> Any:
        return P.decode(data, self._deref, L.receive) if self.tagged else data

    def _deref(self, ref: dict[str, Any]) -> Any:
        return self.obj({"ref": ref["$r"]})

    # -- operations --------------------------------------------------------------------------
    def op_import(self, msg: dict[str, Any]) -> Any:
        return self.handle(importlib.import_module(msg["module"]))

    def op_getattr(self, msg: dict[str, Any]) -> Any:
        owner = self.obj(msg)
        value = getattr(owner, msg["name"])
        # Callables found on a module rarely change: the host may keep them.
        return self.result(value, cache=isinstance(owner, ModuleType) and callable(value))

    def op_setattr(self, msg: dict[str, Any]) -> None:
        setattr(self.obj(msg), msg["name"], self.arg(msg["value"]))

    def op_call(self, msg: dict[str, Any]) -> Any:
        args = self.arg(msg.get("args", []))
        kwargs = self.arg(msg.get("kwargs", {}))
        return self.result(self.obj(msg)(*args, **kwargs))

    def op_getitem(self, msg: dict[str, Any]) -> Any:
        return self.result(self.obj(msg)[self.arg(msg["key"])])

    def op_setitem(self, msg: dict[str, Any]) -> None:
        self.obj(msg)[self.arg(msg["key"])] = self.arg(msg["value"])

    def op_next(self, msg: dict[str, Any]) -> Any:
        it = self.obj(msg)
        items = []
        for _ in range(min(int(msg.get("n", 1)), P.NEXT_BATCH)):
            try:
                items.append(self.result(next(it)))
            except StopIteration:
                return {"items": items, "done": True}
        return {"items": items, "done": False}

    def op_operator(self, msg: dict[str, Any]) -> Any:
        name = msg["name"]
        if name in _CONVERSIONS:
            func = _CONVERSIONS[name]
        elif name in _OPERATORS:
            func = getattr(operator, name)
        else:
            raise ValueError(f"operator {name!r} is not forwarded to workers")
        return self.result(func(*self.arg(msg["args"])))

    def op_eval_json(self, msg: dict[str, Any]) -> Any:
        code = compile(msg["code"], R.SNIPPET_FILENAME, "exec")
        return self.plain(R.run_snippet(code, self.arg(msg.get("inputs", {}))))

    def op_array(self, msg: dict[str, Any]) -> Any:
        """The object's data by value: an ndarray as itself (numpy.asarray() of anything
        array-like when numpy is loaded here), any other buffer as a memoryview."""
        value = self.obj(msg)
        numpy = sys.modules.get("numpy")
        if numpy is not None and not isinstance(value, numpy.ndarray):
            value = numpy.asarray(value)
        elif not L.is_buffer(value):
            raise TypeError(f"{R.type_name(type(value))} has no data to fetch (no buffer)")
        return self.by_value(value)

    def op_call_target(self, msg: dict[str, Any]) -> Any:
        func = R.resolve(str(msg["target"]))
        return self.plain(func(*self.arg(msg.get("args", [])), **self.arg(msg.get("kwargs", {}))))

    def plain(self, value: Any) -> Any:
        """``value`` as the JSON value a sub-interpreter would return, in its wire form: a
        result ``{"$t": [1]}`` must arrive as that dict, not as a tuple. Buffers in it (bytes,
        arrays) travel by value on the lane, as they do out of a sub-interpreter."""
        return self.by_value(_plain_json(value))

    # -- loop --------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        try:
            payload = P.dumps(message)
        except P.NotPlain as exc:  # an int past the int/str digit limit, say
            self.outbox.discard()
            report = _describe_error(TypeError(f"the result cannot be sent: {exc}"))
            payload = P.dumps({"i": message.get("i"), "err": report})
        if len(payload) > self.limit:
            self.outbox.discard()
            payload = P.dumps(
                {"i": message.get("i"), "big": {"size": len(payload), "limit": self.limit}}
            )
        P.write_frame(self.write_fd, payload, self.limit)

    def serve(self) -> None:
        try:
            self._serve()
        finally:
            # The host is gone (or closed the pipe): files of a reply it never took go too.
            self.outbox.discard()

    def _serve(self) -> None:
        while True:
            try:
                raw = self.reader.read()
            except P.PeerClosed:
                return  # the host closed the pipe: shut down quietly
            try:
                msg = P.loads(raw)
                if not isinstance(msg, dict):
                    raise P.WireError("a request must be a JSON object")
            except P.WireError as exc:
                # A whole frame was read, so the stream is still in step: say so and go on.
                # The host never sends such a frame; it reads this as a protocol error.
                self.send({"i": None, "err": _describe_error(exc)})
                continue
            # The host took (unlinked) the last reply's files when it read the reply.
            outbox = self.outbox
            if outbox.total:
                outbox.discard()
            outbox.all_buffers = False
            for hid in msg.get("rel", ()):
                self.handles.pop(hid, None)
            op = msg.get("op")
            if op is None:
                continue  # a message that only releases handles
            rid = msg.get("i")
            self.tagged = P.is_tagged(raw)
            try:
                value = self.ops[op](msg)
            except P.FrameTooLarge as exc:  # a bytes result, caught before encoding it
                self.send({"i": rid, "big": {"size": exc.size, "limit": exc.limit}})
                continue
            except L.LaneTooLarge as exc:  # buffers past the lane's limit
                self.outbox.discard()
                self.send({"i": rid, "big": {"size": exc.size, "limit": exc.limit, "lane": True}})
                continue
            except Exception as exc:  # noqa: BLE001 - every failure of user code goes to the host
                self.outbox.discard()
                self.send({"i": rid, "err": _describe_error(exc)})
                continue
            self.send({"i": rid, "ok": value})


def _plain_json(value: Any) -> Any:
    """``value`` as plain JSON data (tuples become lists) with its buffers (bytes, arrays) in
    place, or TypeError naming its type."""
    try:
        return L.plain_json(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"result must be JSON-compatible: {exc}") from None


def _out_of_the_way(fd: int) -> int:
    """``fd`` moved to a high, close-on-exec descriptor number (the low one closed).

    User code that writes to "fd 4" or opens files (which take the lowest free numbers) then
    misses the protocol pipe, and subprocesses the package starts do not inherit it. Only a
    hardening: a frame corrupted anyway is refused by the host (see ``_protocol``).
    """
    import fcntl

    try:
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FD)
    except OSError:  # a descriptor limit below _HIGH_FD: keep the number we were given
        return fd
    os.close(fd)
    return moved


#: Where the protocol pipes move to in the worker (below the usual 1024 descriptor limit).
_HIGH_FD = 512


def main(argv: list[str]) -> int:
    read_fd, write_fd = _out_of_the_way(int(argv[0])), _out_of_the_way(int(argv[1]))
    # Ctrl-C in the terminal reaches the whole process group; only the host decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reader = P.FrameReader(read_fd, P.DEFAULT_MAX_MESSAGE_SIZE)
    try:
        hello = P.loads(reader.read())
    except P.WireError as exc:
        print(f"envknit worker: bad start-up message: {exc}", file=sys.stderr)
        return 2
    answer: dict[str, Any] = {"protocol": P.PROTOCOL_VERSION}
    if hello.get("protocol") != P.PROTOCOL_VERSION:
        answer["error"] = f"host speaks protocol {hello.get('protocol')!r}"
        P.write_frame(write_fd, P.dumps(answer), P.DEFAULT_MAX_MESSAGE_SIZE)
        return 2
    limit = int(hello.get("limit", P.DEFAULT_MAX_MESSAGE_SIZE))
    reader.limit = limit
    for directory in hello.get("path", []):
        # addsitedir also honours the .pth files an installed package may ship, as a venv would;
        # with -S, importing site did not add any site-packages of its own.
        site.addsitedir(str(directory))
    sys.argv = [""]
    answer.update(
        pid=os.getpid(), python=list(sys.version_info[:3]), executable=sys.executable, path=sys.path
    )
    reader.frame_timeout = float(hello.get("frame_timeout", P.DEFAULT_FRAME_TIMEOUT))
    try:
        P.write_frame(write_fd, P.dumps(answer), limit)
        Server(reader, write_fd, limit).serve()
    except (BrokenPipeError, P.PeerClosed):
        # The host went away mid-reply (it killed us after a timeout, or exited): nothing is
        # left to tell it, and a traceback would land on the host's stderr, which we share.
        return 0
    except P.WireError as exc:  # a half-written request frame: the host is gone or broken
        print(f"envknit worker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
