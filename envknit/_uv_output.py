"""Parsers of ``uv pip compile`` output: requirements.txt (pins, hashes, graph), pylock.toml.

uv 0.13's ``pylock.toml`` (PEP 751) records each package's files and hashes but no
``dependencies``, so the dependency graph comes from the requirements.txt form, whose
``# via`` annotations (``--annotation-style split``) name each package's parents. Both formats
are parsed structurally: requirement lines with ``packaging.requirements`` (the plain
``name==version`` that uv writes without it), the TOML with a reader of the lines uv writes
(``tomllib`` and datetime, ~8 ms of a lock, for any other layout).
``tests/data/uv-<version>/`` holds recorded uv output these parsers are tested on.
"""

from __future__ import annotations

import sys

from .errors import InvalidNameError, ResolverError

TYPE_CHECKING = False  # typing, collections.abc and dataclasses: ~15 ms of a lock
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

__all__ = ["CompiledPin", "parse_pylock", "parse_requirements_txt"]

# what uv writes for every pin (extras and markers stripped): read without packaging's parser,
# whose import (markers, specifiers, tags: ~15 ms of regular expressions) was most of the
# parsing's cost; anything else goes through that parser
# a file's URL or absolute path as uv writes it: its last part is the file name as is (no
# escapes, query or fragment); anything else goes through urllib.parse (whose import, with
# ipaddress, cost as much as the rest of this module)
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOCATION_CHARS = _ALNUM | frozenset("._~!$&'()*+,;=:@/-")
_NAME_CHARS = _ALNUM | frozenset("._-")
_VERSION_CHARS = _ALNUM | frozenset(".!+_-")
_FILE_CHARS = _ALNUM | frozenset("._+!-")
_HEX = frozenset("0123456789abcdef")
_FILE_ENDS = (".whl", ".tar.gz", ".zip", ".tar.bz2")


# The checks of envknit.names for the forms uv writes, without its regular expressions (re and
# its compiled patterns: ~6 ms of a lock): each gives names.py's answer for what it accepts
# and asks names.py about anything else (tests/test_uv_output.py compares them).

def _name(name: str) -> str:
    """``names.normalize_name(name)``."""
    if (0 < len(name) <= 128 and set(name) <= _NAME_CHARS and name[0] in _ALNUM
            and name[-1] in _ALNUM):
        out: list[str] = []
        for char in name.lower():
            if char not in "._-":
                out.append(char)
            elif out[-1] != "-":  # a run of separators is one "-" (never first: alnum)
                out.append("-")
        return "".join(out)
    from .names import normalize_name

    return normalize_name(name)


def _version(version: str) -> str:
    """``names.normalize_version(version)``: numbers and dots in normal form as they are."""
    parts = version.split(".")
    if len(version) <= 100 and all(
        p.isdigit() and p.isascii() and (p == "0" or p[0] != "0") for p in parts
    ):
        return version
    from .names import normalize_version

    return normalize_version(version)


def _sha256(value: object) -> str:
    """``names.validate_sha256(value)``."""
    if isinstance(value, str) and len(value) == 64 and set(value) <= _HEX:
        return value
    from .names import validate_sha256

    return validate_sha256(value)


def _filename(value: str) -> str:
    """``names.validate_filename(value)``."""
    if (len(value) <= 255 and set(value) <= _FILE_CHARS and value[:1] in _ALNUM
            and ".." not in value
            and any(value.endswith(end) and len(value) > len(end) for end in _FILE_ENDS)):
        return value
    from .names import validate_filename

    return validate_filename(value)


class CompiledPin:
    """One pin of ``uv pip compile``: its version, file hashes, parents and input files."""

    __slots__ = ("direct_from", "hashes", "name", "required_by", "version")

    def __init__(self, *, name: str, version: str, hashes: frozenset[str],
                 required_by: frozenset[str], direct_from: frozenset[str]) -> None:
        self.name = name
        self.version = version
        self.hashes = hashes
        self.required_by = required_by
        self.direct_from = direct_from


def _logical_lines(text: str) -> Iterator[tuple[str, list[str]]]:
    """``(requirement line with continuations joined, its annotation comment bodies)``.

    A pin starts at an unindented, non-comment line and runs over its ``\\`` continuations;
    the indented ``#`` lines that follow are its annotations.
    """
    current: list[str] | None = None
    comments: list[str] = []
    continued = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continued = False
            continue
        if continued and current is not None:
            current.append(line.removesuffix("\\").strip())
        elif line.startswith("#"):
            if current is not None:
                comments.append(line[1:].strip())
        else:
            if current is not None:
                yield " ".join(current), comments
            current, comments = [line.removesuffix("\\").strip()], []
        continued = line.endswith("\\")
    if current is not None:
        yield " ".join(current), comments


def _pin(line: str) -> tuple[str, str, frozenset[str]]:
    """``name==version [; marker] --hash=sha256:... ...`` -> canonical name, version, hashes."""
    requirement, *options = line.split(" --")
    hashes = set()
    for option in options:
        kind, _, value = option.partition("=")
        algorithm, _, digest = value.partition(":")
        if kind != "hash" or algorithm != "sha256":
            raise ResolverError(f"uv wrote an option envknit does not know: --{option!r}")
        hashes.add(_sha256(digest))
    name, equals, version = requirement.partition("==")
    if (equals and name and set(name) <= _NAME_CHARS and name[0] in _ALNUM
            and version[:1].isdigit() and set(version) <= _VERSION_CHARS):
        try:
            return _name(name), _version(version), frozenset(hashes)
        except InvalidNameError:
            pass  # the full parser below has the last word, as for any other form
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(requirement)
    except InvalidRequirement as exc:
        raise ResolverError(f"uv wrote a requirement envknit cannot read: {exc}") from None
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or req.url:
        raise ResolverError(f"uv wrote {requirement!r}, which is not a pin (name==version)")
    return _name(req.name), _version(specs[0].version), frozenset(hashes)


def _annotations(comments: list[str]) -> tuple[set[str], set[str]]:
    """``# via`` bodies -> (parent package names, input files such as ``main.in``)."""
    parents: set[str] = set()
    inputs: set[str] = set()
    in_via = False
    for comment in comments:
        body = comment
        if body == "via" or body.startswith("via "):
            in_via = True
            body = body[3:].strip()
        if not in_via or not body:
            continue
        if body.startswith("-r "):
            inputs.add(body[3:].strip().rsplit("/", 1)[-1])
        elif not body.startswith("-"):  # "-c constraints.txt": a constraint is not a parent
            parents.add(_name(body.split()[0]))
    return parents, inputs


def parse_requirements_txt(text: str) -> dict[str, CompiledPin]:
    """``uv pip compile --generate-hashes --annotation-style split`` output -> name -> pin."""
    result: dict[str, CompiledPin] = {}
    for line, comments in _logical_lines(text):
        name, version, hashes = _pin(line)
        parents, inputs = _annotations(comments)
        result[name] = CompiledPin(
            name=name,
            version=version,
            hashes=hashes,
            required_by=frozenset(parents),
            direct_from=frozenset(inputs),
        )
    return result


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ResolverError(
            f"uv's pylock.toml: {where}.{key}: expected {kind.__name__}, got {value!r}"
        )
    return value


def _file_name(location: str) -> str:
    """The last part of a URL's path (or of a path), unescaped."""
    if location and set(location) <= _LOCATION_CHARS:
        if location.startswith("/") and not location.startswith("//"):
            return location.rsplit("/", 1)[-1]
        for scheme in ("https://", "http://", "file://"):
            if location.startswith(scheme) and "/" in location[len(scheme):]:
                return location.rsplit("/", 1)[-1]
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(location).path.rsplit("/", 1)[-1])


def _files(package: Mapping[str, Any], where: str) -> Iterator[tuple[str, str]]:
    """``(file name, sha256)`` of a package's sdist and wheels."""
    dists: list[tuple[str, Any]] = []
    if "sdist" in package:
        dists.append((f"{where}.sdist", package["sdist"]))
    wheels = package.get("wheels", [])
    if not isinstance(wheels, list):
        raise ResolverError(f"uv's pylock.toml: {where}.wheels: expected an array")
    dists += [(f"{where}.wheels[{i}]", wheel) for i, wheel in enumerate(wheels)]
    for at, dist in dists:
        if not isinstance(dist, dict):
            raise ResolverError(f"uv's pylock.toml: {at}: expected a table")
        # PEP 751: the file name is 'name', else the last part of 'path' or 'url'
        location = dist.get("name") or dist.get("path") or _field(dist, "url", str, at)
        fname = _file_name(str(location))
        hashes = _field(dist, "hashes", dict, at)
        if "sha256" in hashes:
            yield _filename(fname), _sha256(hashes["sha256"])


def parse_pylock(text: str) -> dict[str, dict[str, str]]:
    """uv's ``pylock.toml`` -> name -> {file name: sha256} (the files usable for the target)."""
    data = read_uv_lines(text)
    if data is None:  # not a layout read_uv_lines knows: TOML's own parser decides
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            import tomli as tomllib  # the same API, from PyPI (a dependency on 3.10)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ResolverError(f"uv wrote a pylock.toml envknit cannot read: {exc}") from None
    version = _field(data, "lock-version", str, "pylock")
    if version.split(".")[0] != "1":
        raise ResolverError(f"uv wrote pylock.toml lock-version {version!r}; envknit reads 1.x")
    found: dict[str, dict[str, str]] = {}
    for i, package in enumerate(_field(data, "packages", list, "pylock")):
        where = f"packages[{i}]"
        if not isinstance(package, dict):
            raise ResolverError(f"uv's pylock.toml: {where}: expected a table")
        name = _name(_field(package, "name", str, where))
        found[name] = dict(_files(package, where))
    return found


# -- uv's own pylock.toml lines, without a TOML parser ----------------------------------------
# uv 0.13 writes ``key = "string"`` lines at the top, then per package a ``[[packages]]``
# header and ``key = value`` lines whose values are strings, or (sdist, wheels) inline tables
# and arrays of them, one array element per line when it spans several. read_uv_lines reads
# exactly that much TOML, as tomllib would read it; anything else, including any escape,
# literal string, comment, dotted or quoted key or duplicate key, makes it return None.
# Bare values (sizes, upload times) of keys envknit does not read are checked for their shape
# only.

_OTHER = object()  # a bare value (integer, date-time, boolean) whose value nobody reads
_BARE = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-:.+")
_KEY = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-")
_READ = ("name", "path", "url", "hashes", "sha256", "version", "lock-version", "sdist",
         "wheels", "packages")  # keys whose values are read: a bare value there is refused


class _Unread(Exception):
    """A line or value read_uv_lines leaves to tomllib."""


def _string(text: str, at: int) -> tuple[str, int]:
    """The basic string starting at ``text[at]`` (a quote), and the index after it."""
    end = text.find('"', at + 1)
    value = text[at + 1:end]
    if end < 0 or "\\" in value or not value.isprintable():
        raise _Unread
    return value, end + 1


def _value(text: str, at: int, key: str) -> tuple[object, int]:
    """The value at ``text[at]`` (for ``key``): a string, an inline table or a bare value."""
    char = text[at:at + 1]
    if char == '"':
        return _string(text, at)
    if char == "{":
        return _table(text, at)
    end = at
    while end < len(text) and text[end] in _BARE:
        end += 1
    if key in _READ or not _bare(text[at:end]):
        raise _Unread
    return _OTHER, end


def _number(text: str, low: int, high: int) -> bool:
    return text.isdigit() and text.isascii() and low <= int(text) <= high


def _bare(token: str) -> bool:
    """Whether ``token`` is an integer, a boolean or a date-time as TOML (tomllib) reads it:
    only the forms uv writes (``2026-10-06T22:48:38Z``); the rest is left to tomllib."""
    if token in ("true", "false") or (token.isdigit() and token.isascii()
                                      and (token == "0" or token[0] != "0")):
        return True
    if len(token) < 10 or token[4] != "-" or token[7] != "-":
        return False
    year, month, day = token[:4], token[5:7], token[8:10]
    if not (_number(year, 1, 9999) and _number(month, 1, 12)):
        return False
    leap = int(year) % 4 == 0 and (int(year) % 100 != 0 or int(year) % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[int(month) - 1]
    if not _number(day, 1, days):
        return False
    time = token[10:]
    if not time:
        return True
    if len(time) < 9 or time[0] != "T" or time[3] != ":" or time[6] != ":" or not (
            _number(time[1:3], 0, 23) and _number(time[4:6], 0, 59)
            and _number(time[7:9], 0, 59)):
        return False
    rest = time[9:]
    if rest.startswith("."):
        digits = len(rest) - len(rest[1:].lstrip("0123456789")) - 1
        if digits < 1:
            return False
        rest = rest[1 + digits:]
    return rest in ("", "Z") or (
        len(rest) == 6 and rest[0] in "+-" and rest[3] == ":"
        and _number(rest[1:3], 0, 23) and _number(rest[4:6], 0, 59))


def _table(text: str, at: int) -> tuple[dict[str, object], int]:
    """The inline table ``{ key = value, ... }`` starting at ``text[at]``."""
    table: dict[str, object] = {}
    at += 1
    while True:
        if text.startswith(" }", at):
            return table, at + 2
        if table:
            if not text.startswith(",", at):
                raise _Unread
            at += 1
        if not text.startswith(" ", at):
            raise _Unread
        key, at = _key(text, at + 1)
        if key in table:
            raise _Unread
        table[key], at = _value(text, at, key)


def _key(text: str, at: int) -> tuple[str, int]:
    """``key = `` at ``text[at]``: the bare key, and the index of its value."""
    end = text.find(" = ", at)
    key = text[at:end]
    if end <= at or not set(key) <= _KEY:
        raise _Unread
    return key, end + 3


def _line(line: str) -> tuple[str, object]:
    key, at = _key(line, 0)
    if line[at:] == "[":  # an array, one element per line
        return key, []
    if line[at:at + 2] == "[{":  # an array of inline tables on one line
        items: list[object] = []
        at += 1
        while True:
            item, at = _table(line, at)
            items.append(item)
            if line[at:] == "]":
                return key, items
            if not line.startswith(", {", at):
                raise _Unread
            at += 2
    value, at = _value(line, at, key)
    if at != len(line):
        raise _Unread
    return key, value


def read_uv_lines(text: str) -> dict[str, Any] | None:
    """``text`` in uv's own pylock.toml layout as tomllib reads it, or None for any other."""
    data: dict[str, Any] = {}
    table = data
    array: list[object] | None = None  # the multi-line array being read
    try:
        for line in text.split("\n"):
            if array is not None:
                if line == "]":
                    array = None
                elif line.startswith("    {") and line.endswith(" },"):
                    item, at = _table(line, 4)
                    if at != len(line) - 1:
                        raise _Unread
                    array.append(item)
                else:
                    raise _Unread
            elif not line:
                continue
            elif line == "[[packages]]":
                if "packages" in data and not isinstance(data["packages"], list):
                    raise _Unread
                table = {}
                data.setdefault("packages", []).append(table)
            else:
                key, value = _line(line)
                if key in table or (table is data and key == "packages"):
                    raise _Unread
                table[key] = value
                if value == [] and isinstance(value, list):
                    array = value
    except _Unread:
        return None
    return data if array is None else None
