"""The lock's YAML text without PyYAML: the same bytes ``yaml.safe_dump`` writes, or None.

``envknit lock`` would import PyYAML only to write the lock (its import compiles the reader's
and resolver's regular expressions: ~10 ms, more than the rest of writing). The lock is a
tree of mappings with string keys, lists, strings and booleans, which this module writes in
PyYAML's block style (``sort_keys=False, default_flow_style=False``), byte for byte, for every
string of a conservative alphabet: names, versions, file names, digests, ``name==version``.
Anything else (a space, a quote, a marker, a non-ASCII letter, another type) makes
:func:`dump_block` return None and the caller uses PyYAML. tests/test_lockyaml.py checks the
output against PyYAML's.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["HEADER", "dump_block", "lock_text"]

HEADER = "# envknit.lock.yaml: written by 'envknit lock'; commit it, do not edit it.\n"

# strings written here: PyYAML writes them plain (or single-quoted when they would read back
# as another type), never wrapped (no space to break at), never escaped (printable ASCII,
# no indicator character: no ':', '#', ',', brackets or quotes, not starting with '-'). The
# checks are string methods, not regular expressions (re and its patterns: ~5 ms of a lock);
# tests/test_lockyaml.py holds the patterns they stand for and compares.
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SAFE_CHARS = _ALNUM | frozenset("._+=<>!~-")
_DEC = frozenset("0123456789_")
_OCT = frozenset("01234567_")
_HEX = frozenset("0123456789abcdefABCDEF_")
# PyYAML's implicit resolvers (yaml/resolver.py, YAML 1.1) that a safe string can match: it
# then reads back as a bool, null, float, int or date, not a string, so PyYAML single-quotes
# it (the others need a character safe strings lack: ':' '~' '<<' '=' alone, or a leading
# '.', '+' or '-')
_WORDS = frozenset(["yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false",
                    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null",
                    "NULL"])


def _safe(value: str) -> bool:
    return 0 < len(value) <= 200 and value[0] in _ALNUM and set(value) <= _SAFE_CHARS


def _not_str(value: str) -> bool:
    """Whether PyYAML reads the safe string ``value`` back as another type."""
    if value in _WORDS:
        return True
    head, dot, tail = value.partition(".")
    if dot:  # a float: [0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?
        at = min((i for i in (tail.find("e"), tail.find("E")) if i >= 0), default=len(tail))
        fraction, exponent = tail[:at], tail[at:]
        return (head[:1] in _DEC and head[:1] != "_" and set(head) <= _DEC
                and set(fraction) <= _DEC
                and (not exponent or (len(exponent) > 2 and exponent[1] in "+-"
                                      and exponent[2:].isdigit())))
    if value == "0" or (value[0] in "123456789" and set(value) <= _DEC):
        return True  # an int: 0 | [1-9][0-9_]*
    if value[:2] == "0b" and len(value) > 2 and set(value[2:]) <= frozenset("01_"):
        return True
    if value[:2] == "0x" and len(value) > 2 and set(value[2:]) <= _HEX:
        return True
    if value[0] == "0" and len(value) > 1 and set(value) <= _OCT:
        return True
    # a date: [0-9]{4}-[0-9]{2}-[0-9]{2}
    return (len(value) == 10 and value[4] == value[7] == "-"
            and (value[:4] + value[5:7] + value[8:]).isdigit())


class _Unsupported(Exception):
    """A value this writer leaves to PyYAML."""


def _scalar(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if not isinstance(value, str) or not _safe(value):
        raise _Unsupported
    return f"'{value}'" if _not_str(value) else value


def _mapping(data: Mapping[str, object], indent: int, out: list[str], first: str | None) -> None:
    """``data`` at ``indent``; ``first``: the prefix of the first line (a list item's ``- ``)."""
    pad = " " * indent
    for key, value in data.items():
        if not isinstance(key, str) or len(key) > 100:  # PyYAML writes a long key as "? key"
            raise _Unsupported
        line = (first if first is not None else pad) + _scalar(key) + ":"
        first = None
        if isinstance(value, dict):
            if not value:
                out.append(line + " {}")
                continue
            out.append(line)
            _mapping(value, indent + 2, out, None)
        elif isinstance(value, list):
            if not value:
                out.append(line + " []")
                continue
            out.append(line)
            for item in value:  # a sequence in a mapping is not indented (PyYAML's habit)
                if isinstance(item, dict) and item:
                    _mapping(item, indent + 2, out, pad + "- ")
                elif isinstance(item, (dict, list)):
                    raise _Unsupported
                else:
                    out.append(f"{pad}- {_scalar(item)}")
        else:
            out.append(f"{line} {_scalar(value)}")


def dump_block(data: Mapping[str, object]) -> str | None:
    """``yaml.safe_dump(data, sort_keys=False, default_flow_style=False)``, or None when
    ``data`` holds a value this module does not write (the caller then asks PyYAML)."""
    if not data:
        return None
    out: list[str] = []
    try:
        _mapping(data, 0, out, None)
    except _Unsupported:
        return None
    return "\n".join(out) + "\n"


def lock_text(data: Mapping[str, object]) -> str:
    """The lock file's text for the lock's data (``Lock.to_dict()``): the header, then
    :func:`dump_block`'s YAML, or PyYAML's for values it does not write."""
    body = dump_block(data)
    if body is None:  # a requirement with a marker, a space, a quote...
        import yaml

        body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return HEADER + body
