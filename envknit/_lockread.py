"""The lock's YAML read without PyYAML: the layout envknit writes, or None (ask PyYAML).

``envknit install`` imported PyYAML only to read the lock (~13 ms of a cold install: its
import compiles the pure-Python reader's and resolver's regular expressions, which libyaml's
loader never uses). This reader is the inverse of :func:`envknit._lockyaml.dump_block`:
block mappings indented by two, sequences at their key's indent (PyYAML's habit), ``{}``,
``[]``, ``true``/``false``, ``''`` and strings of the writer's alphabet, plain or
single-quoted; comment lines may open the file. Anything else (a blank line, a tab, a flow
collection with content, an anchor, a tag, a plain scalar that YAML 1.1 might read as a
number, a date, a bool or null, a duplicate key, deep nesting, text after the document)
returns None, and the caller reads the file with the bounded PyYAML loader, whose refusals
stay what they were. What this module returns is what ``yaml.safe_load`` returns for the
same text: tests/test_lockread.py checks it on the writer's output and on near misses.
"""

from __future__ import annotations

__all__ = ["parse_lock_text"]

_MAX_DEPTH = 16  # a lock needs 6 levels; deeper goes to the bounded loader
_MAX_SCALAR = 200  # the writer's bound (_lockyaml._SAFE)
_MAX_KEY = 100  # PyYAML writes a longer key as "? key"
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_ALPHABET = _ALNUM | frozenset("._+=<>!~-")
# YAML 1.1's implicit resolvers that start with a letter (PyYAML picks them by the first
# character): these words are bools or null, not strings
_WORDS = frozenset({
    "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
    "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL",
})
# every int, float and timestamp of YAML 1.1 spelled in the alphabet above is made of these
# characters, or starts with 0x / 0b (hex and binary ints)
_NUMERIC = frozenset("0123456789._eE+-")
_DIGITS_DOTS = frozenset("0123456789.")
_BOOLS = {"true": True, "false": False}


class _NotOurs(Exception):
    """Text this reader leaves to PyYAML."""


def _safe(text: str) -> bool:
    """Within the writer's alphabet: starts with a letter or digit, no space, quote, ':' or '#'."""
    return (0 < len(text) <= _MAX_SCALAR and text[0] in _ALNUM
            and not set(text) - _ALPHABET)


def _plain_is_str(text: str) -> bool:
    """True when YAML 1.1 reads the plain scalar ``text`` (already ``_safe``) as this string."""
    if text[0] not in "0123456789":
        return text not in _WORDS
    if text[:2] in ("0x", "0b"):
        return False  # may be a hex or binary int
    if set(text) - _NUMERIC:
        return True  # a letter other than e/E, or '=<>!~': no number or date has one
    if text.isdigit():  # an int, unless a leading 0 makes it octal and an 8 or 9 forbids that
        return text[0] == "0" and len(text) > 1 and ("8" in text or "9" in text)
    dots = text.count(".")
    if dots == 0:  # digits and e/E/+ (a hex digest): ints are digits and '_', dates have '-'
        return "-" not in text and "_" not in text
    return dots >= 2  # a version ("1.0.0"); a float has exactly one dot


def _scalar(text: str) -> str | bool:
    if text in _BOOLS:
        return _BOOLS[text]
    if text == "''":
        return ""  # PyYAML's empty string (a lock without a config hash)
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        inner = text[1:-1]
        if _safe(inner):
            return inner
    elif _safe(text) and _plain_is_str(text):
        return text
    raise _NotOurs


def _key(text: str) -> str:
    key = _scalar(text)
    if not isinstance(key, str) or len(key) > _MAX_KEY:
        raise _NotOurs
    return key


class _Reader:
    __slots__ = ("lines", "pos")

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.pos = 0

    def mapping(self, indent: int, first: str | None, depth: int) -> dict[str, object]:
        """The block mapping at ``indent``; ``first``: its first line's text after ``- ``."""
        if depth > _MAX_DEPTH:
            raise _NotOurs
        pad = " " * indent
        out: dict[str, object] = {}
        lines = self.lines
        while True:
            if first is not None:
                body, first = first, None
            elif self.pos < len(lines) and lines[self.pos].startswith(pad) and (
                    lines[self.pos][indent:indent + 1] not in (" ", "-", "")):
                body = lines[self.pos][indent:]
            else:
                break
            self.pos += 1
            head, sep, rest = body.partition(":")
            key = _key(head)
            if not sep or key in out:
                raise _NotOurs
            if rest == "":
                out[key] = self.nested(indent, depth)
            elif rest == " {}":
                out[key] = {}
            elif rest == " []":
                out[key] = []
            elif rest[:1] == " ":
                out[key] = _scalar(rest[1:])
            else:
                raise _NotOurs
        if not out:
            raise _NotOurs
        return out

    def nested(self, indent: int, depth: int) -> object:
        """The value of a key at ``indent`` written on the lines below it."""
        if self.pos >= len(self.lines):
            raise _NotOurs  # "key:" with nothing after it is null
        line = self.lines[self.pos]
        item = " " * indent + "- "
        if line.startswith(item):
            return self.sequence(indent, depth + 1)
        return self.mapping(indent + 2, None, depth + 1)

    def sequence(self, indent: int, depth: int) -> list[object]:
        item = " " * indent + "- "
        out: list[object] = []
        lines = self.lines
        while self.pos < len(lines) and lines[self.pos].startswith(item):
            body = lines[self.pos][len(item):]
            if ":" in body:  # a mapping: its first key here, the others indented under it
                out.append(self.mapping(indent + 2, body, depth + 1))
            else:
                self.pos += 1
                out.append(_scalar(body))
        return out


def parse_lock_text(text: str) -> dict[str, object] | None:
    """``yaml.safe_load(text)`` for the layout envknit writes, or None for anything else."""
    # ASCII only: YAML also breaks lines at U+0085, U+2028 and U+2029 (which could end a
    # comment line early); PyYAML refuses control characters (checked in comments; elsewhere
    # only the alphabet above, spaces and line feeds get through)
    if not text.endswith("\n") or not text.isascii() or "\r" in text or "\t" in text:
        return None
    lines = text[:-1].split("\n")
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        if not lines[start].isprintable():
            return None
        start += 1
    reader = _Reader(lines[start:])
    try:
        data = reader.mapping(0, None, 0)
    except _NotOurs:
        return None
    if reader.pos != len(reader.lines):
        return None
    return data
