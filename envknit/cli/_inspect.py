"""``envknit verify / doctor / status``: is what the lock needs in the store, intact and fresh."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .. import _uv
from ..config import config_hash
from ..errors import EnvknitError
from ..lock import Lock, LockedEnvironment
from ..names import python_tuple
from ..pythons import find_python
from ..store.layout import envknit_home, find_entry
from ..store.maintenance import leftover_builds, verify_environment
from ._common import Project, load_project

__all__ = ["cmd_doctor", "cmd_status", "cmd_verify"]


def cmd_verify(args: argparse.Namespace) -> int:
    project = load_project()
    home = envknit_home()
    bad = 0
    damaged: dict[str, str] = {}  # entry path -> distribution name
    for env in project.locked_environments(args.env):
        entries, problems = verify_environment(env, home)
        for problem in problems:
            print(f"{env.name}: {problem}")
        hit = {p.entry for p in problems if p.entry is not None}
        damaged.update((str(e.path), e.name) for e in entries if e.path in hit)
        bad += len(problems)
        state = "OK" if not problems else f"{len(problems)} problem(s)"
        print(f"{env.name}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} checked, "
              f"{state}", file=sys.stderr)
    if damaged:
        # install rebuilds a removed entry (and re-fetches a package whose copy in uv's
        # cache was changed)
        paths = " ".join(shlex.quote(p) for p in sorted(damaged))
        print(f"envknit: to repair, remove the damaged entries, then reinstall: rm -rf {paths} "
              "&& envknit install", file=sys.stderr)
    elif bad:
        print("envknit: run 'envknit install' to install what is missing", file=sys.stderr)
    return 1 if bad else 0


def _stale_reasons(project: Project, lock: Lock) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for name, env_cfg in project.config.environments.items():
        locked = lock.environments.get(name)
        if locked is None:
            reasons[name] = "not in the lock"
        elif locked.config_hash != config_hash(env_cfg):
            reasons[name] = "envknit.yaml changed since it was locked"
    for name in lock.environments:
        if name not in project.config.environments:
            reasons[name] = "in the lock but no longer in envknit.yaml"
    return reasons


def cmd_doctor(args: argparse.Namespace) -> int:
    problems = 0

    def check(ok: bool, message: str, hint: str = "") -> None:
        nonlocal problems
        problems += not ok
        print(f"[{'ok' if ok else 'FAIL'}] {message}" + (f"\n       -> {hint}" if hint and not ok
                                                           else ""))

    try:
        check(True, f"uv {_uv.uv_version()} at {_uv.uv_bin()}")
    except EnvknitError as exc:
        check(False, f"uv: {exc}", "reinstall envknit (it depends on the 'uv' package)")
    home = envknit_home()
    writable = os.access(home if home.exists() else home.parent, os.W_OK)
    check(writable, f"store at {home}", "make ENVKNIT_HOME writable or point it elsewhere")
    try:
        leftovers = leftover_builds(home)
    except OSError:  # a store we may read but not lock (permissions): nothing to report
        leftovers = []
    check(not leftovers, f"{len(leftovers)} leftover build directories of interrupted installs "
          f"under {home / 'store' / '.tmp'}", "run 'envknit store gc' to remove them")
    try:
        project = load_project()
        project.config  # noqa: B018 - read and validate it now, to report it here
    except EnvknitError as exc:
        check(False, f"envknit.yaml: {exc}", "fix envknit.yaml or run 'envknit init'")
        return 1
    check(True, f"envknit.yaml at {project.config.path}")
    for name, env_cfg in sorted(project.config.environments.items()):
        version = env_cfg.python_version or "{}.{}".format(*sys.version_info[:2])
        try:
            check(True, f"{name}: Python {version} at {find_python(version)}")
        except EnvknitError as exc:
            check(False, f"{name}: {exc}", f"install Python {version} (pyenv, uv python install)")
        if env_cfg.node_version:
            from ..nodes import find_node

            try:
                node = find_node(env_cfg.node_version, name)
                check(True, f"{name}: Node {node.version} ({node.source}) at {node.node}")
            except EnvknitError as exc:
                check(False, f"{name}: {exc}")
    try:
        lock = project.lock()
    except EnvknitError as exc:
        check(False, f"lock: {exc}", "run 'envknit lock'")
        return 1
    check(True, f"lock at {project.lock_path} (uv {lock.resolver_version or 'unknown'})")
    for name, reason in sorted(_stale_reasons(project, lock).items()):
        check(False, f"{name}: lock is stale: {reason}", "run 'envknit lock'")
    for name, env in sorted(lock.environments.items()):
        python = python_tuple(env.python_version)
        missing = [p for p in env.selected() if
                   find_entry(p.name, p.version, p.hashes, python, home) is None]
        check(not missing, f"{name}: {len(env.packages) - len(missing)}/{len(env.packages)} "
              "locked packages in the store",
              f"run 'envknit install --env {name}'")
        if not missing and python == sys.version_info[:2]:
            _show_verdicts(name, env, home, reprobe=getattr(args, "reprobe", False))
    print("doctor: all good" if not problems else f"doctor: {problems} problem(s)")
    return 1 if problems else 0


def _show_verdicts(name: str, env: LockedEnvironment, home: Path, *, reprobe: bool) -> None:
    """Whether each compiled package loads in a sub-interpreter of this Python (information)."""
    from ..store import verdicts as _verdicts
    from ..store.paths import environment_entries

    compiled = [e for e in environment_entries(env, home=home) if _verdicts.has_extensions(e)]
    if not compiled:
        return
    if reprobe:
        count = _verdicts.forget(compiled, home)
        print(f"[info] {name}: forgot {count} C-extension verdict(s); the next import in a "
              "sub-interpreter probes again")
        return
    table = _verdicts.overrides()
    shown = []
    for entry in compiled:
        label = f"{entry.name} {entry.version}"
        forced = table.get(f"{entry.name}=={entry.version}") or table.get(entry.name)
        record = _verdicts.read_verdict(_verdicts.verdict_path(entry, home))
        if forced:
            shown.append(f"{label}: {forced} ({_verdicts.OVERRIDES_VAR})")
        elif record is None:
            shown.append(f"{label}: not probed yet")
        else:
            why = f" ({record.get('detail')})" if record.get("detail") else ""
            shown.append(f"{label}: {record['verdict']}{why}")
    python = sys.version.split()[0]
    print(f"[info] {name}: compiled packages in sub-interpreters of Python {python} "
          f"(verdicts in {_verdicts.verdicts_root(home)}):")
    for line in shown:
        print(f"       {line}")


def cmd_status(args: argparse.Namespace) -> int:
    project = load_project()
    home = envknit_home()
    # a missing lock is a state to show; a broken one is an error (raised)
    lock = project.lock() if project.lock_path.exists() else None
    stale = _stale_reasons(project, lock) if lock is not None else {}
    names = sorted(set(project.config.environments) | set(lock.environments if lock else ()))
    print(f"envknit runs on Python {sys.version.split()[0]} ({sys.executable}); 'envknit run' "
          "and workers use each environment's own Python:")
    for name in names:
        env = lock.environments.get(name) if lock is not None else None
        if env is None:
            print(f"{name}: not locked (run 'envknit lock')")
            continue
        python = python_tuple(env.python_version)
        rows = []
        installed = 0
        for pkg in env.selected():
            here = find_entry(pkg.name, pkg.version, pkg.hashes, python, home) is not None
            installed += here
            mark = "installed" if here else "MISSING"
            rows.append(f"  {pkg.name} {pkg.version}{' (dev)' if pkg.dev else ''}: {mark}")
        fresh = f"STALE: {stale[name]} (run 'envknit lock')" if name in stale else "up to date"
        try:
            where = str(find_python(env.python_version))
        except EnvknitError:
            where = "not found here: see 'envknit doctor'"
        print(f"{name}: Python {env.python_version} ({where}), {len(env.packages)} locked, "
              f"{installed}/{len(env.packages)} installed, lock {fresh}")
        for row in rows:
            print(row)
    return 0
