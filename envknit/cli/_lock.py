"""``envknit lock``: resolve envknit.yaml's environments with uv, write envknit.lock.yaml.

The command is mostly waiting for uv, so uv starts first: once envknit.yaml's environments
are known (``_configcache``: an unchanged file needs no YAML parser and no validation), their
Pythons and uv found, every environment's compiles start (``_uvlock``), and only then does the
rest load (uv's output parsers, the lock writer; for ``--env``, the lock being kept) while uv
resolves. The lock is written from uv's answer as data (``_lockdata``), the same bytes as the
lock model writes. ``typing``, ``dataclasses``, ``pathlib``, ``subprocess``, ``json`` and
PyYAML stay unloaded on that path (tests/test_import_budget.py).
"""

from __future__ import annotations

import os
import sys

from .._where import find_config as _find_config, home as _home
from ..errors import ConfigError, EnvknitError, LockError, UnknownEnvironmentError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from .._configcache import CachedEnv

__all__ = ["cmd_lock"]

_LOCK_FILENAME = "envknit.lock.yaml"  # envknit.lock.LOCK_FILENAME (tests/test_cli_lock.py)


def _environments(cache: str) -> tuple[str, list[CachedEnv]]:
    """envknit.yaml's path and environments: cached, or read as usual (which caches them)."""
    from .. import _configcache

    path = _find_config()
    source = _configcache.read_source(path) if path is not None else None
    if path is not None and source is not None:
        envs = _configcache.load(cache, path, source)
        if envs is not None:
            return path, envs
    from pathlib import Path

    from ..config import config_hash, load_config

    config = load_config(path, cache_dir=Path(cache))
    return str(config.path), [
        (e.name, e.python_version, e.node_version, e.packages, e.dev_packages, config_hash(e))
        for e in config.environments.values()
    ]


def _base(lock_path: str) -> dict[str, object]:
    """The environments of the lock that ``--env`` keeps (as data), or LockError."""
    from ..lock import Lock, load_lock

    try:
        base = load_lock(lock_path)
    except LockError as exc:
        if os.path.exists(lock_path):
            raise LockError(
                f"{exc} (--env keeps the other environments of the lock, so it must be "
                "readable; run 'envknit lock' without --env to re-create it)"
            ) from None
        base = Lock()
    environments = base.to_dict()["environments"]
    assert isinstance(environments, dict)
    return environments


def _uv_options(args: argparse.Namespace) -> list[str]:
    """``cli._common.uv_options(args).args()`` on strings; a missing folder is an error."""
    out: list[str] = []
    for link in args.find_links or ():
        folder = os.path.expanduser(link)
        if "://" not in link and not os.path.isdir(folder):
            raise EnvknitError(f"--find-links {link!r}: no such directory")
        out += ["--find-links", link if "://" in link else os.path.realpath(folder)]
    for flag, on in (("--no-index", args.no_index), ("--offline", args.offline),
                     ("--no-build", args.no_build)):
        if on:
            out.append(flag)
    return out


def _python(version: str) -> str:
    """``pythons.find_python(version)``: the running interpreter without importing it."""
    running = sys.version_info
    if version in (f"{running[0]}.{running[1]}", f"{running[0]}.{running[1]}.{running[2]}"):
        return sys.executable
    from ..pythons import find_python

    return str(find_python(version))


def cmd_lock(args: argparse.Namespace) -> int:
    cache = os.path.join(_home(), "cache")
    config_path, envs = _environments(cache)
    lock_path = os.path.join(os.path.dirname(config_path), _LOCK_FILENAME)
    keep = args.env is not None
    if keep:
        targets = [e for e in envs if e[0] == args.env]
        if not targets:
            raise UnknownEnvironmentError(args.env, sorted(e[0] for e in envs),
                                          source=config_path)
    else:
        targets = envs
    if not targets:
        raise ConfigError("no environments defined; add one with 'envknit add REQ'",
                          path=config_path)
    try:
        options = _uv_options(args)
    except EnvknitError:
        if keep:
            _base(lock_path)  # a lock that cannot be kept is said first, as it always was
        raise
    from .. import _uvlock

    jobs = []
    for name, python_version, _node, packages, dev_packages, _digest in targets:
        version = python_version or "{}.{}".format(*sys.version_info[:2])
        job = _uvlock.Job(name, packages, dev_packages, "", version)
        try:
            job.python = _python(version)
        except EnvknitError as exc:  # said when this environment's turn comes, as before
            job.error = exc
        jobs.append(job)
    uv = _uvlock.find_uv(cache)
    started = _uvlock.start(jobs, uv, options, no_build=args.no_build, cache_dir=cache)
    try:
        # while uv resolves: the parsers and the writer load, the kept environments are read
        from .. import _lockdata, _lockyaml, _uv_output  # noqa: F401 (loaded now, used soon)
        from .._atomic import atomic_write_text

        environments = _base(lock_path) if keep else {}  # its errors first, as always
        for env in targets:
            print(f"resolving {env[0]} ...", file=sys.stderr)
        _uvlock.finish(started)
    except BaseException:  # whatever stopped us (an error, ^C): no uv is left running
        _uvlock.abandon(jobs)
        raise
    for job in jobs:  # the first environment's error, in envknit.yaml's order
        if job.error is not None:
            raise job.error
    for job, (name, _py, node, packages, dev_packages, digest) in zip(jobs, targets, strict=True):
        environments[name] = _lockdata.environment_data(
            python_version=job.python_version, node_version=node, config_hash=digest,
            requirements=(*packages, *dev_packages), resolved=job.result)
    text = _lockyaml.lock_text(_lockdata.lock_data(environments, _uvlock.uv_version(cache)))
    atomic_write_text(lock_path, text)
    _uvlock.remember(started)  # each target's usable files: the next lock asks uv once
    for job in jobs:
        print(f"locked {job.name}: {len(job.result)} package(s) for Python "
              f"{job.python_version}")
        sdist_only = [(n, v) for n, v, files, _p, _m in job.result
                      if not any(f.endswith(".whl") for f in files)]
        if sdist_only:
            names = ", ".join(f"{n} {v}" for n, v in sdist_only)
            print(f"note: {job.name}: no wheel for Python {job.python_version} on this "
                  f"platform: {names} (built from source by 'envknit install'; "
                  "'envknit lock --no-build' refuses source builds)", file=sys.stderr)
    print(f"wrote {lock_path}")
    return 0
