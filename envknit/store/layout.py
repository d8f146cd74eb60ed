"""Where things live under ``ENVKNIT_HOME`` and how a complete store entry is recognised.

Layout::

    $ENVKNIT_HOME/                       (default ~/.envknit)
      store/<name>/<version>/<key>/      one entry per (distribution, version, installed file);
                                         its mtime: when an install last made or reused it
          site/                          the directory that goes on sys.path / PYTHONPATH
          bin/                           console scripts (may be absent)
          ENTRY.json                     metadata + per-file manifest; written last
      store/.tmp/                        entries being built (renamed into place when complete)
      locks/                             file locks serialising writers of the same entry
      projects/                          projects that installed from this store (for gc)

``<key>`` is the first 16 hex digits of the sha256 of the installed distribution file, so
compiled wheels for different Python ABIs get different entries. An entry is *complete* when
its directory exists under ``store/`` and holds a readable ``ENTRY.json``: entries are built in
``store/.tmp`` and renamed into place only after ``ENTRY.json`` is written, so a killed install
never leaves something that counts as installed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .._lockfast import pure_python_fits
from ..names import normalize_name, normalize_version, validate_sha256

TYPE_CHECKING = False  # typing (~2 ms) for the type checker only
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ENTRY_FILE",
    "ENTRY_FORMAT",
    "Entry",
    "entry_dir",
    "envknit_home",
    "find_entry",
    "iter_entries",
    "pure_python_fits",
    "read_entry",
    "store_root",
    "tag_ranks",
]

ENTRY_FILE = "ENTRY.json"
ENTRY_FORMAT = 1
KEY_LENGTH = 16


def envknit_home() -> Path:
    """``$ENVKNIT_HOME`` or ``~/.envknit`` (not created here)."""
    env = os.environ.get("ENVKNIT_HOME")
    return Path(env).expanduser().resolve() if env else Path.home() / ".envknit"


def store_root(home: Path | None = None) -> Path:
    """The directory holding every store entry."""
    return (home if home is not None else envknit_home()) / "store"


def entry_dir(name: str, version: str, sha256: str, home: Path | None = None) -> Path:
    """The directory of the entry for one distribution file (all parts validated)."""
    return (
        store_root(home)
        / normalize_name(name)
        / normalize_version(version)
        / validate_sha256(sha256)[:KEY_LENGTH]
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Entry:
    """A complete store entry, as read from its ``ENTRY.json``."""

    path: Path
    name: str
    version: str
    sha256: str
    filename: str
    tags: tuple[str, ...]
    python: str = ""
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def site_dir(self) -> Path:
        """The directory to put on ``sys.path``."""
        return self.path / "site"

    @property
    def bin_dir(self) -> Path:
        """The directory holding the entry's console scripts."""
        return self.path / "bin"

    def compatible_with(self, python: tuple[int, int]) -> bool:
        """True if the installed file's tags are supported by CPython ``python`` here."""
        if not self.tags:
            return True
        if all(pure_python_fits(text, python) for text in self.tags):
            return True  # without packaging.tags (~8 ms: logging, platform, sysconfig)
        from packaging.tags import parse_tag

        ranks = tag_ranks(python)
        return any(str(tag) in ranks for text in self.tags for tag in parse_tag(text))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``ENTRY.json``."""
        return {
            "format": ENTRY_FORMAT,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "filename": self.filename,
            "tags": list(self.tags),
            "python": self.python,
            "files": dict(sorted(self.files.items())),
        }


def read_entry(path: Path) -> Entry | None:
    """The entry at ``path`` if it is complete and well-formed, else None.

    An entry whose ``site`` directory is gone (deleted by hand) is not complete: ``run`` and
    ``install`` then treat it as missing, and ``install`` builds it again.
    """
    if not (path / "site").is_dir():
        return None
    try:
        data = json.loads((path / ENTRY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != ENTRY_FORMAT:
        return None
    try:
        files = data.get("files", {})
        tags = data.get("tags", [])
        if not isinstance(files, dict) or not isinstance(tags, list):
            return None
        return Entry(
            path=path,
            name=normalize_name(data["name"]),
            version=normalize_version(data["version"]),
            sha256=validate_sha256(data["sha256"]),
            filename=str(data.get("filename", "")),
            tags=tuple(str(t) for t in tags),
            python=str(data.get("python", "")),
            files={str(k): str(v) for k, v in files.items()},
        )
    except (KeyError, ValueError):
        return None


def iter_entries(home: Path | None = None) -> Iterator[Entry]:
    """Every complete entry in the store, in a stable order."""
    root = store_root(home)
    if not root.is_dir():
        return
    for name_dir in sorted(root.iterdir()):
        if name_dir.name.startswith(".") or not name_dir.is_dir():
            continue
        for version_dir in sorted(name_dir.iterdir()):
            if not version_dir.is_dir():
                continue
            for key_dir in sorted(version_dir.iterdir()):
                entry = read_entry(key_dir)
                if entry is not None:
                    yield entry


def find_entry(
    name: str,
    version: str,
    hashes: frozenset[str],
    python: tuple[int, int],
    home: Path | None = None,
) -> Entry | None:
    """The complete entry of ``name==version`` installed from one of ``hashes`` for ``python``.

    An empty ``hashes`` matches nothing: an entry is used only if the lock names its file.
    """
    if not hashes:
        return None
    version_dir = store_root(home) / normalize_name(name) / normalize_version(version)
    if not version_dir.is_dir():
        return None
    for key_dir in sorted(version_dir.iterdir()):
        entry = read_entry(key_dir)
        if entry is None or entry.sha256 not in hashes:
            continue
        if entry.compatible_with(python):
            return entry
    return None


@lru_cache(maxsize=8)
def tag_ranks(python: tuple[int, int]) -> Mapping[str, int]:
    """The wheel tags CPython ``python`` accepts on this platform, each with its rank (0 best)."""
    from packaging.tags import compatible_tags, cpython_tags

    ranks: dict[str, int] = {}
    for i, tag in enumerate((*cpython_tags(python_version=python),
                             *compatible_tags(python_version=python))):
        ranks.setdefault(str(tag), i)
    return ranks
