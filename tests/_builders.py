"""Fixture builders: packages, wheels, store entries and locks made on the fly in tmp_path."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from envknit.lock import DistFile, Lock, LockedEnvironment, LockedPackage, save_lock
from envknit.store.layout import ENTRY_FILE, ENTRY_FORMAT, entry_dir

__all__ = ["build_wheel", "make_store_entry", "package_files", "write_lock"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_files(
    name: str, version: str, modules: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Files of a tiny importable package ``name`` whose ``__version__`` is ``version``.

    ``modules`` maps extra relative paths (inside the package) to source text.
    """
    files = {f"{name}/__init__.py": f"__version__ = {version!r}\n"}
    for rel, text in (modules or {}).items():
        files[f"{name}/{rel}"] = text
    return files


def _dist_info(
    dist: str, version: str, requires: Sequence[str], top_level: Sequence[str], tag: str
) -> dict[str, str]:
    di = f"{dist.replace('-', '_')}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    return {
        f"{di}/METADATA": "\n".join(meta) + "\n",
        f"{di}/WHEEL": f"Wheel-Version: 1.0\nGenerator: envknit-tests\nRoot-Is-Purelib: "
        f"{'true' if tag.endswith('any') else 'false'}\nTag: {tag}\n",
        f"{di}/top_level.txt": "".join(f"{t}\n" for t in top_level),
    }


def build_wheel(
    dest: Path,
    dist: str,
    version: str,
    files: Mapping[str, str | bytes],
    *,
    requires: Sequence[str] = (),
    tag: str = "py3-none-any",
) -> Path:
    """Write a valid wheel (METADATA, WHEEL, RECORD with hashes) into ``dest`` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    top = sorted({p.split("/")[0].removesuffix(".py") for p in files})
    contents: dict[str, bytes] = {
        k: v.encode() if isinstance(v, str) else v for k, v in files.items()
    }
    for k, v in _dist_info(dist, version, requires, top, tag).items():
        contents[k] = v.encode()
    di = f"{dist.replace('-', '_')}-{version}.dist-info"
    record_lines = []
    for k, v in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=").decode()
        record_lines.append(f"{k},sha256={digest},{len(v)}")
    record_lines.append(f"{di}/RECORD,,")
    contents[f"{di}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    wheel = dest / f"{dist.replace('-', '_')}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for k in sorted(contents):
            zf.writestr(k, contents[k])
    return wheel


def make_store_entry(
    home: Path,
    dist: str,
    version: str,
    files: Mapping[str, str | bytes] | None = None,
    *,
    dependencies: Sequence[str] = (),
    tag: str = "py3-none-any",
    dev: bool = False,
) -> LockedPackage:
    """Create a complete store entry for ``dist==version`` and return its LockedPackage.

    ``files`` default to a package named like the distribution with ``__version__`` set.
    The entry looks like what ``envknit install`` produces: site/ with a dist-info (RECORD
    included), and ENTRY.json with a per-file manifest.
    """
    module = dist.replace("-", "_")
    contents = dict(files if files is not None else package_files(module, version))
    top = sorted({p.split("/")[0].removesuffix(".py") for p in contents})
    blobs = {k: v.encode() if isinstance(v, str) else v for k, v in contents.items()}
    blobs.update({k: v.encode() for k, v in _dist_info(dist, version, (), top, tag).items()})
    di = f"{module}-{version}.dist-info"
    record = [
        f"{k},sha256={base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b'=').decode()},{len(v)}"
        for k, v in blobs.items()
    ]
    record.append(f"{di}/RECORD,,")
    blobs[f"{di}/RECORD"] = ("\n".join(record) + "\n").encode()
    filename = f"{module}-{version}-{tag}.whl"
    sha = _sha256(f"{dist}=={version} {tag}".encode())
    root = entry_dir(dist, version, sha, home)
    manifest = {}
    for rel, data in blobs.items():
        target = root / "site" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        manifest[f"site/{rel}"] = _sha256(data)
    meta = {
        "format": ENTRY_FORMAT,
        "name": dist.lower().replace("_", "-"),
        "version": version,
        "sha256": sha,
        "filename": filename,
        "tags": [tag],
        "python": "{}.{}".format(*sys.version_info[:2]),
        "files": dict(sorted(manifest.items())),
    }
    (root / ENTRY_FILE).write_text(json.dumps(meta, indent=1))
    return LockedPackage(
        name=meta["name"],
        version=version,
        dev=dev,
        dependencies=tuple(dependencies),
        files=(DistFile(name=filename, sha256=sha),),
    )


def write_lock(
    path: Path,
    environments: Mapping[str, Sequence[LockedPackage]],
    *,
    python_version: str | None = None,
) -> Path:
    """Write a lock with one environment per key of ``environments``; return its path."""
    py = python_version or "{}.{}".format(*sys.version_info[:2])
    lock = Lock(
        environments={
            name: LockedEnvironment(name=name, python_version=py, packages=tuple(pkgs))
            for name, pkgs in environments.items()
        },
        resolver_version="test",
    )
    save_lock(lock, path)
    return path
