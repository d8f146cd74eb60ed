"""Locking: resolving environments of envknit.yaml with uv into ``envknit.lock.yaml`` form."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

from . import _lockdata, _uv
from .config import EnvironmentConfig, config_hash
from .errors import ResolverError
from .lock import DistFile, Lock, LockedEnvironment, LockedPackage
from .names import python_tuple
from .pythons import find_python

__all__ = ["lock_environment", "lock_environments", "needs_build"]


def lock_environment(
    env: EnvironmentConfig, options: _uv.UvOptions | None = None
) -> LockedEnvironment:
    """Resolve one environment with uv into its locked form (dev-only packages marked)."""
    python_version = env.python_version or "{}.{}".format(*python_tuple(None))
    python = find_python(python_version)
    try:
        resolved = _uv.compile_environment(
            env.packages, env.dev_packages, python=python, python_version=python_version,
            options=options,
        )
    except ResolverError as exc:
        raise ResolverError(f"{env.name}: {exc}") from None
    graph = _lockdata.packages(
        [(r.name, r.version, dict(r.files), r.required_by, r.main_requirement) for r in resolved]
    )
    packages = tuple(
        LockedPackage(name=name, version=version, dev=dev, dependencies=deps,
                      files=tuple(DistFile(name=f, sha256=h) for f, h in files))
        for name, version, dev, deps, files in graph
    )
    return LockedEnvironment(
        name=env.name,
        python_version=python_version,
        packages=packages,
        requirements=(*env.packages, *env.dev_packages),
        config_hash=config_hash(env),
        node_version=env.node_version or "",
    )


def lock_environments(
    envs: Iterable[EnvironmentConfig],
    *,
    base: Lock | None = None,
    progress: Callable[[str], None] | None = None,
    options: _uv.UvOptions | None = None,
    cache_dir: Path | None = None,
) -> Lock:
    """Lock ``envs``; the other environments of ``base`` (if given) are kept as they are.

    Independent environments resolve at once. ``cache_dir``: where uv's version may be
    remembered (the CLI passes ``$ENVKNIT_HOME/cache``), so that a lock need not ask uv for it.
    """
    say = progress or (lambda _msg: None)
    todo = list(envs)
    for env in todo:
        say(f"resolving {env.name} ...")
    if len(todo) > 1:
        # environments are independent: uv resolves them at once (each resolution is uv
        # processes; the threads only wait for them)
        from concurrent.futures import ThreadPoolExecutor

        # found once, here: on 3.10 the first sysconfig look-up (uv.find_uv_bin) is not safe
        # to make from two threads at once (one of them may read None)
        _uv.uv_bin()
        with ThreadPoolExecutor(max_workers=min(len(todo), 8)) as pool:
            futures = [pool.submit(lock_environment, env, options) for env in todo]
        locked = [f.result() for f in futures]  # the first environment's error, as before
    else:
        locked = [lock_environment(env, options) for env in todo]
    lock = (base or Lock()).with_environments(locked)
    return dataclasses.replace(lock, resolver_version=_uv.uv_version(cache_dir=cache_dir))


def needs_build(env: LockedEnvironment) -> list[LockedPackage]:
    """The packages of ``env`` locked without a wheel: only an sdist fits its Python here."""
    return [p for p in env.packages if not any(f.name.endswith(".whl") for f in p.files)]
