"""C-extension verdicts on disk: whether a store entry's compiled modules load in a sub-interpreter.

A verdict is decided once per (store entry, exact Python build) by a throwaway probe process
(``envknit/_subinterp/_probe.py``, started by the guard in ``_subinterp/_child.py``) and kept
on disk::

    $ENVKNIT_HOME/verdicts/<build>/BUILD.json              which Python build <build> stands for
    $ENVKNIT_HOME/verdicts/<build>/<name>/<version>/<key>.json   one entry's verdict

``<build>`` hashes everything that changes how an extension loads (``sys.version`` with its
build date and compiler, the ABI tag, the real path of the base executable), so another Python
build never sees these verdicts; ``<name>/<version>/<key>`` is the entry's place in the store
(``<key>`` is the hash of the installed wheel, so a reinstall of the same wheel keeps its
verdict). ``ENVKNIT_CEXT_OVERRIDES="numpy=loads,orjson==3.10.0=refused"`` overrides verdicts.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import sysconfig
import threading
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any, Literal

from .._atomic import atomic_write_text
from ..names import normalize_name
from .layout import Entry, envknit_home, iter_entries

__all__ = [
    "Verdict",
    "build_info",
    "build_key",
    "entries_for_child",
    "forget",
    "has_extensions",
    "learn",
    "overrides",
    "prune",
    "read_verdict",
    "reset_memory",
    "verdict_path",
    "verdicts_root",
]

Verdict = Literal["loads", "refused", "crashed"]
OVERRIDES_VAR = "ENVKNIT_CEXT_OVERRIDES"
_VERDICTS: tuple[str, ...] = ("loads", "refused", "crashed")

_lock = threading.Lock()
# Verdict file -> record, as read from disk or reported by a child (the host reads each once).
_known: dict[str, dict[str, Any]] = {}


@functools.cache
def build_info() -> dict[str, str]:
    """What identifies this Python build for extension loading."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return {
        "version": sys.version,
        "cache_tag": str(sys.implementation.cache_tag),
        "soabi": str(sysconfig.get_config_var("SOABI") or ""),
        "executable": os.path.realpath(base),
    }


@functools.cache
def build_key() -> str:
    """16 hex digits naming this Python build's verdict directory."""
    # Imported here, not at module level: importing envknit must not change which stdlib C
    # paths the main interpreter has warmed (tests/test_subinterp_safety.py's controls rely on
    # that; see _safety.prepare_host).
    import hashlib

    text = json.dumps(build_info(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def verdicts_root(home: Path | None = None) -> Path:
    """Where this Python build's verdicts live."""
    return (home if home is not None else envknit_home()) / "verdicts" / build_key()


def verdict_path(entry: Entry, home: Path | None = None) -> Path:
    """The verdict file of ``entry`` for this Python build."""
    return verdicts_root(home) / entry.name / entry.version / f"{entry.path.name}.json"


@functools.lru_cache(maxsize=4096)
def _compiled_files(files: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f for f in files if f.startswith("site/") and f.endswith(_SUFFIXES))


_SUFFIXES = tuple(EXTENSION_SUFFIXES)


def has_extensions(entry: Entry) -> bool:
    """True if the entry's manifest lists a compiled module for this Python."""
    return bool(_compiled_files(tuple(entry.files)))


def _top_level_names(entry: Entry) -> list[str]:
    """The importable top-level names of the entry that hold compiled modules."""
    names: set[str] = set()
    for rel in _compiled_files(tuple(entry.files)):
        first = rel.split("/")[1]
        if first.endswith(_SUFFIXES):
            first = first.split(".")[0]
        if first.isidentifier():
            names.add(first)
    return sorted(names)


def read_verdict(path: Path) -> dict[str, Any] | None:
    """The record in a verdict file, or None if it is missing or unreadable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != 1:
        return None
    if record.get("verdict") not in _VERDICTS or not isinstance(record.get("modules"), dict):
        return None
    return record


def overrides() -> dict[str, Verdict]:
    """``ENVKNIT_CEXT_OVERRIDES`` as {"name" or "name==version": verdict}; bad items ignored."""
    result: dict[str, Verdict] = {}
    for item in os.environ.get(OVERRIDES_VAR, "").split(","):
        target, sep, verdict = item.strip().rpartition("=")
        if not sep or verdict not in ("loads", "refused") or not target:
            continue
        name, _, version = target.partition("==")
        key = normalize_name(name.strip()) + (f"=={version.strip()}" if version else "")
        result[key] = "loads" if verdict == "loads" else "refused"
    return result


def _override_for(entry: Entry, table: dict[str, Verdict]) -> dict[str, Any] | None:
    verdict = table.get(f"{entry.name}=={entry.version}") or table.get(entry.name)
    if verdict is None:
        return None
    return {"format": 1, "entry": f"{entry.name} {entry.version}", "verdict": verdict,
            "source": "override", "modules": {}, "detail": f"{OVERRIDES_VAR}"}


def entries_for_child(entries: list[Entry], home: Path | None = None) -> dict[str, Any]:
    """What a child needs to guard ``entries``: site dir -> label, verdict file, names, record.

    Only entries with compiled modules are listed (pure-Python entries cost nothing).
    """
    table = overrides()
    result: dict[str, Any] = {}
    for entry in entries:
        if not has_extensions(entry):
            continue
        path = str(verdict_path(entry, home))
        record = _override_for(entry, table)
        if record is None:
            with _lock:
                record = _known.get(path)
            if record is None:
                record = read_verdict(Path(path))
                if record is not None:
                    learn({path: record})
        result[str(entry.site_dir)] = {
            "label": f"{entry.name} {entry.version}",
            "file": path,
            "tops": _top_level_names(entry),
            "verdict": record,
        }
    if result:
        _write_build_info(home)
    return result


def _write_build_info(home: Path | None) -> None:
    path = verdicts_root(home) / "BUILD.json"
    if path.exists():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(build_info(), indent=1, sort_keys=True))
    except OSError:
        pass  # informational only (for doctor); a read-only home still works


def learn(records: dict[str, dict[str, Any]]) -> None:
    """Remember verdicts a child decided (they are on disk already)."""
    with _lock:
        _known.update(records)


def forget(entries: list[Entry], home: Path | None = None) -> int:
    """Delete this build's verdicts of ``entries`` (probed again on next use); how many."""
    count = 0
    for entry in entries:
        path = verdict_path(entry, home)
        with _lock:
            _known.pop(str(path), None)
        try:
            path.unlink()
            count += 1
        except FileNotFoundError:
            continue
    return count


def prune(home: Path) -> int:
    """Delete verdicts (of every build) whose store entry no longer exists; how many."""
    root = home / "verdicts"
    if not root.is_dir():
        return 0
    alive = {(e.name, e.version, e.path.name) for e in iter_entries(home)}
    count = 0
    for path in root.glob("*/*/*/*.json"):
        name, version, key = path.parent.parent.name, path.parent.name, path.stem
        if (name, version, key) not in alive:
            path.unlink(missing_ok=True)
            count += 1
    for build in root.iterdir():
        for directory in sorted(build.glob("*/*"), reverse=True) + sorted(build.glob("*")):
            if directory.is_dir():
                try:
                    directory.rmdir()  # only when empty
                except OSError:
                    continue
    reset_memory()
    return count


def reset_memory() -> None:
    """Forget the records read so far (they are read from disk again)."""
    with _lock:
        _known.clear()

