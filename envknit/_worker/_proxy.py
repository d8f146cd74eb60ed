"""Proxies: host-side stand-ins for objects that stay in a worker process."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import WorkerError
from . import _protocol as P

if TYPE_CHECKING:  # the pool (subprocess and friends) loads when a worker is first asked for
    from ._pool import Worker

__all__ = [
    "WorkerAttrProxy", "WorkerModuleProxy", "WorkerProxy", "import_module", "worker_stats",
]


class WorkerProxy:
    """An object living in a worker process; operations on it run there.

    Results that the wire format carries (JSON values, bytes, tuples) come back by value; any
    other result comes back as another proxy. The remote object is released when the proxy is
    garbage-collected. Proxies have no public constructor: ``envknit.worker()`` makes them.
    """

    __module__ = "envknit"
    __slots__ = (
        "__weakref__", "_ek_fin", "_ek_gen", "_ek_id", "_ek_timeout", "_ek_type", "_ek_worker",
    )
    _ek_fin: weakref.finalize[[int, int], None]
    _ek_worker: Worker
    _ek_gen: int
    _ek_id: int
    _ek_timeout: float | None
    _ek_type: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("worker proxies are made by envknit.worker(), not constructed directly")

    # -- plumbing -----------------------------------------------------------------------------
    def _ek_bind(self, worker: Worker, ref: dict[str, Any], timeout: float | None) -> None:
        set_ = object.__setattr__
        set_(self, "_ek_worker", worker)
        set_(self, "_ek_gen", worker.generation)
        set_(self, "_ek_id", int(ref["$r"]))
        set_(self, "_ek_timeout", timeout)
        set_(self, "_ek_type", str(ref.get("type", "object")))
        previous = getattr(self, "_ek_fin", None)
        if previous is not None:  # re-bound after a respawn: the old handle died with its process
            previous.detach()
        finalizer = weakref.finalize(self, worker.release, worker.generation, int(ref["$r"]))
        finalizer.atexit = False  # the worker goes away at exit anyway
        set_(self, "_ek_fin", finalizer)

    def _ek_ref(self, worker: Worker) -> int:
        """This object's handle in ``worker``'s live process (lock held)."""
        if worker is not self._ek_worker:
            raise WorkerError(
                f"a {self._ek_type} proxy from the worker for {self._ek_worker.spec.label} cannot "
                f"be sent to the worker for {worker.spec.label}"
            )
        if self._ek_gen != worker.generation:
            raise WorkerError(
                f"this {self._ek_type} lived in a worker process for {worker.spec.label} that has "
                "since been replaced (after a crash, timeout or shutdown); get it again"
            )
        return self._ek_id

    def _ek_call(self, op: str, fields: dict[str, Any] | None = None, **values: Any) -> Any:
        """Run ``op`` on this object; ``values`` are arguments that may hold proxies."""
        return self._ek_worker.request(
            op, fields, timeout=self._ek_timeout, values=values, ref=self
        )

    def _ek_wrap(self, ref: dict[str, Any]) -> WorkerProxy:
        """A proxy for a handle in a reply to this proxy's request (lock held)."""
        proxy: WorkerProxy = _new(WorkerProxy, self._ek_worker, ref, self._ek_timeout)
        return proxy

    def _ek_send(self, value: Any) -> dict[str, int]:
        """The wire form of a proxy among the values of this proxy's request (lock held)."""
        return _send_ref(value, self._ek_worker)

    # -- the object protocol ------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith(_LOCAL_ONLY):
            raise AttributeError(name)
        return self._ek_call("getattr", {"name": name})

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        """``numpy.asarray(proxy)``: the remote array's data, copied into this process's numpy
        through the binary lane (``numpy.asarray`` of it in the worker if it is not an array)."""
        value = self._ek_call("array")
        if not hasattr(value, "astype"):  # a buffer without numpy on the other side
            import numpy

            value = numpy.asarray(value)
        return value if dtype is None else value.astype(dtype, copy=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_ek_"):
            raise AttributeError(f"{name} is read-only")
        self._ek_call("setattr", {"name": name}, value=value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            return self._ek_call("call", args=list(args), kwargs=kwargs)
        return self._ek_call("call", args=list(args))  # no keyword arguments: none are sent

    def __getitem__(self, key: Any) -> Any:
        return self._ek_call("getitem", key=key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ek_call("setitem", key=key, value=value)

    def __len__(self) -> int:
        return int(self._ek_call("len"))

    def __bool__(self) -> bool:
        return bool(self._ek_call("bool"))

    def __contains__(self, item: Any) -> bool:
        return bool(self._ek_call("contains", item=item))

    def __iter__(self) -> Iterator[Any]:
        iterator = self._ek_call("iter")
        done = False
        while not done:
            batch = iterator._ek_call("next", {"n": P.NEXT_BATCH})
            done = batch["done"]
            yield from batch["items"]

    def __repr__(self) -> str:
        return str(self._ek_call("repr"))

    def __str__(self) -> str:
        return str(self._ek_call("str"))

    def __dir__(self) -> list[str]:
        return list(self._ek_call("dir"))

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            f"a worker proxy (of a {self._ek_type}) cannot be pickled or copied: the object "
            "lives in the worker process; send plain values (e.g. .tolist()) instead"
        )


# Never forwarded. numpy reads __array_interface__ / __array_struct__ from an instance and
# would trust the pointer in the worker's answer (an address in another process); without
# them it calls __array__, which fetches the data.
_LOCAL_ONLY = ("_ek_", "__array_")


def _forward(remote: str, *, reflected: bool = False, unary: bool = False) -> Any:
    """The proxy method for the worker-side operator ``remote`` (``and_`` -> ``__and__``)."""
    name = remote.rstrip("_")

    def method(self: WorkerProxy, *other: Any) -> Any:
        args = [self] if unary else [other[0], self] if reflected else [self, other[0]]
        return self._ek_call("operator", {"name": remote}, args=args)

    method.__name__ = f"__{'r' if reflected else ''}{name}__"
    return method


# == and != are not forwarded (see P.COMPARISONS): they stay identity, so proxies remain hashable.
for _method in (
    *(_forward(op) for op in (*P.BINARY_OPERATORS, *P.COMPARISONS)),
    *(_forward(op, reflected=True) for op in P.BINARY_OPERATORS),
    *(_forward(op, unary=True) for op in (*P.UNARY_OPERATORS, *P.CONVERSIONS)),
):
    setattr(WorkerProxy, _method.__name__, _method)


class WorkerModuleProxy(WorkerProxy):
    """A module imported in a worker; re-imported transparently if the worker was replaced.

    Callable attributes of the module (functions, classes) are looked up once per proxy, and
    again only after the worker was replaced.
    """

    __module__ = "envknit"
    __slots__ = ("_ek_cache", "_ek_module")
    _ek_module: str
    _ek_cache: dict[str, WorkerProxy]

    def __getattr__(self, name: str) -> Any:
        if name.startswith(_LOCAL_ONLY):
            raise AttributeError(name)
        found = self._ek_cache.get(name)
        if found is not None:
            return found

        def decode(ref: dict[str, Any]) -> WorkerProxy:
            proxy: WorkerProxy
            if ref.get("cache"):  # a callable of the module: looked up again only after a respawn
                proxy = _new(WorkerAttrProxy, self._ek_worker, ref, self._ek_timeout)
                object.__setattr__(proxy, "_ek_owner", self)
                object.__setattr__(proxy, "_ek_name", name)
                self._ek_cache[name] = proxy
            else:
                proxy = _new(WorkerProxy, self._ek_worker, ref, self._ek_timeout)
            return proxy

        return self._ek_worker.request(
            "getattr", {"name": name}, timeout=self._ek_timeout, ref=self, decode=decode
        )

    def _ek_ref(self, worker: Worker) -> int:
        if worker is self._ek_worker and self._ek_gen != worker.generation:
            ref = worker.request_locked(
                "import", {"module": self._ek_module}, timeout=self._ek_timeout, decode=_raw
            )
            self._ek_bind(worker, ref, self._ek_timeout)
        return super()._ek_ref(worker)


class WorkerAttrProxy(WorkerProxy):
    """A callable found on a module proxy; looked up again if the worker was replaced."""

    __module__ = "envknit"
    __slots__ = ("_ek_name", "_ek_owner")
    _ek_owner: WorkerModuleProxy
    _ek_name: str

    def _ek_ref(self, worker: Worker) -> int:
        if worker is self._ek_worker and self._ek_gen != worker.generation:
            owner = self._ek_owner._ek_ref(worker)
            ref = worker.request_locked(
                "getattr", {"ref": owner, "name": self._ek_name}, timeout=self._ek_timeout,
                decode=_raw,
            )
            self._ek_bind(worker, ref, self._ek_timeout)
        return super()._ek_ref(worker)


def _raw(ref: dict[str, Any]) -> dict[str, Any]:
    return ref


def _new(cls: type[WorkerProxy], worker: Worker, ref: dict[str, Any], timeout: float | None) -> Any:
    proxy = object.__new__(cls)
    proxy._ek_bind(worker, ref, timeout)
    return proxy


def _send_ref(value: Any, worker: Worker) -> dict[str, int]:
    if isinstance(value, WorkerProxy):
        return {"$r": value._ek_ref(worker)}
    raise TypeError(
        f"cannot send a {type(value).__module__}.{type(value).__qualname__} to a worker: "
        "only JSON values, bytes, tuples, buffers (arrays, memoryviews) and proxies of objects "
        "in that worker can be sent"
    )


def import_module(worker: Worker, module: str, timeout: float | None) -> WorkerModuleProxy:
    """Import ``module`` in ``worker`` and return its proxy."""

    def bind(ref: dict[str, Any]) -> WorkerModuleProxy:
        # Under the worker's lock, like every handle: another thread's crash or timeout could
        # otherwise replace the process in between, and the handle would be taken for one of
        # the new process's.
        proxy: WorkerModuleProxy = _new(WorkerModuleProxy, worker, ref, timeout)
        object.__setattr__(proxy, "_ek_module", module)
        object.__setattr__(proxy, "_ek_cache", {})
        return proxy

    result: WorkerModuleProxy = worker.request(
        "import", {"module": module}, timeout=timeout, decode=bind
    )
    return result


def worker_stats(proxy: WorkerProxy) -> dict[str, Any]:
    """``{"pid": ..., "handles": ...}`` of the worker process behind ``proxy`` (diagnostics)."""
    worker = proxy._ek_worker
    return dict(worker.request("stats", {}, timeout=proxy._ek_timeout))
