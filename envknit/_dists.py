"""Reading an installed distribution from a directory: its dist-info, RECORD and import names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import Distribution, PathDistribution
from pathlib import Path

from packaging.utils import canonicalize_name

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
        if canonicalize_name(stem.rsplit("-", 1)[0]) == dist:
            return candidate
    return None


def _record_paths(found: PathDistribution | None) -> list[str]:
    """The paths RECORD lists. Not ``Distribution.files``: since 3.12 it stats every listed
    file to drop missing ones (15x slower for a small package, and we only need the names)."""
    text = found.read_text("RECORD") if found is not None else None
    return [row[0] for row in record_rows(text or "") if row[0]]


def _importable(site: Path, name: str) -> bool:
    if (site / name).is_dir() or (site / f"{name}.py").is_file():
        return True
    return any(
        (site / f"{name}{suffix}").is_file() or any(site.glob(f"{name}.*{suffix}"))
        for suffix in EXTENSION_SUFFIXES
    )


def _import_names(
    site: Path, found: PathDistribution | None, record: list[str]
) -> tuple[str, ...]:
    names: list[str] = []
    top_level = found.read_text("top_level.txt") if found is not None else None
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
    found = Distribution.at(dist_info) if dist_info is not None else None
    record = _record_paths(found)
    return InstalledDist(
        dist=dist,
        site_dir=site,
        dist_info=dist_info,
        import_names=_import_names(site, found, record),
        extensions=tuple(p for p in record if p.endswith(EXTENSION_SUFFIXES)),
    )
