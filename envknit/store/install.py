"""Installing locked packages into the store: one entry per file, built aside, renamed in."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from .. import _uv
from ..errors import StoreError
from ..lock import DistFile, LockedEnvironment, LockedPackage
from ._locking import build_dir, clean_stale_builds, entry_lock
from .layout import ENTRY_FILE, ENTRY_FORMAT, KEY_LENGTH, Entry, entry_dir, find_entry, read_entry

__all__ = ["InstallResult", "choose_file", "install_environment", "manifest"]

_ENV_SHEBANG = "#!/usr/bin/env python\n"


@dataclass(frozen=True, kw_only=True, slots=True)
class InstallResult:
    """What an install did: entries it built and entries it found already complete."""

    installed: tuple[Entry, ...]
    reused: tuple[Entry, ...]


@lru_cache(maxsize=8)
def _ranked_tags(python: tuple[int, int]) -> dict[str, int]:
    ordered = [*cpython_tags(python_version=python), *compatible_tags(python_version=python)]
    ranks: dict[str, int] = {}
    for i, tag in enumerate(ordered):
        ranks.setdefault(str(tag), i)
    return ranks


def choose_file(pkg: LockedPackage, python: tuple[int, int]) -> DistFile:
    """The locked file to install for CPython ``python`` here: the best wheel, else an sdist."""
    ranks = _ranked_tags(python)
    best: tuple[int, str, DistFile] | None = None
    sdists = []
    for dist in pkg.files:
        if not dist.name.endswith(".whl"):
            sdists.append(dist)
            continue
        try:
            _, _, _, tags = parse_wheel_filename(dist.name)
        except InvalidWheelFilename:
            continue
        rank = min((ranks[str(t)] for t in tags if str(t) in ranks), default=None)
        if rank is not None and (best is None or (rank, dist.name) < best[:2]):
            best = (rank, dist.name, dist)
    if best is not None:
        return best[2]
    if sdists:
        return sorted(sdists, key=lambda d: d.name)[0]
    files = ", ".join(d.name for d in pkg.files) or "none"
    raise StoreError(
        f"no locked file of {pkg.name}=={pkg.version} fits Python {python[0]}.{python[1]} on "
        f"this platform (locked files: {files}); re-run 'envknit lock' on this platform"
    )


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(root: Path) -> dict[str, str]:
    """``{"site/rel/path": sha256}`` of every file under ``root`` (ENTRY.json and caches aside)."""
    result: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fname in filenames:
            full = Path(dirpath, fname)
            rel = full.relative_to(root).as_posix()
            if rel == ENTRY_FILE:
                continue
            result[rel] = _sha256_file(full)
    return dict(sorted(result.items()))


def _fix_script(path: Path) -> None:
    """Point a console script at ``python`` on PATH (``envknit run`` puts the env's first)."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    if data.startswith(b"#!/bin/sh\n'''exec' "):
        # uv's polyglot header for interpreter paths too long for a shebang line
        end = data.find(b"\n' '''\n")
        if end > 0:
            path.write_bytes(_ENV_SHEBANG.encode() + data[end + len(b"\n' '''\n"):])
        return
    first, sep, rest = data.partition(b"\n")
    if first.startswith(b"#!") and b"python" in first and sep:
        path.write_bytes(_ENV_SHEBANG.encode() + rest)


def _split_out(target: Path, dist_info: Path, dest: Path) -> None:
    """Move the files that ``dist_info``'s RECORD lists from uv's ``target`` into ``dest``."""
    site = dest / "site"
    with open(dist_info / "RECORD", encoding="utf-8", newline="") as fh:
        rows = [row for row in csv.reader(fh) if row]
    made: set[Path] = set()
    for row in rows:
        rel = os.path.normpath(row[0])
        if rel.startswith("..") or os.path.isabs(rel):
            raise StoreError(
                f"{dist_info.name}/RECORD lists {row[0]!r}, outside the install target; "
                "envknit only installs files that stay inside a store entry"
            )
        src = target / rel
        if not src.is_file() and not src.is_symlink():
            continue
        dst = dest / rel if rel.split(os.sep, 1)[0] == "bin" else site / rel
        if dst.parent not in made:
            dst.parent.mkdir(parents=True, exist_ok=True)
            made.add(dst.parent)
        os.rename(src, dst)
    leftovers = site / dist_info.name  # files uv wrote but did not record (kept with the dist)
    for src in sorted(dist_info.rglob("*")):
        if src.is_file():
            dst = leftovers / src.relative_to(dist_info)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, dst)


def _finish_build(tmp: Path, pkg: LockedPackage, dist: DistFile, python: tuple[int, int]) -> None:
    """Fix console scripts and RECORD for the entry layout, then write ENTRY.json (last)."""
    site = tmp / "site"
    scripts = tmp / "bin"
    if scripts.is_dir():
        for script in scripts.iterdir():
            if script.is_file():
                _fix_script(script)
        for record in site.glob("*.dist-info/RECORD"):
            lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
            fixed = ["../" + ln if ln.startswith("bin/") else ln for ln in lines]
            record.write_text("".join(fixed), encoding="utf-8")
    if dist.name.endswith(".whl"):
        tags = ["-".join(dist.name[: -len(".whl")].split("-")[-3:])]
    else:
        tags = []
        for wheel in site.glob("*.dist-info/WHEEL"):
            text = wheel.read_text(encoding="utf-8", errors="replace")
            tags += [ln.split(":", 1)[1].strip() for ln in text.splitlines()
                     if ln.startswith("Tag:")]
    meta = {
        "format": ENTRY_FORMAT,
        "name": pkg.name,
        "version": pkg.version,
        "sha256": dist.sha256,
        "filename": dist.name,
        "tags": sorted(tags),
        "python": f"{python[0]}.{python[1]}",
        "files": manifest(tmp),
    }
    # no fsync: the rename below guards against a killed process; surviving power loss would
    # need every file synced, which costs more than reinstalling after `envknit verify`
    with open(tmp / ENTRY_FILE, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1)


def _move_into_place(staging: Path, final: Path, home: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        # an unreadable or damaged-beyond-use entry: move it aside (atomically), then drop it
        with build_dir(home) as trash:
            os.rename(final, trash / "old")
            shutil.rmtree(trash / "old", ignore_errors=True)
    os.rename(staging, final)


def _dist_infos(target: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for info in target.glob("*.dist-info"):
        dist = info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        found[str(canonicalize_name(dist))] = info
    return found


def _build(
    todo: list[tuple[LockedPackage, DistFile]],
    *,
    python_exe: Path,
    python: tuple[int, int],
    home: Path,
    say: Callable[[str], None],
) -> list[Entry]:
    """One uv run installs every file of ``todo``; each is then split out into its entry."""
    built = []
    with build_dir(home) as tmp:
        target = tmp / "target"
        _uv.install_pinned([(p.name, p.version, d.sha256) for p, d in todo],
                           python=python_exe, target=target)
        infos = _dist_infos(target)
        for done, (pkg, dist) in enumerate(todo, 1):
            info = infos.get(pkg.name)
            if info is None:
                raise StoreError(f"uv installed no {pkg.name}=={pkg.version} (from {dist.name})")
            staging = tmp / "entries" / pkg.name
            _split_out(target, info, staging)
            _finish_build(staging, pkg, dist, python)
            final = entry_dir(pkg.name, pkg.version, dist.sha256, home)
            _move_into_place(staging, final, home)
            entry = read_entry(final)
            if entry is None:
                raise StoreError(f"the new entry of {pkg.name}=={pkg.version} is unreadable")
            built.append(entry)
            say(f"[{done}/{len(todo)}] installed {pkg.name} {pkg.version}")
    return built


def install_environment(
    env: LockedEnvironment,
    *,
    python_exe: Path,
    python: tuple[int, int],
    home: Path,
    include_dev: bool = True,
    progress: Callable[[str], None] | None = None,
) -> InstallResult:
    """Install every package of ``env`` missing from the store; reuse the complete ones.

    Writers of the same entry are serialised by its file lock (taken in a fixed order, so two
    installs cannot deadlock); whoever gets a lock second finds the entry complete.
    """
    clean_stale_builds(home)
    say = progress or (lambda _msg: None)
    todo: list[tuple[LockedPackage, DistFile]] = []
    reused: list[Entry] = []
    for pkg in env.selected(include_dev=include_dev):
        found = find_entry(pkg.name, pkg.version, pkg.hashes, python, home)
        if found is None:
            todo.append((pkg, choose_file(pkg, python)))
        else:
            reused.append(found)
    installed: list[Entry] = []
    if todo:
        with contextlib.ExitStack() as stack:
            for pkg, dist in sorted(todo, key=lambda t: (t[0].name, t[0].version, t[1].sha256)):
                stack.enter_context(
                    entry_lock(home, pkg.name, pkg.version, dist.sha256[:KEY_LENGTH])
                )
            still = []
            for pkg, dist in todo:
                done = read_entry(entry_dir(pkg.name, pkg.version, dist.sha256, home))
                if done is not None and done.sha256 == dist.sha256:
                    reused.append(done)  # another install finished it while we waited
                else:
                    still.append((pkg, dist))
            if still:
                say(f"installing {len(still)} package(s) with uv")
                installed = _build(still, python_exe=python_exe, python=python, home=home,
                                   say=say)
    return InstallResult(installed=tuple(installed), reused=tuple(reused))
