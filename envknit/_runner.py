"""Runs the host's snippets and "package.module:function" targets, and reports failures as data."""

# Standard library only, and loaded inside workers and sub-interpreters: each child loads this
# file under the private name ``_envknit_runner`` (a worker by path, a sub-interpreter from code
# the host compiled), so it must import nothing of envknit and nothing slow (typing costs
# milliseconds in a fresh interpreter; mypy still sees it). traceback is imported only to report,
# and importlib (3.10-3.12: warnings too) not at all: a worker's start-up is a budget.

from __future__ import annotations

import builtins
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import CodeType, ModuleType
    from typing import Any

__all__ = [
    "OWN_FILE",
    "SNIPPET_FILENAME",
    "builtin_base",
    "chain",
    "import_module",
    "normalize",
    "report",
    "resolve",
    "run_snippet",
    "strip_frames",
    "type_name",
]

#: What a snippet's code is compiled as: its frames show under this name in tracebacks.
SNIPPET_FILENAME = "<envknit eval_json>"


def normalize(filename: str) -> str:
    """``filename`` as this module compares frame files (absolute, case-normalized)."""
    return os.path.normcase(os.path.abspath(filename))


#: This file as ``normalize`` spells it: its frames never show in a remote traceback.
OWN_FILE = normalize(__file__)


def import_module(name: str) -> ModuleType:
    """``importlib.import_module(name)`` without loading importlib: the import statement's own
    machinery, then the module as ``sys.modules`` holds it (what import_module returns)."""
    if name.startswith("."):  # a relative name: importlib's own error (no package given)
        import importlib

        return importlib.import_module(name)
    __import__(name)
    return sys.modules[name]


def resolve(target: str) -> Any:
    """The object a ``"package.module:attr.path"`` target names (the module is imported)."""
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    obj: Any = import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj


def run_snippet(code: CodeType, inputs: Mapping[str, Any]) -> Any:
    """Run compiled snippet ``code`` in a fresh namespace holding ``inputs``; its ``result``."""
    namespace: dict[str, Any] = {"__name__": "__envknit_eval__", "__builtins__": builtins}
    namespace.update(inputs)
    exec(code, namespace)
    return namespace.get("result")


def type_name(tp: type) -> str:
    """``tp``'s qualified name, prefixed by its module unless that is builtins or __main__."""
    module = getattr(tp, "__module__", "builtins")
    if module in ("builtins", "__main__"):
        return tp.__qualname__
    return f"{module}.{tp.__qualname__}"


def builtin_base(tp: type) -> str | None:
    """The most derived builtin ``Exception`` subclass in ``tp``'s MRO (not Exception itself)."""
    for cls in tp.__mro__:
        if (
            cls.__module__ == "builtins"
            and cls is not Exception
            and issubclass(cls, Exception)
            and getattr(builtins, cls.__name__, None) is cls
        ):
            return str(cls.__name__)
    return None


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it was raised from or while handling (each once)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        item = todo.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [e for e in (item.__cause__, item.__context__) if e is not None]
    return seen


def strip_frames(exc: BaseException, own_files: Iterable[str]) -> None:
    """Unlink the frames of ``own_files`` and of this file from the tracebacks of ``exc``'s chain.

    ``own_files`` are spelled as ``normalize`` does. Own frames can sit in the middle of a
    traceback (an import guard between the caller's code and the import system), not only at
    its start, so every own frame is dropped, not just the leading ones.
    """
    own = {OWN_FILE, *own_files}
    for item in chain(exc):
        kept = []
        frames = item.__traceback__
        while frames is not None:
            if normalize(frames.tb_frame.f_code.co_filename) not in own:
                kept.append(frames)
            frames = frames.tb_next
        for i, here in enumerate(kept):
            here.tb_next = kept[i + 1] if i + 1 < len(kept) else None
        item.__traceback__ = kept[0] if kept else None


def report(exc: BaseException, own_files: Iterable[str], *, chained: bool) -> dict[str, Any]:
    """``exc`` as data: its type name, message and traceback text without envknit's frames.

    ``chained`` also formats the exceptions ``exc`` was raised from or while handling. A broken
    ``__str__`` of ``exc`` must not hide the failure: the report says so instead.
    """
    import traceback

    name = type_name(type(exc))
    strip_frames(exc, own_files)
    try:
        text = "".join(traceback.format_exception(exc, chain=chained))
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the original failure
        text = f"{name}: <traceback unavailable>"
    try:
        message = str(exc)
    except Exception as inner:  # noqa: BLE001 - same reason
        message = f"<str() failed: {type(inner).__name__}>"
    return {"type": name, "message": message, "traceback": text}
