"""Installing locked packages into the store: one entry per file, built aside, renamed in."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import IntegrityError, ResolverError, StoreError
from ..lock import DistFile, LockedEnvironment, LockedPackage
from ..names import canonical_name
from ._locking import build_dir, clean_stale_builds, discard, entry_lock
from .layout import (
    ENTRY_FILE,
    KEY_LENGTH,
    Entry,
    entry_dir,
    find_entry,
    pure_python_fits,
    read_entry,
    tag_ranks,
)

TYPE_CHECKING = False  # typing only for the type checker; uv, RECORDs: only when installing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from .. import _uv

__all__ = ["InstallResult", "choose_file", "install_environment", "manifest", "wheel_tags"]

_ENV_SHEBANG = "#!/usr/bin/env python\n"


@dataclass(frozen=True, kw_only=True, slots=True)
class InstallResult:
    """What an install did: entries it built and entries it found already complete."""

    installed: tuple[Entry, ...]
    reused: tuple[Entry, ...]


def choose_file(pkg: LockedPackage, python: tuple[int, int]) -> DistFile:
    """The locked file to install for CPython ``python`` here: the best wheel, else an sdist."""
    wheels = [d for d in pkg.files if d.name.endswith(".whl")]
    if len(wheels) == 1 and pure_python_fits("-".join(wheels[0].name[:-4].split("-")[-3:]),
                                             python):
        return wheels[0]  # the usual pure-Python case, without packaging.tags (~8 ms)
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    ranks = tag_ranks(python)
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


def wheel_tags(filename: str) -> list[str]:
    """The tags of a wheel file name, expanded and lower-cased as ``packaging.tags.parse_tag``
    does, without importing packaging.tags (~10 ms of a cold install: logging, platform...)."""
    interpreters, abis, platforms = filename[: -len(".whl")].lower().split("-")[-3:]
    return sorted({f"{i}-{a}-{p}" for i in interpreters.split(".") for a in abis.split(".")
                   for p in platforms.split(".")})


def _sha256_file(path: str) -> str:
    # os.read on a descriptor: a Python file object (FileIO + BufferedReader) and
    # hashlib.file_digest cost as much as hashing a store entry's small files (~0.5 ms of ~1)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        h = hashlib.sha256()
        while block := os.read(fd, 1 << 20):
            h.update(block)
        return h.hexdigest()
    finally:
        os.close(fd)


def manifest(root: Path) -> dict[str, str]:
    """``{"site/rel/path": sha256}`` of every file under ``root`` (ENTRY.json and caches aside)."""
    result: dict[str, str] = {}
    skip = len(str(root)) + 1
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for fname in filenames:
            full = os.path.join(dirpath, fname)
            rel = full[skip:].replace(os.sep, "/")
            if rel != ENTRY_FILE:
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


class _ChangedInCache(IntegrityError):
    """An installed file differs from its wheel's RECORD: uv's unpacked copy was changed."""

    def __init__(self, name: str, version: str, rel: str):
        self.name = name
        self.version = version
        self.rel = rel
        super().__init__(
            f"{name}=={version}: the installed {rel} differs from its wheel's RECORD even after "
            f"uv fetched it again; remove it from uv's cache ('uv cache clean {name}') and from "
            "the index or folder it comes from, then install again"
        )


def _check_record(entry: Entry, record: list[tuple[str, str | None]]) -> None:
    """Each installed file must be what its wheel's RECORD says it is.

    uv installs from its unpacked cache, which anything that once shared its inodes (a
    virtual environment uv made with hard links, whose certifi a CA-injection step edited)
    may have changed; the manifest would bless such a file. Console scripts (``bin``) are
    rewritten on install, so they are not compared.
    """
    for rel, sha in record:
        if sha is None or rel.split(os.sep, 1)[0] == "bin":
            continue
        actual = entry.files.get("site/" + rel.replace(os.sep, "/"))
        if actual is not None and actual != sha:
            raise _ChangedInCache(entry.name, entry.version, rel)


def _split_out(target: Path, rels: list[str], shared: set[str], dest: Path) -> None:
    """Move the files ``rels`` (one distribution's RECORD) from uv's ``target`` into ``dest``.

    A top-level name (package folder, module, dist-info folder) that no other distribution of
    this install claims is moved with one rename, with whatever uv wrote there unrecorded; the
    ``shared`` ones (``bin``, namespace packages) are moved file by file.
    """
    site = dest / "site"
    dest.mkdir()
    site.mkdir()
    made = {dest, site}
    moved: set[str] = set()
    for rel in rels:
        top = rel.split(os.sep, 1)[0]
        root = dest if top == "bin" else site
        if top not in shared:
            if top not in moved and os.path.lexists(target / top):
                os.rename(target / top, root / top)
            moved.add(top)
            continue
        src = target / rel
        if not src.is_file() and not src.is_symlink():
            continue
        dst = root / rel
        if dst.parent not in made:
            dst.parent.mkdir(parents=True, exist_ok=True)
            made.add(dst.parent)
        os.rename(src, dst)


def _finish_build(
    tmp: Path, pkg: LockedPackage, dist: DistFile, python: tuple[int, int]
) -> Entry:
    """Fix console scripts and RECORD for the entry layout, then write ENTRY.json (last).

    Returns the entry as it will be once ``tmp`` is renamed into place (``path`` aside).
    """
    site = tmp / "site"
    scripts = tmp / "bin"
    if scripts.is_dir():
        for script in scripts.iterdir():
            if script.is_file():
                _fix_script(script)
        from .record import move_record_rows

        for record in site.glob("*.dist-info/RECORD"):
            move_record_rows(record, "bin", "../")  # scripts live beside site/, not in it
    if dist.name.endswith(".whl"):
        tags = wheel_tags(dist.name)
    else:
        tags = []
        for wheel in site.glob("*.dist-info/WHEEL"):
            text = wheel.read_text(encoding="utf-8", errors="replace")
            tags += [ln.split(":", 1)[1].strip() for ln in text.splitlines()
                     if ln.startswith("Tag:")]
    entry = Entry(
        path=tmp,
        name=pkg.name,
        version=pkg.version,
        sha256=dist.sha256,
        filename=dist.name,
        tags=tuple(sorted(tags)),
        python=f"{python[0]}.{python[1]}",
        files=manifest(tmp),
    )
    # no fsync: the rename below guards against a killed process; surviving power loss would
    # need every file synced, which costs more than reinstalling after `envknit verify`
    text = json.dumps(entry.to_dict(), indent=1)
    with open(tmp / ENTRY_FILE, "w", encoding="utf-8") as fh:
        fh.write(text)
    return entry


def _move_into_place(staging: Path, final: Path, home: Path) -> None:
    # <name>/ then <name>/<version>/, parent first: a cold install makes both, in two mkdirs
    # (Path.mkdir(parents=True) tries the child first, and fails, on every new name)
    try:
        for folder in (final.parent.parent, final.parent):
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder)
    except FileNotFoundError:  # no store folder yet
        final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, final)  # fails on a non-empty folder (an empty one is replaced)
    except OSError:
        if not final.exists():
            raise
        discard(home, final)  # an unreadable or damaged-beyond-use entry
        os.rename(staging, final)


def _dist_infos(target: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for info in target.glob("*.dist-info"):
        dist = info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        found[canonical_name(dist)] = info
    return found


def _build(
    todo: list[tuple[LockedPackage, DistFile]],
    *,
    python_exe: Path,
    python: tuple[int, int],
    home: Path,
    say: Callable[[str], None],
    options: _uv.UvOptions | None,
    show: TextIO | None,
) -> list[Entry]:
    """One uv run installs every file of ``todo``; each is then split out into its entry."""
    from collections import Counter

    from .. import _uv
    from .record import read_record

    built = []
    builds = [f"{p.name} {p.version}" for p, d in todo if not d.name.endswith(".whl")]
    with build_dir(home) as tmp:
        target = tmp / "target"
        seconds = _uv.install_pinned([(p.name, p.version, d.sha256) for p, d in todo],
                                     python=python_exe, target=target, options=options,
                                     builds=builds, show=show)
        if builds:
            from .._progress import elapsed

            say(f"built {', '.join(builds)} from source in {elapsed(seconds)}")
        infos = _dist_infos(target)
        records = {name: read_record(info) for name, info in infos.items()}
        claims = Counter(top for rows in records.values()
                         for top in {rel.split(os.sep, 1)[0] for rel, _ in rows})
        shared = {top for top, count in claims.items() if count > 1}
        (tmp / "entries").mkdir()
        for done, (pkg, dist) in enumerate(todo, 1):
            record = records.get(pkg.name)
            if record is None:
                raise StoreError(f"uv installed no {pkg.name}=={pkg.version} (from {dist.name})")
            staging = tmp / "entries" / pkg.name
            _split_out(target, [rel for rel, _ in record], shared, staging)
            entry = _finish_build(staging, pkg, dist, python)
            _check_record(entry, record)
            final = entry_dir(pkg.name, pkg.version, dist.sha256, home)
            _move_into_place(staging, final, home)
            built.append(dataclasses.replace(entry, path=final))
            say(f"[{done}/{len(todo)}] installed {pkg.name} {pkg.version}")
    return built


def _claim(entry: Entry, home: Path) -> bool:
    """Date a complete entry's directory now, so that a running gc keeps it.

    gc keeps the entries dated after it began (their installs may use locks it has not read).
    False if the entry is gone (a gc removed it first): the caller then installs it again.
    """
    with entry_lock(home, entry.name, entry.version, entry.sha256[:KEY_LENGTH], shared=True):
        try:
            os.utime(entry.path)  # the directory: its files stay untouched
        except FileNotFoundError:
            return False
        except OSError:
            pass  # a store we may read but not write (permissions): use it, undated
    return True


def install_environment(
    env: LockedEnvironment,
    *,
    python_exe: Path,
    python: tuple[int, int],
    home: Path,
    include_dev: bool = True,
    progress: Callable[[str], None] | None = None,
    options: _uv.UvOptions | None = None,
    show: TextIO | None = None,
) -> InstallResult:
    """Install every package of ``env`` missing from the store; reuse the complete ones.

    Writers of the same entry are serialised by its file lock (taken in a fixed order, so two
    installs cannot deadlock); whoever gets a lock second finds the entry complete. A locked
    package with no wheel for ``python`` is built from its sdist (``show``, a stream, shows the
    build while it runs), or refused with ``options.no_build``.
    """
    clean_stale_builds(home)
    say = progress or (lambda _msg: None)
    todo: list[tuple[LockedPackage, DistFile]] = []
    reused: list[Entry] = []
    for pkg in env.selected(include_dev=include_dev):
        found = find_entry(pkg.name, pkg.version, pkg.hashes, python, home)
        if found is not None and _claim(found, home):
            reused.append(found)
        else:
            todo.append((pkg, choose_file(pkg, python)))
    sdists = [f"{p.name} {p.version}" for p, d in todo if not d.name.endswith(".whl")]
    if sdists and options is not None and options.no_build:
        raise ResolverError(
            f"{env.name}: {', '.join(sdists)} {'has' if len(sdists) == 1 else 'have'} no wheel "
            f"for Python {python[0]}.{python[1]} on this platform and --no-build refuses to "
            "build from source: install without --no-build, or re-lock with "
            "'envknit lock --no-build' (it picks versions that have wheels)"
        )
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
                installed = _build_healing(still, python_exe=python_exe, python=python,
                                           home=home, say=say, options=options, show=show)
    return InstallResult(installed=tuple(installed), reused=tuple(reused))


def _build_healing(
    todo: list[tuple[LockedPackage, DistFile]],
    *,
    python_exe: Path,
    python: tuple[int, int],
    home: Path,
    say: Callable[[str], None],
    options: _uv.UvOptions | None,
    show: TextIO | None,
) -> list[Entry]:
    """``_build``; a package whose copy in uv's cache was changed is fetched again, once.

    uv checks a wheel's hash when it downloads it, not when it installs from its unpacked
    cache: removing the package from uv's cache makes uv fetch (and hash-check) it again.
    The caller holds the entry locks of ``todo``.
    """
    from .. import _uv

    built: list[Entry] = []
    cleaned: set[str] = set()
    while todo:
        try:
            built += _build(todo, python_exe=python_exe, python=python, home=home, say=say,
                            options=options, show=show)
            return built
        except _ChangedInCache as exc:
            if exc.name in cleaned:
                raise
            cleaned.add(exc.name)
            say(f"note: uv's cached copy of {exc.name} {exc.version} was changed ({exc.rel}); "
                "removing it from uv's cache and installing a fresh copy")
            _uv.clean_cache([exc.name])
        # entries completed before the failure stay; build the rest
        done = {e.sha256 for e in built}
        for pkg, dist in todo:
            entry = read_entry(entry_dir(pkg.name, pkg.version, dist.sha256, home))
            if entry is not None and entry.sha256 == dist.sha256 and dist.sha256 not in done:
                built.append(entry)
                done.add(dist.sha256)
        todo = [(p, d) for p, d in todo if d.sha256 not in done]
    return built
