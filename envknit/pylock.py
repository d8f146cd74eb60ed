"""PEP 751 ``pylock.toml`` export of one locked environment: a typed model and its TOML text.

PEP 751 needs a ``url`` or a ``path`` for every file, and envknit's lock records only file
names and hashes (it stays machine-independent). So each file is located at export time: a
file present in one of the given folders (``UV_FIND_LINKS`` and ``--find-links``) is written
as a ``path`` relative to the pylock file; any other file gets its URL from the index's JSON
page (``UV_INDEX_URL``/``UV_DEFAULT_INDEX``, else PyPI). The text is deterministic: packages
and files are sorted and nothing time-dependent is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .lock import DistFile, LockedEnvironment, LockedPackage

__all__ = [
    "CREATED_BY",
    "LOCK_VERSION",
    "PylockFile",
    "PylockPackage",
    "build_pylock",
    "pylock_filename",
]

LOCK_VERSION = "1.0"
CREATED_BY = "envknit"


def pylock_filename(env: str) -> str:
    """``pylock.toml`` for the ``default`` environment, ``pylock.<env>.toml`` otherwise."""
    return "pylock.toml" if env == "default" else f"pylock.{env}.toml"


@dataclass(frozen=True, kw_only=True, slots=True)
class PylockFile:
    """One ``[packages.sdist]`` or ``[[packages.wheels]]`` entry."""

    name: str
    sha256: str
    url: str | None = None
    path: str | None = None
    size: int | None = None

    def to_toml(self) -> str:
        fields = [f"name = {_s(self.name)}"]
        if self.url is not None:
            fields.append(f"url = {_s(self.url)}")
        if self.path is not None:
            fields.append(f"path = {_s(self.path)}")
        if self.size is not None:
            fields.append(f"size = {self.size}")
        fields.append(f"hashes = {{sha256 = {_s(self.sha256)}}}")
        return "{" + ", ".join(fields) + "}"


@dataclass(frozen=True, kw_only=True, slots=True)
class PylockPackage:
    """One ``[[packages]]`` entry: a locked distribution and its files."""

    name: str
    version: str
    dependencies: tuple[str, ...] = ()
    index: str | None = None
    sdist: PylockFile | None = None
    wheels: tuple[PylockFile, ...] = ()
    dev: bool = False

    def to_toml(self) -> str:
        lines = ["[[packages]]", f"name = {_s(self.name)}", f"version = {_s(self.version)}"]
        if self.dependencies:
            deps = ", ".join(f"{{name = {_s(d)}}}" for d in self.dependencies)
            lines.append(f"dependencies = [{deps}]")
        if self.index is not None:
            lines.append(f"index = {_s(self.index)}")
        if self.sdist is not None:
            lines.append(f"sdist = {self.sdist.to_toml()}")
        if self.wheels:
            lines.append("wheels = [")
            lines.extend(f"    {w.to_toml()}," for w in self.wheels)
            lines.append("]")
        lines.append(f"tool.envknit.dev = {'true' if self.dev else 'false'}")
        return "\n".join(lines) + "\n"


def _s(text: str) -> str:
    # a JSON string without \u escapes above ASCII is a valid TOML basic string
    return json.dumps(text, ensure_ascii=False)


def _requires_python(version: str) -> str:
    return f"=={version}.*" if version.count(".") == 1 else f"=={version}"


def _locate(
    pkg: LockedPackage,
    dist: DistFile,
    folders: Sequence[Path],
    base_dir: Path,
    index_url: Callable[[str, str], str],
) -> tuple[PylockFile, bool]:
    """The file's entry, and whether its location came from the index."""
    for folder in folders:
        candidate = folder / dist.name
        if candidate.is_file():
            try:
                rel = os.path.relpath(candidate.resolve(), base_dir.resolve())
            except ValueError:  # another drive (Windows): no relative path exists
                rel = str(candidate.resolve())
            return PylockFile(
                name=dist.name, sha256=dist.sha256, path=Path(rel).as_posix(),
                size=candidate.stat().st_size,
            ), False
    return PylockFile(name=dist.name, sha256=dist.sha256, url=index_url(pkg.name, dist.name)), True


def build_pylock(
    env: LockedEnvironment,
    *,
    base_dir: Path,
    folders: Sequence[Path] = (),
    include_dev: bool = True,
) -> str:
    """The PEP 751 text of ``env``; local paths are written relative to ``base_dir``."""
    from . import wheelhouse

    all_folders = [*folders, *wheelhouse.find_links_folders()]
    packages = []
    for pkg in env.selected(include_dev=include_dev):
        sdist: PylockFile | None = None
        wheels = []
        from_index = False
        for dist in sorted(pkg.files, key=lambda d: d.name):
            entry, remote = _locate(pkg, dist, all_folders, base_dir, wheelhouse.index_file_url)
            from_index |= remote
            if dist.name.endswith(".whl"):
                wheels.append(entry)
            elif sdist is None:  # PEP 751 has one sdist per package: the first by name
                sdist = entry
        packages.append(PylockPackage(
            name=pkg.name,
            version=pkg.version,
            dependencies=tuple(sorted(pkg.dependencies)),
            index=wheelhouse.index_url() if from_index else None,
            sdist=sdist,
            wheels=tuple(wheels),
            dev=pkg.dev,
        ))
    head = (
        f"lock-version = {_s(LOCK_VERSION)}\n"
        f"requires-python = {_s(_requires_python(env.python_version))}\n"
        f"created-by = {_s(CREATED_BY)}\n"
    )
    if not packages:
        return head + "packages = []\n"
    return head + "".join("\n" + p.to_toml() for p in packages)
