"""The lock's own wheel files on disk, hash-checked: from a cache, local folders, or the index.

uv's cache keeps unpacked wheels, not the ``.whl`` archives, so shipping the exact locked files
(Ray's air-gapped mode) needs them kept somewhere. They are looked up, in order, in
``$ENVKNIT_HOME/wheels/<sha256>/``, the folders the caller names, and the folders in
``UV_FIND_LINKS``; failing that they are downloaded once from the index (``UV_INDEX_URL``,
``UV_DEFAULT_INDEX``, else PyPI) through its JSON simple API (PEP 691). Every file is checked
against the lock's sha256 before it is used or kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from .errors import IntegrityError, StoreError
from .lock import DistFile, LockedPackage
from .store.layout import envknit_home

__all__ = ["find_links_folders", "index_file_url", "index_url", "locked_file", "wheel_cache"]

_JSON = "application/vnd.pypi.simple.v1+json"


def wheel_cache(home: Path | None = None) -> Path:
    """Where fetched wheel files are kept, one folder per sha256."""
    return (home or envknit_home()) / "wheels"


def find_links_folders() -> list[Path]:
    """Local folders named in ``UV_FIND_LINKS`` (URLs are left to uv)."""
    raw = os.environ.get("UV_FIND_LINKS", "")
    folders = []
    for item in raw.replace(",", " ").split():
        local = item
        if item.startswith("file://"):
            local = urllib.parse.unquote(urllib.parse.urlsplit(item).path)
        if "://" not in local and Path(local).is_dir():
            folders.append(Path(local))
    return folders


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def index_url() -> str:
    """The index uv would use: ``UV_INDEX_URL``, ``UV_DEFAULT_INDEX``, else PyPI."""
    for var in ("UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        if value := os.environ.get(var, "").strip():
            return value.rstrip("/")
    return "https://pypi.org/simple"


@lru_cache(maxsize=64)
def _index_files(page: str) -> tuple[tuple[str, str], ...]:
    """``(filename, absolute url)`` of every file an index page lists (fetched once)."""
    request = urllib.request.Request(page, headers={"Accept": _JSON})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            data = json.load(resp)
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"the index page {page} failed ({exc}); put the files in a folder named by "
            "UV_FIND_LINKS (or pass that folder) instead"
        ) from None
    items = data.get("files", []) if isinstance(data, dict) else []
    return tuple(
        (str(item["filename"]), urllib.parse.urljoin(page, str(item["url"])).split("#", 1)[0])
        for item in items
        if isinstance(item, dict) and "filename" in item and "url" in item
    )


def index_file_url(name: str, filename: str) -> str:
    """The URL of ``filename`` (a distribution of ``name``) on the index (PEP 691 JSON page)."""
    index = index_url()
    for found, url in _index_files(f"{index}/{name}/"):
        if found == filename:
            return url
    raise StoreError(f"the index {index} does not list {filename} (locked for {name})")


def _adopt(source: Path, dist: DistFile, cache: Path) -> Path:
    """Copy ``source`` into the cache if its hash matches; the cached path."""
    found = _sha256(source)
    if found != dist.sha256:
        raise IntegrityError(
            f"{source}: sha256 {found} does not match the lock's {dist.sha256} for {dist.name}"
        )
    final = cache / dist.sha256 / dist.name
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=final.parent, delete=False) as tmp, \
            source.open("rb") as src:
        shutil.copyfileobj(src, tmp)
    os.replace(tmp.name, final)
    return final


def locked_file(
    pkg: LockedPackage,
    dist: DistFile,
    *,
    folders: Sequence[Path] = (),
    home: Path | None = None,
) -> Path:
    """A local path of the locked file ``dist`` whose sha256 matches the lock (fetched once)."""
    cache = wheel_cache(home)
    cached = cache / dist.sha256 / dist.name
    if cached.is_file() and _sha256(cached) == dist.sha256:
        return cached
    candidates: Iterable[Path] = (Path(f) / dist.name for f in (*folders, *find_links_folders()))
    for candidate in candidates:
        if candidate.is_file():
            return _adopt(candidate, dist, cache)
    url = index_file_url(pkg.name, dist.name)
    with tempfile.TemporaryDirectory(prefix="envknit-wheel-") as tmp:
        target = Path(tmp) / dist.name
        try:
            with urllib.request.urlopen(url, timeout=300) as resp, target.open("wb") as out:
                shutil.copyfileobj(resp, out)
        except OSError as exc:
            raise StoreError(f"cannot download {dist.name} from {url}: {exc}") from None
        return _adopt(target, dist, cache)
