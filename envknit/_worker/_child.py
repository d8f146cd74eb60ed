"""The worker process: serves the host's requests over two pipes (stdlib only, run by path).

Started as ``python -I -S .../_boot.py READ_FD WRITE_FD`` (which runs this module from its
bytecode cache): isolated mode, so neither the user's site-packages, ``PYTHONPATH`` nor the
host's ``__main__`` is involved. The first frame from the host carries the protocol version and
the environment's ``sys.path`` entries, as data. stdout and stderr are left alone: a package that
prints cannot corrupt the protocol, which has its own pipes.

A new worker's time to its first result is a budget (docs/benchmarks.md), so this module loads
only what serving needs: no typing or collections.abc (the type checker's), no signal (its enums
load enum), no json (the wire format speaks ``_json``), and the binary lane only when a buffer
travels (it loads json, re, base64 and mmap). tests/test_import_budget.py counts the modules.
"""

from __future__ import annotations

import builtins
import os
import site
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable
    from importlib.machinery import SourceFileLoader
    from types import ModuleType
    from typing import Any

    from .. import _lane as L, _runner as R
    from . import _protocol as P

    __loader__: SourceFileLoader
else:
    import _signal  # not signal: its Signals/Handlers enums import enum

    ModuleType = type(sys)


def _load(name: str, path: str) -> ModuleType:
    """The module at ``path``, loaded (once) under the private name ``name``.

    By file path: putting this folder on sys.path would let envknit's own modules shadow the
    environment's packages. The loader class is the one that loaded this module (a
    SourceFileLoader, whether _boot.py or a test loaded it), so the bytecode cache is used and
    importlib (3.10-3.12: warnings too) is not loaded.
    """
    found = sys.modules.get(name)
    if found is not None:
        return found
    loader = type(__loader__)(name, path)
    module = ModuleType(name)
    module.__file__ = path
    module.__loader__ = loader
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


_HERE = os.path.dirname(os.path.abspath(__file__))
_LANE_PATH = os.path.join(os.path.dirname(_HERE), "_lane.py")
if not TYPE_CHECKING:
    P = _load("_envknit_worker_protocol", os.path.join(_HERE, "_protocol.py"))
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


_lane_module: Any = None


def _lane() -> Any:
    """The binary lane module (``envknit/_lane.py``), loaded the first time a buffer travels."""
    global _lane_module
    if _lane_module is None:
        _lane_module = _load("_envknit_worker_lane", _LANE_PATH)
    return _lane_module


def _receive(meta: Any) -> Any:
    return _lane().receive(meta)


class _Outbox:
    """The lane's ``Outbox`` for the replies, made when the first buffer goes out: a worker
    whose replies carry none never loads the lane module."""

    __slots__ = ("_box", "all_buffers")

    def __init__(self) -> None:
        self._box: L.Outbox | None = None
        #: read by ``P.encode`` (see ``P.Lane``): whether every buffer goes by value.
        self.all_buffers = False

    def _real(self) -> L.Outbox:
        if self._box is None:
            lane = _lane()
            self._box = lane.Outbox(all_buffers=False, pool=lane.Pool())
        return self._box

    @property
    def inline_max(self) -> int:  # read for bytes values only
        return self._real().inline_max

    @property
    def total(self) -> int:
        return 0 if self._box is None else self._box.total

    def describe(self, value: Any) -> dict[str, Any]:
        return self._real().describe(value)

    def takes(self, value: Any) -> bool:
        return bool(_lane().is_buffer(value))

    def numbers(self, value: list[Any]) -> dict[str, Any] | None:
        return self._real().numbers(value)

    def checkpoint(self) -> tuple[int, int, int]:
        return (0, 0, 0) if self._box is None else self._box.checkpoint()

    def discard(self, since: tuple[int, int, int] = (0, 0, 0)) -> None:
        if self._box is not None:
            self._box.discard(since)

    def close(self) -> None:
        """Remove the pooled files (the host is gone)."""
        if self._box is not None and self._box.pool is not None:
            self._box.pool.close()


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
        self.outbox = _Outbox()
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
        if type(value) in P.SCALARS:
            return value
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
        return P.decode(data, self._deref, _receive) if self.tagged else data

    def _deref(self, ref: dict[str, Any]) -> Any:
        return self.obj({"ref": ref["$r"]})

    # -- operations --------------------------------------------------------------------------
    def op_import(self, msg: dict[str, Any]) -> Any:
        return self.handle(R.import_module(msg["module"]))

    def op_getattr(self, msg: dict[str, Any]) -> Any:
        owner = self.obj(msg)
        value = getattr(owner, msg["name"])
        # Callables found on a module rarely change: the host may keep them.
        return self.result(value, cache=isinstance(owner, ModuleType) and callable(value))

    def op_setattr(self, msg: dict[str, Any]) -> None:
        setattr(self.obj(msg), msg["name"], self.arg(msg["value"]))

    def op_call(self, msg: dict[str, Any]) -> Any:
        func = self.obj(msg)
        args = msg.get("args", ())
        kwargs = msg.get("kwargs")  # the host sends none when there are none
        if self.tagged:
            args = self.arg(args)
            kwargs = self.arg(kwargs)
        return self.result(func(*args, **kwargs) if kwargs else func(*args))

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
            import operator  # here: a worker that is never asked for one does not load it

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
        elif not _lane().is_buffer(value):
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
            self.outbox.close()

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
            except Exception as exc:  # noqa: BLE001 - every failure of user code goes to the host
                self.outbox.discard()
                if _lane_module is not None and isinstance(exc, _lane_module.LaneTooLarge):
                    # buffers past the lane's limit (only a loaded lane can have raised it)
                    self.send({"i": rid, "big": {"size": exc.size, "limit": exc.limit,
                                                 "lane": True}})
                else:
                    self.send({"i": rid, "err": _describe_error(exc)})
                continue
            self.send({"i": rid, "ok": value})


def _plain_json(value: Any) -> Any:
    """``value`` as plain JSON data (tuples become lists) with its buffers (bytes, arrays) in
    place, or TypeError naming its type.

    ``envknit._lane.plain_json`` through ``P.to_json``/``P.from_json`` (no json package here):
    the lane loads only if the value holds something JSON cannot carry.
    """
    found: list[Any] = []

    def hole(obj: Any) -> Any:
        if _lane().is_buffer(obj):
            found.append(obj)
            return {_HOLE: len(found) - 1}
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    def fill(obj: dict[str, Any]) -> Any:
        return found[obj[_HOLE]] if len(obj) == 1 and _HOLE in obj else obj

    try:
        text = P.to_json(value, hole)
        return P.from_json(text, fill) if found else P.from_json(text)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"result must be JSON-compatible: {exc}") from None


# A key no JSON value from user code carries by chance: marks where a buffer stood.
_HOLE = f"$envknit-buffer-{os.urandom(8).hex()}"


def _out_of_the_way(fd: int, other: int) -> int:
    """``fd`` moved to a high, close-on-exec descriptor number (the low one closed); ``other``
    is the other protocol pipe, left where it is.

    User code that writes to "fd 4" or opens files (which take the lowest free numbers) then
    misses the protocol pipe, and subprocesses the package starts do not inherit it. Only a
    hardening: a frame corrupted anyway is refused by the host (see ``_protocol``). The lowest
    free number from ``_HIGH_FD`` on, as ``fcntl(F_DUPFD_CLOEXEC)`` would pick it, without
    loading fcntl (an extension module: a few percent of a worker's start-up).
    """
    target = _HIGH_FD
    while target in (fd, other) or _is_open(target):
        target += 1
    try:
        os.dup2(fd, target, inheritable=False)
    except OSError:  # a descriptor limit below _HIGH_FD: keep the number we were given
        return fd
    os.close(fd)
    return target


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


#: Where the protocol pipes move to in the worker (below the usual 1024 descriptor limit).
_HIGH_FD = 512


def main(argv: list[str]) -> int:
    read_fd = _out_of_the_way(int(argv[0]), int(argv[1]))
    write_fd = _out_of_the_way(int(argv[1]), read_fd)
    # Ctrl-C in the terminal reaches the whole process group; only the host decides what to do.
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
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
    # addsitedir also honours the .pth files an installed package may ship, as a venv would;
    # with -S, importing site did not add any site-packages of its own. One set of the paths
    # already there for all of them (as site.main() does): without it, each call checks every
    # sys.path entry again, quadratic in the environment's size.
    known = {site.makepath(item)[1] for item in sys.path if os.path.exists(item)}
    for directory in hello.get("path", []):
        site.addsitedir(str(directory), known)
    sys.argv = [""]
    answer.update(
        pid=os.getpid(), python=list(sys.version_info[:3]), executable=sys.executable, path=sys.path
    )
    reader.frame_timeout = float(hello.get("frame_timeout", P.DEFAULT_FRAME_TIMEOUT))
    reader.spin = reader.budget = float(hello.get("spin", P.SPIN))
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
