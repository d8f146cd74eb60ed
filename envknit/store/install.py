"""Installing locked packages into the store: one entry per file, built aside, renamed in."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .. import _uv
from ..errors import StoreError
from ..lock import DistFile, LockedEnvironment, LockedPackage
from ._locking import build_dir, clean_stale_builds, entry_lock
from .layout import ENTRY_FILE, ENTRY_FORMAT, KEY_LENGTH, Entry, entry_dir, find_entry, read_entry

__all__ = ["InstallResult", "choose_file", "install_environment", "install_package", "manifest"]

_ENV_SHEBANG = "#!/usr/bin/env python\n"


@dataclass(frozen=True, kw_only=True, slots=True)
class InstallResult:
    """What an install did: entries it built and entries it found already complete."""

    installed: tuple[Entry, ...]
    reused: tuple[Entry, ...]


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


def _finish_build(tmp: Path, pkg: LockedPackage, dist: DistFile, python: tuple[int, int]) -> None:
    """Turn uv's ``--target`` output into the entry layout, then write ENTRY.json (last)."""
    site = tmp / "site"
    (site / ".lock").unlink(missing_ok=True)
    scripts = site / "bin"
    if scripts.is_dir():
        os.rename(scripts, tmp / "bin")
        for script in (tmp / "bin").iterdir():
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
    with open(tmp / ENTRY_FILE, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())


def install_package(
    pkg: LockedPackage, *, python_exe: Path, python: tuple[int, int], home: Path
) -> tuple[Entry, bool]:
    """Make sure the entry of ``pkg`` for ``python`` exists; return it and whether it was built."""
    dist = choose_file(pkg, python)
    final = entry_dir(pkg.name, pkg.version, dist.sha256, home)
    with entry_lock(home, pkg.name, pkg.version, dist.sha256[:KEY_LENGTH]):
        existing = read_entry(final)
        if existing is not None and existing.sha256 == dist.sha256:
            return existing, False
        with build_dir(home) as tmp:
            _uv.install_pinned(pkg.name, pkg.version, dist.sha256, python=python_exe,
                               target=tmp / "site")
            _finish_build(tmp, pkg, dist, python)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                # an unreadable or mismatched entry: move it aside (atomically) and drop it
                with build_dir(home) as trash:
                    os.rename(final, trash / "old")
                    shutil.rmtree(trash / "old", ignore_errors=True)
            os.rename(tmp, final)
        entry = read_entry(final)
    if entry is None:
        raise StoreError(f"the entry of {pkg.name}=={pkg.version} at {final} is unreadable")
    return entry, True


def install_environment(
    env: LockedEnvironment,
    *,
    python_exe: Path,
    python: tuple[int, int],
    home: Path,
    include_dev: bool = True,
    jobs: int = 4,
    progress: Callable[[str], None] | None = None,
) -> InstallResult:
    """Install every package of ``env`` missing from the store, ``jobs`` at a time."""
    clean_stale_builds(home)
    say = progress or (lambda _msg: None)
    todo: list[LockedPackage] = []
    reused: list[Entry] = []
    for pkg in env.selected(include_dev=include_dev):
        found = find_entry(pkg.name, pkg.version, pkg.hashes, python, home)
        if found is None:
            todo.append(pkg)
        else:
            reused.append(found)
    installed: list[Entry] = []
    if todo:
        total = len(todo)

        def one(pkg: LockedPackage) -> tuple[Entry, bool]:
            return install_package(pkg, python_exe=python_exe, python=python, home=home)

        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, total))) as pool:
            futures = {pool.submit(one, pkg): pkg for pkg in todo}
            for done, fut in enumerate(as_completed(futures), 1):
                pkg = futures[fut]
                exc = fut.exception()
                if exc is not None:
                    errors.append(exc)
                    say(f"[{done}/{total}] FAILED {pkg.name} {pkg.version}")
                    continue
                entry, built = fut.result()
                (installed if built else reused).append(entry)
                verb = "installed" if built else "found"
                say(f"[{done}/{total}] {verb} {entry.name} {entry.version}")
        if errors:
            # the other packages are complete entries already; report the first failure
            raise errors[0]
    return InstallResult(installed=tuple(installed), reused=tuple(_unique(reused)))


def _unique(entries: Iterable[Entry]) -> list[Entry]:
    seen: set[Path] = set()
    out = []
    for e in entries:
        if e.path not in seen:
            seen.add(e.path)
            out.append(e)
    return out
