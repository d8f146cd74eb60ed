"""Reading an installed distribution from a directory: its dist-info, RECORD and import names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .names import canonical_name
from .store.record import record_rows

__all__ = ["EXTENSION_SUFFIXES", "InstalledDist", "main_import", "read_installed"]

#: File suffixes of compiled extension modules (RECORD entries that cannot load twice).
EXTENSION_SUFFIXES = (".so", ".pyd")
_MODULE_NAME = re.compile(r"[0-9A-Za-z_]+")


@dataclass(frozen=True, kw_only=True, slots=True)
class InstalledDist:
    """What one distribution installed into ``site``, as its dist-info says."""

    dist: str
    site_dir: Path
    dist_info: Path | None
    #: Top-level import names that exist in ``site_dir`` (see ``read_installed``).
    import_names: tuple[str, ...]
    #: RECORD entries that are compiled extension modules.
    extensions: tuple[str, ...]

    @property
    def main_import(self) -> str:
        return main_import(self.dist, self.import_names)


def main_import(dist: str, import_names: tuple[str, ...]) -> str:
    """The import name that stands for ``dist``: the one spelled like it, else the first public
    one (PyYAML -> ``yaml``); "" for a distribution with no module."""
    guess = dist.replace("-", "_")
    if guess in import_names:
        return guess
    public = [n for n in import_names if not n.startswith("_")]
    return (public or [*import_names, ""])[0]


def _find_dist_info(site: Path, dist: str) -> Path | None:
    for candidate in sorted(site.glob("*.dist-info")):
        stem = candidate.name[: -len(".dist-info")]
        if canonical_name(stem.rsplit("-", 1)[0]) == dist:
            return candidate
    return None


def _read(dist_info: Path | None, name: str) -> str | None:
    """A dist-info file's text, None if it cannot be read: what ``PathDistribution.read_text``
    does, without importing importlib.metadata (email, zipfile, inspect: ~10 ms that
    ``configure_from_lock`` would pay)."""
    if dist_info is None:
        return None
    try:
        return (dist_info / name).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None  # what read_text suppresses: a missing file reads as none


def _record_paths(dist_info: Path | None) -> list[str]:
    """The paths RECORD lists. Not ``Distribution.files``: since 3.12 it stats every listed
    file to drop missing ones (15x slower for a small package, and we only need the names)."""
    text = _read(dist_info, "RECORD")
    return [row[0] for row in record_rows(text or "") if row[0]]


def _importable(site: Path, name: str) -> bool:
    if (site / name).is_dir() or (site / f"{name}.py").is_file():
        return True
    return any(
        (site / f"{name}{suffix}").is_file() or any(site.glob(f"{name}.*{suffix}"))
        for suffix in EXTENSION_SUFFIXES
    )


def _import_names(
    site: Path, dist_info: Path | None, record: list[str]
) -> tuple[str, ...]:
    names: list[str] = []
    top_level = _read(dist_info, "top_level.txt")
    if top_level:
        lines = top_level.splitlines()
        names = [n.strip().replace("/", ".").split(".")[0] for n in lines if n.strip()]
    for path in record:
        first = path.split("/", 1)[0]
        if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__", ""):
            continue
        names.append(first.split(".", 1)[0] if "/" not in path else first)
    return tuple(
        n for n in dict.fromkeys(names) if _MODULE_NAME.fullmatch(n) and _importable(site, n)
    )


def read_installed(dist: str, site: Path) -> InstalledDist:
    """Describe what the distribution ``dist`` (canonical name) installed into ``site``.

    Import names are those of ``top_level.txt`` (setuptools) and the top entries of RECORD
    (every installer), kept if they exist in ``site``. Names need not be identifiers: mypyc's
    shared module (``81d243bd...__mypyc``) is imported by C code under a name that starts with
    a digit. A missing dist-info or RECORD gives no names.
    """
    dist_info = _find_dist_info(site, dist)
    record = _record_paths(dist_info)
    return InstalledDist(
        dist=dist,
        site_dir=site,
        dist_info=dist_info,
        import_names=_import_names(site, dist_info, record),
        extensions=tuple(p for p in record if p.endswith(EXTENSION_SUFFIXES)),
    )
