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

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["HEADER", "dump_block", "lock_text"]

HEADER = "# envknit.lock.yaml: written by 'envknit lock'; commit it, do not edit it.\n"

# strings written here: PyYAML writes them plain (or single-quoted when they would read back
# as another type), never wrapped (no space to break at), never escaped (printable ASCII,
# no indicator character: no ':', '#', ',', brackets or quotes, not starting with '-')
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=<>!~-]{0,199}")
# PyYAML's implicit resolvers (yaml/resolver.py, YAML 1.1): a plain scalar matching one of
# these reads back as a bool, float, int, merge key, null, timestamp or value, not a string,
# so PyYAML single-quotes it
_NOT_STR = re.compile(
    r"""^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    |[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN)
    |[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    |<<
    |~|null|Null|NULL|
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
     (?:[Tt]|[\ \t]+)[0-9][0-9]?
     :[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
     (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?
    |=)$""",
    re.X,
)


class _Unsupported(Exception):
    """A value this writer leaves to PyYAML."""


def _scalar(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if not isinstance(value, str) or not _SAFE.fullmatch(value):
        raise _Unsupported
    return f"'{value}'" if _NOT_STR.match(value) else value


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
