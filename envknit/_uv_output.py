"""Parsers of ``uv pip compile`` output: requirements.txt (pins, hashes, graph), pylock.toml.

uv 0.13's ``pylock.toml`` (PEP 751) records each package's files and hashes but no
``dependencies``, so the dependency graph comes from the requirements.txt form, whose
``# via`` annotations (``--annotation-style split``) name each package's parents. Both formats
are parsed structurally: requirement lines with ``packaging.requirements`` (the plain
``name==version`` that uv writes without it), the TOML with ``tomllib``.
``tests/data/uv-<version>/`` holds recorded uv output these parsers are tested on.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidNameError, ResolverError
from .names import normalize_name, normalize_version, validate_filename, validate_sha256

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # the same API, from PyPI (a dependency on 3.10)

__all__ = ["CompiledPin", "parse_pylock", "parse_requirements_txt"]

# what uv writes for every pin (extras and markers stripped): read without packaging's parser,
# whose import (markers, specifiers, tags: ~15 ms of regular expressions) was most of the
# parsing's cost; anything else goes through that parser
# a file's URL or absolute path as uv writes it: its last part is the file name as is (no
# escapes, query or fragment); anything else goes through urllib.parse (whose import, with
# ipaddress, cost as much as the rest of this module)
_PLAIN_LOCATION_CHARS = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@/-]+")
_PLAIN_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.!+_-]*)")


@dataclass(frozen=True, kw_only=True, slots=True)
class CompiledPin:
    """One pin of ``uv pip compile``: its version, file hashes, parents and input files."""

    name: str
    version: str
    hashes: frozenset[str]
    required_by: frozenset[str]
    direct_from: frozenset[str]


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
        hashes.add(validate_sha256(digest))
    plain = _PLAIN_PIN.fullmatch(requirement)
    if plain is not None:
        try:
            return normalize_name(plain[1]), normalize_version(plain[2]), frozenset(hashes)
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
    return normalize_name(req.name), normalize_version(specs[0].version), frozenset(hashes)


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
            parents.add(normalize_name(body.split()[0]))
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
    if _PLAIN_LOCATION_CHARS.fullmatch(location):
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
        if not isinstance(dist, Mapping):
            raise ResolverError(f"uv's pylock.toml: {at}: expected a table")
        # PEP 751: the file name is 'name', else the last part of 'path' or 'url'
        location = dist.get("name") or dist.get("path") or _field(dist, "url", str, at)
        fname = _file_name(str(location))
        hashes = _field(dist, "hashes", Mapping, at)
        if "sha256" in hashes:
            yield validate_filename(fname), validate_sha256(hashes["sha256"])


def parse_pylock(text: str) -> dict[str, dict[str, str]]:
    """uv's ``pylock.toml`` -> name -> {file name: sha256} (the files usable for the target)."""
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
        if not isinstance(package, Mapping):
            raise ResolverError(f"uv's pylock.toml: {where}: expected a table")
        name = normalize_name(_field(package, "name", str, where))
        found[name] = dict(_files(package, where))
    return found
