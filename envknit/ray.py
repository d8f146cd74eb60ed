"""Ray runtime environments that reproduce a locked environment exactly, on any node.

Needs the optional extra ``ray`` (``pip install './envknit[ray]'`` from a clone); this is the
only envknit module that imports ``ray``.

::

    import ray, envknit.ray as ekray
    task.options(runtime_env=ekray.runtime_env("envknit.lock.yaml", env="old")).remote()

Two modes (see docs/cluster.md for why these Ray fields):

* index (default): Ray's ``uv`` field with every locked pin and its sha256 hashes, installed
  with ``--no-deps --require-hashes --only-binary :all:``, so each node installs exactly the
  locked files and resolves nothing.
* air-gapped: the lock's own wheel files, hash-checked on this machine, shipped with the job
  through ``py_modules``; no node talks to an index.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from .errors import ClusterMismatchError, UnsupportedPlatformError
from .lock import DistFile, LockedEnvironment, LockedPackage, load_lock
from .store.layout import tag_ranks

__all__ = ["MIN_RAY_VERSION", "runtime_env"]

#: the first Ray whose ``uv`` field takes ``uv_pip_install_options`` (tested with 2.60)
MIN_RAY_VERSION = "2.44"

_UV_OPTIONS = ("--no-deps", "--require-hashes", "--only-binary", ":all:")


def _check_ray() -> None:
    try:
        import ray
    except ImportError:
        raise UnsupportedPlatformError(
            "envknit.ray needs Ray: install envknit with its 'ray' extra, e.g. "
            "pip install './envknit[ray]' from a clone (README, Install)"
        ) from None
    found = str(getattr(ray, "__version__", "0"))
    if Version(found) < Version(MIN_RAY_VERSION):
        raise UnsupportedPlatformError(
            f"envknit.ray needs Ray >= {MIN_RAY_VERSION} (its 'uv' runtime_env field with "
            f"install options); this is Ray {found}: install envknit with its 'ray' extra, e.g. "
            "pip install './envknit[ray]' from a clone (README, Install)"
        )


def _ship(wheels: list[Path]) -> list[str]:
    """The wheels as ``py_modules`` entries: uploaded to the connected cluster, else paths.

    Ray accepts local paths in ``py_modules`` only in the job's own runtime_env
    (``ray.init(runtime_env=...)``), which it uploads itself; a task's or actor's runtime_env
    needs URIs. So when Ray is initialized the wheels are put in the cluster's GCS package
    store under the URI Ray would give them (``gcs://<wheel file name>``), through Ray's
    private ``ray._private.runtime_env.packaging`` helpers (the ones ``ray.init`` uses;
    checked with Ray 2.44-2.60).
    """
    import ray

    if not ray.is_initialized():
        return [str(w) for w in wheels]
    from ray._private.runtime_env.packaging import (
        get_uri_for_package,
        package_exists,
        upload_package_to_gcs,
    )

    uris = []
    for wheel in wheels:
        uri = str(get_uri_for_package(wheel))
        if not package_exists(uri):
            upload_package_to_gcs(uri, wheel.read_bytes())
        uris.append(uri)
    return uris


def _cluster_python(python: str | None) -> tuple[int, int]:
    if python is None:
        # Ray refuses a driver whose Python minor differs from the cluster's
        return sys.version_info[:2]
    major, _, rest = python.partition(".")
    return int(major), int(rest.split(".")[0])


def _best_wheel(
    pkg: LockedPackage, env: str, python: tuple[int, int]
) -> DistFile:
    ranks = tag_ranks(python)
    best: tuple[int, str, DistFile] | None = None
    for dist in pkg.files:
        try:
            _, _, _, tags = parse_wheel_filename(dist.name)
        except InvalidWheelFilename:
            continue  # an sdist: never built on a node
        rank = min((ranks[str(t)] for t in tags if str(t) in ranks), default=None)
        if rank is not None and (best is None or (rank, dist.name) < best[:2]):
            best = (rank, dist.name, dist)
    if best is None:
        files = ", ".join(sorted(d.name for d in pkg.files)) or "none"
        raise ClusterMismatchError(
            env,
            f"{pkg.name}=={pkg.version} was locked without a wheel for the cluster's platform "
            f"(CPython {python[0]}.{python[1]}, this platform; locked files: {files})",
            "re-run 'envknit lock' on a machine of the cluster's platform",
        )
    return best[2]


def _checked_environment(
    lock_path: str | os.PathLike[str], env: str, python: tuple[int, int], include_dev: bool
) -> tuple[LockedEnvironment, list[tuple[LockedPackage, DistFile]]]:
    locked = load_lock(lock_path).environment(env)
    wanted = tuple(int(p) for p in locked.python_version.split(".")[:2])
    if wanted != python:
        raise ClusterMismatchError(
            env,
            f"it is locked for Python {locked.python_version}, the cluster runs Python "
            f"{python[0]}.{python[1]}",
            f'set python_version: "{python[0]}.{python[1]}" for it in envknit.yaml and run '
            f"'envknit lock --env {env}', or run the job on a Python "
            f"{locked.python_version} cluster",
        )
    chosen = [(p, _best_wheel(p, env, python)) for p in locked.selected(include_dev=include_dev)]
    return locked, chosen


def runtime_env(
    lock_path: str | os.PathLike[str] = "envknit.lock.yaml",
    env: str = "default",
    *,
    airgapped: bool = False,
    include_dev: bool = False,
    python: str | None = None,
    wheelhouse: Sequence[str | os.PathLike[str]] = (),
) -> dict[str, Any]:
    """A Ray ``runtime_env`` dict that runs tasks and actors in exactly the locked ``env``.

    ``python`` is the cluster's Python (``"3.12"``; default: this driver's, which Ray requires
    to match the cluster's). With ``airgapped=True`` the wheel files themselves are shipped:
    they are taken from ``$ENVKNIT_HOME/wheels``, the ``wheelhouse`` folders or
    ``UV_FIND_LINKS``, else downloaded once here, and always checked against the lock's sha256.

    Raises ``ClusterMismatchError`` when the environment is locked for another Python, or a
    package has no locked wheel for the cluster's platform.
    """
    _check_ray()
    cluster = _cluster_python(python)
    _, chosen = _checked_environment(lock_path, env, cluster, include_dev)
    if airgapped:
        from .wheelhouse import locked_file

        folders = [Path(w) for w in wheelhouse]
        return {"py_modules": _ship([locked_file(p, d, folders=folders) for p, d in chosen])}
    packages = [
        f"{p.name}=={p.version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(p.hashes))
        for p, _ in chosen
    ]
    return {"uv": {"packages": packages, "uv_pip_install_options": list(_UV_OPTIONS)}}
