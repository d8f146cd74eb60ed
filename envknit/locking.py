"""Locking: resolving environments of envknit.yaml with uv into ``envknit.lock.yaml`` form."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

from . import _uv
from .config import EnvironmentConfig, config_hash
from .errors import ResolverError
from .lock import DistFile, Lock, LockedEnvironment, LockedPackage
from .names import python_tuple
from .pythons import find_python

__all__ = ["lock_environment", "lock_environments", "needs_build"]


def _dev_only(resolved: list[_uv.ResolvedPackage], children: dict[str, set[str]]) -> set[str]:
    """Packages not reachable from the environment's ``packages`` (only ``dev_packages``)."""
    reachable: set[str] = set()
    stack = [r.name for r in resolved if r.main_requirement]
    while stack:
        name = stack.pop()
        if name not in reachable:
            reachable.add(name)
            stack.extend(children.get(name, ()))
    return {r.name for r in resolved} - reachable


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
    children: dict[str, set[str]] = {r.name: set() for r in resolved}
    for r in resolved:
        for parent in r.required_by:
            if parent in children:
                children[parent].add(r.name)
    dev = _dev_only(resolved, children)
    packages = tuple(
        LockedPackage(
            name=r.name,
            version=r.version,
            dev=r.name in dev,
            dependencies=tuple(sorted(children[r.name])),
            files=tuple(DistFile(name=f, sha256=h) for f, h in sorted(r.files.items())),
        )
        for r in resolved
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
