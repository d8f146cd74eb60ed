"""Reading ``envknit.yaml`` and the lock: the one place YAML files are read (safe loader only).

The files may come from anyone (a cloned repository, a pull request), so reading is bounded
before any value is built: aliases and anchors are refused (a 462-byte "billion laughs" lock
expands to gigabytes), nesting deeper than ``MAX_DEPTH`` is refused (PyYAML's constructor
recurses: 1,000 nested lists crash 3.11), and so is a file that is not UTF-8 text. Checking
while composing costs about 1.4-1.8x libyaml's own composer on a 300-package lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import Node

from ._textfile import MAX_SIZE, read_text
from .errors import ConfigError, LockError

__all__ = ["MAX_DEPTH", "MAX_SIZE", "UnsafeYAMLError", "parse_yaml", "read_yaml",
           "safe_load_bounded"]

MAX_DEPTH = 32  # envknit.yaml and the lock need 6 levels; room for what a user may add

# libyaml's parser produces the events 3-5x faster than PyYAML's pure-Python one (a lock is
# read on every install and every uncached `envknit run`); the composer and constructor are
# PyYAML's Python ones in both cases, so that the checks below see every node (only the
# event methods of these loaders are used).
_Parser: Any = getattr(yaml, "CSafeLoader", None) or yaml.BaseLoader


class UnsafeYAMLError(yaml.YAMLError):
    """YAML that this reader refuses before building anything from it."""


class _BoundedSafeLoader(Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """A safe loader that refuses aliases, anchors and deep nesting while composing."""

    def __init__(self, stream: str) -> None:
        self._parser = _Parser(stream)
        Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0

    # the composer reads events through these three; they come from the (C) parser
    def check_event(self, *choices: Any) -> bool:
        return bool(self._parser.check_event(*choices))

    def peek_event(self) -> Any:
        return self._parser.peek_event()

    def get_event(self) -> Any:
        return self._parser.get_event()

    def dispose(self) -> None:
        self._parser.dispose()

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        mark = event.start_mark
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        if isinstance(event, AliasEvent):
            raise UnsafeYAMLError(f"aliases (*{str(event.anchor)[:20]}) are not allowed, {where}")
        if isinstance(event, (ScalarEvent, CollectionStartEvent)) and event.anchor is not None:
            raise UnsafeYAMLError(f"anchors (&{str(event.anchor)[:20]}) are not allowed, {where}")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise UnsafeYAMLError(f"nested more than {MAX_DEPTH} levels deep, {where}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def safe_load_bounded(text: str) -> object:
    """``yaml.safe_load(text)`` without aliases, anchors or deep nesting (``YAMLError``)."""
    loader = _BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(
    path: Path, error: type[ConfigError | LockError], *, what: str, missing_hint: str
) -> object:
    """The data of the YAML file at ``path``; any failure is one ``error`` naming the file."""
    return parse_yaml(read_text(path, error, what=what, missing_hint=missing_hint),
                      path, error)


def parse_yaml(text: str, path: Path, error: type[ConfigError | LockError]) -> object:
    """The data of ``text`` (read from ``path``); malformed YAML is one ``error`` naming it."""
    try:
        return safe_load_bounded(text)
    except yaml.YAMLError as exc:
        raise error(f"malformed YAML: {_one_line(exc)}", path=str(path)) from None
    except (ValueError, OverflowError) as exc:
        # PyYAML's constructors build ints and dates with Python's own checks: an int of 5,000
        # digits (int_max_str_digits), a 13th month
        raise error(f"malformed YAML: a value that cannot be read: {str(exc)[:100]}",
                    path=str(path)) from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps far below the limit
        raise error("malformed YAML: nested too deeply", path=str(path)) from None


def _one_line(exc: yaml.YAMLError) -> str:
    """PyYAML's message (problem, line and column) on one line, without the source excerpt."""
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [exc.context or "", exc.problem or ""]
        mark = exc.problem_mark or exc.context_mark
        text = "; ".join(p for p in parts if p)
        if mark is not None:
            text += f" (line {mark.line + 1}, column {mark.column + 1})"
        return text[:200] or type(exc).__name__
    return str(exc).replace("\n", " ")[:200]
