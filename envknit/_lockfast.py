"""A lock's packages and their store entries read with os and str only (the routing table's miss).

``_lockcache`` works a table out again when its cache misses. Through the lock model
(dataclasses: ~25 ms with inspect), ``store.layout`` (pathlib) and ``_dists`` (re, csv
helpers) that cost ~60 ms of imports in a fresh process. This module reads the lock's dict
(``_lockread``) and the store for the common case only: anything it does not accept as
plainly valid (a name not already canonical, a version not in normal form, a RECORD with
quotes) returns None (``Decline``), and the caller asks the
models, whose answers and errors stay the only ones. Compiled entries' tags are judged by the
caller's function (packaging.tags, as ``Entry.compatible_with`` does).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "Decline", "LockPackage", "entry_dir", "installed", "lock_packages", "pure_python_fits",
]

#: (name, version, dependencies, sha256 digests), per environment: (python_version, packages)
LockPackage = tuple[str, str, tuple[str, ...], frozenset[str]]

_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _LOWER | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset("0123456789abcdef")
_FILE_CHARS = _ALNUM | frozenset("._+!-")
_ENV_CHARS = _ALNUM | frozenset("_-")
_EXTENSION_SUFFIXES = (".so", ".pyd")  # _dists.EXTENSION_SUFFIXES


class Decline(Exception):
    """The fast reader leaves this to the models."""


# -- what names.py's patterns accept, for the forms they return unchanged ----------------------
def _canonical(value: object) -> str:
    """``value`` if ``names.normalize_name`` returns it unchanged."""
    if (isinstance(value, str) and 0 < len(value) <= 128 and not set(value) - _LOWER - {"-"}
            and value[0] != "-" and value[-1] != "-" and "--" not in value):
        return value
    raise Decline


def _normal_digit_run(part: str) -> bool:
    return part.isascii() and part.isdigit() and (part == "0" or part[0] != "0")


def _version(value: object) -> str:
    """``value`` if it is a release ``N(.N)*`` in normal form (``normalize_version`` keeps it)."""
    if (isinstance(value, str) and 0 < len(value) <= 100
            and all(_normal_digit_run(p) for p in value.split("."))):
        return value
    raise Decline


def _sha256(value: object) -> str:
    if isinstance(value, str) and len(value) == 64 and not set(value) - _HEX:
        return value
    raise Decline


def _filename(value: object) -> None:
    if not (isinstance(value, str) and value[:1] in _ALNUM and not set(value) - _FILE_CHARS
            and value.endswith((".whl", ".tar.gz", ".zip", ".tar.bz2")) and ".." not in value
            and len(value) <= 255):
        raise Decline


def _env_name(value: str) -> None:
    if not (0 < len(value) <= 64 and value[0] in _ALNUM and not set(value) - _ENV_CHARS):
        raise Decline


def _python_version(value: object) -> str:
    if isinstance(value, str):
        parts = value.split(".")
        if (2 <= len(parts) <= 3 and parts[0] == "3" and len(parts[1]) <= 2
                and (len(parts) == 2 or len(parts[2]) <= 3)
                and all(p and p.isascii() and p.isdigit() for p in parts[1:])):
            return value
    raise Decline


def _strings(value: object) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise Decline


def _package(data: object) -> LockPackage:
    if not isinstance(data, dict):
        raise Decline
    name, version = _canonical(data.get("name")), _version(data.get("version"))
    if not isinstance(data.get("dev", False), bool):
        raise Decline
    deps = tuple(_canonical(d) for d in _strings(data.get("dependencies", [])))
    files = data.get("files")
    if not isinstance(files, list) or not files:
        raise Decline
    hashes = set()
    for item in files:
        if not isinstance(item, dict):
            raise Decline
        _filename(item.get("name"))
        hashes.add(_sha256(item.get("sha256")))
    return (name, version, deps, frozenset(hashes))


def _environment(data: object) -> tuple[str, list[LockPackage]]:
    if not isinstance(data, dict):
        raise Decline
    python_version = _python_version(data.get("python_version"))
    packages = data.get("packages", [])
    if not isinstance(packages, list):
        raise Decline
    pkgs = [_package(p) for p in packages]
    if len({p[0] for p in pkgs}) != len(pkgs):
        raise Decline  # listed twice: the model's error
    _strings(data.get("requirements", []))
    for key in ("config_hash", "node_version"):
        if not isinstance(data.get(key, ""), str):
            raise Decline
    return python_version, sorted(pkgs, key=lambda p: p[0])


def lock_packages(data: dict[str, object]) -> dict[str, tuple[str, list[LockPackage]]]:
    """Per environment of the lock ``data`` (``_lockread``'s dict): its Python and its packages,
    sorted by name, exactly as ``Lock.from_dict`` would read them; ``Decline`` otherwise."""
    version = data.get("schema_version")
    if not isinstance(version, str):
        raise Decline
    major = version.split(".", 1)[0]
    if not (major.isascii() and major.isdigit() and int(major) == 1):
        raise Decline
    resolver = data.get("resolver", {})
    if not isinstance(resolver, dict) or not isinstance(resolver.get("version", ""), str):
        raise Decline
    envs = data.get("environments")
    if not isinstance(envs, dict):
        raise Decline
    out = {}
    for name, env in envs.items():
        _env_name(name)
        out[name] = _environment(env)
    return out


# -- the store ---------------------------------------------------------------------------------
def pure_python_fits(text: str, python: tuple[int, int]) -> bool:
    """True for a ``-none-any`` tag set that CPython ``python`` accepts (``py3-none-any``,
    ``py2.py3-none-any``, ``py312-none-any``...), as ``compatible_tags`` would rank it; False
    means "ask packaging.tags". (Here rather than in ``store.layout``, which re-exports it:
    that module imports pathlib and dataclasses.)"""
    interpreters, abi, platform = [*text.split("-"), "", ""][:3]
    if abi != "none" or platform != "any":
        return False
    major, minor = python
    fits = {f"py{major}", *(f"py{major}{m}" for m in range(minor + 1))}
    return any(i in fits for i in interpreters.split("."))


def _json_scalar(text: str) -> object:
    """A JSON string without escapes or an int, as ``json.dumps`` writes them."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if '"' not in inner and "\\" not in inner and inner.isascii() and inner.isprintable():
            return inner
    elif text.isascii() and text.isdigit() and (text == "0" or text[0] != "0"):
        return int(text)
    elif text in ("[]", "{}"):
        return [] if text == "[]" else {}
    raise Decline


def _json_member(line: str, indent: str) -> tuple[str, str]:
    """``"key": rest`` at ``indent``: (key, rest)."""
    if not line.startswith(indent + '"'):
        raise Decline
    key, sep, rest = line[len(indent):].partition(": ")
    key_text = _json_scalar(key)
    if not sep or not isinstance(key_text, str):
        raise Decline
    return key_text, rest


def _plain_json(text: str) -> dict[str, object]:
    """``json.loads(text)`` for what ``json.dumps(..., indent=1)`` writes of an entry's plain
    metadata (one level of lists and objects, ASCII strings without escapes, ints);
    ``Decline`` for anything else (json then reads it: its import and re cost ~5 ms)."""
    lines = text.split("\n")
    if len(lines) < 3 or lines[0] != "{" or lines[-1] != "}":
        raise Decline
    out: dict[str, object] = {}
    commas: list[bool] = []
    at, last = 1, len(lines) - 1
    while at < last:
        line = lines[at].removesuffix(",")
        key, rest = _json_member(line, " ")
        at += 1
        if rest in ("[", "{"):
            closer = " ]" if rest == "[" else " }"
            items: list[object] = []
            pairs: dict[str, object] = {}
            item_commas: list[bool] = []
            while at < last and lines[at].removesuffix(",") != closer:
                item = lines[at].removesuffix(",")
                item_commas.append(item != lines[at])
                at += 1
                if rest == "[":
                    if not item.startswith("  ") or item[2:3] == " ":
                        raise Decline
                    items.append(_json_scalar(item[2:]))
                else:
                    item_key, item_text = _json_member(item, "  ")
                    if item_key in pairs:
                        raise Decline
                    pairs[item_key] = _json_scalar(item_text)
            if at >= last or not item_commas or item_commas[-1] or not all(item_commas[:-1]):
                raise Decline
            line = lines[at].removesuffix(",")
            commas.append(line != lines[at])
            at += 1
            value: object = items if rest == "[" else pairs
        else:
            commas.append(line != lines[at - 1])
            value = _json_scalar(rest)
        if key in out:
            raise Decline
        out[key] = value
    if not commas or commas[-1] or not all(commas[:-1]):
        raise Decline
    return out


def _entry(path: str, name: str, version: str) -> tuple[str, tuple[str, ...]] | None:
    """(sha256, tags) of the complete entry at ``path``, None if ``read_entry`` refuses it."""
    if not os.path.isdir(os.path.join(path, "site")):
        return None
    try:
        with open(os.path.join(path, "ENTRY.json"), encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, ValueError):
        return None
    data: object
    try:
        data = _plain_json(text)
    except Decline:
        import json

        try:
            data = json.loads(text)
        except ValueError:
            return None
    if not isinstance(data, dict) or data.get("format") != 1:
        return None
    files, tags = data.get("files", {}), data.get("tags", [])
    if not isinstance(files, dict) or not isinstance(tags, list):
        return None
    if (data.get("name") != name or data.get("version") != version
            or not all(isinstance(t, str) for t in tags)):
        raise Decline  # read_entry normalises what it reads: let it
    try:
        return _sha256(data.get("sha256")), tuple(tags)
    except Decline:
        return None  # read_entry: not a digest, so no entry


def entry_dir(store: str, name: str, version: str, hashes: frozenset[str],
              python: tuple[int, int], *,
              fits: Callable[[tuple[str, ...], tuple[int, int]], bool] | None = None) -> str:
    """``store.layout.find_entry(...).path`` as a string ("" for None). An entry whose tags
    only packaging.tags can judge is judged by ``fits`` (``Decline`` without one)."""
    version_dir = os.path.join(store, name, version)
    if not hashes or not os.path.isdir(version_dir):
        return ""
    try:
        keys = sorted(os.listdir(version_dir))
    except OSError:
        raise Decline from None
    for key in keys:
        path = os.path.join(version_dir, key)
        found = _entry(path, name, version)
        if found is None or found[0] not in hashes:
            continue
        if all(pure_python_fits(t, python) for t in found[1]):
            return path
        if fits is None:
            raise Decline
        if fits(found[1], python):
            return path
    return ""


def _canonical_name(name: str) -> str:
    """``names.canonical_name`` without re: runs of ``-_.`` become one ``-``, lower case."""
    text = name.replace("_", "-").replace(".", "-")
    while "--" in text:
        text = text.replace("--", "-")
    return text.lower()


def _read(path: str) -> str | None:
    """``_dists._read``: a missing file reads as none."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


def _importable(site: str, listing: Iterable[str], name: str) -> bool:
    if os.path.isdir(os.path.join(site, name)) or os.path.isfile(os.path.join(site, f"{name}.py")):
        return True
    for suffix in _EXTENSION_SUFFIXES:
        if os.path.isfile(os.path.join(site, f"{name}{suffix}")):
            return True
        if any(f.startswith(f"{name}.") and f.endswith(suffix)
               and len(f) >= len(name) + 1 + len(suffix) for f in listing):
            return True
    return False


def _is_import_name(text: str) -> bool:
    return text.isascii() and text.replace("_", "a").isalnum()


def installed(dist: str, site: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``_dists.read_installed(dist, site)`` as (dist-info name or "", import names,
    extensions); ``Decline`` for a RECORD that needs the csv module."""
    try:
        listing = sorted(os.listdir(site))
    except OSError:
        raise Decline from None  # gone meanwhile: as the models see it
    dist_info = ""
    for candidate in listing:
        if candidate.endswith(".dist-info") and _canonical_name(
                candidate[: -len(".dist-info")].rsplit("-", 1)[0]) == dist:
            dist_info = candidate
            break
    record_text = top_level = None
    if dist_info:
        record_text = _read(os.path.join(site, dist_info, "RECORD"))
        top_level = _read(os.path.join(site, dist_info, "top_level.txt"))
    text = record_text or ""
    if '"' in text or "\r" in text:
        raise Decline
    record = [p for p in (line.split(",")[0] for line in text.split("\n") if line) if p]
    names: list[str] = []
    if top_level:
        names = [n.strip().replace("/", ".").split(".")[0]
                 for n in top_level.splitlines() if n.strip()]
    for path in record:
        first = path.split("/", 1)[0]
        if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__", ""):
            continue
        names.append(first.split(".", 1)[0] if "/" not in path else first)
    import_names = tuple(n for n in dict.fromkeys(names)
                         if _is_import_name(n) and _importable(site, listing, n))
    return (dist_info, import_names, tuple(p for p in record if p.endswith(_EXTENSION_SUFFIXES)))
