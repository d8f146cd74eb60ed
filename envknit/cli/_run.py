"""``envknit run [--env NAME] [--no-dev] -- CMD...``: CMD with an environment on PYTHONPATH.

This is the one command on a hot path (scripts, test runners), so it parses its own arguments
and keeps a small JSON cache per (lock, environment) under ``$ENVKNIT_HOME/cache``: when the
lock file and every entry are unchanged, start-up imports only ``os``, ``sys``, ``json`` and
``zlib`` before exec'ing the command. Any doubt (changed lock, missing entry, missing
interpreter) falls back to the full path, which reads the lock and the store.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = ["run_command"]

_USAGE = "usage: envknit run [--env NAME] [--no-dev] [--verbose] -- CMD [ARG...]"
_HELP = f"""{_USAGE}

Run CMD with an environment's packages: their site directories first on PYTHONPATH, their
console scripts on PATH, and python, python3 and pythonX.Y meaning the interpreter of the
environment's python_version (which may differ from the Python running envknit). The exit
status is CMD's. Everything after '--' belongs to CMD.

options:
  -h, --help    show this help and exit
  --env NAME    the environment to run in (default: 'default')
  --no-dev      leave the environment's dev packages out
  --verbose     say which Python and how many package directories the command gets
"""
_CACHE_FORMAT = 3  # 2: "python" is a bare venv of the base interpreter; 3: "python_version"


# _home and _find_config are store.layout.envknit_home and config.find_config on plain strings:
# importing those modules (pathlib, packaging, dataclasses) would add ~16 ms to this path
def _home() -> str:
    env = os.environ.get("ENVKNIT_HOME")
    if env:
        return os.path.realpath(os.path.expanduser(env))
    return os.path.join(os.path.expanduser("~"), ".envknit")


def _find_config() -> str | None:
    here = os.getcwd()
    while True:
        candidate = os.path.join(here, "envknit.yaml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _signature(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def _parse(argv: Sequence[str]) -> tuple[str, bool, bool, list[str]] | str:
    env, no_dev, verbose = "default", False, False
    args = list(argv)
    while args:
        arg = args[0]
        if arg == "--":
            args.pop(0)
            break
        if arg in ("-h", "--help"):
            return "help"
        if arg in ("--no-dev", "--verbose", "-v"):
            no_dev = no_dev or arg == "--no-dev"
            verbose = verbose or arg != "--no-dev"
            args.pop(0)
        elif arg == "--env" and len(args) > 1:
            env = args[1]
            del args[:2]
        elif arg.startswith("--env="):
            env = arg.split("=", 1)[1]
            args.pop(0)
        elif arg.startswith("-"):
            return f"run: unknown option {arg!r} ({_USAGE})"
        else:
            break
    if not args:
        return f"run: no command given ({_USAGE})"
    return env, no_dev, verbose, args


def _cache_path(home: str, lock_path: str, env: str, no_dev: bool) -> str:
    key = zlib.crc32(f"{lock_path}\0{env}\0{no_dev}".encode())
    return os.path.join(home, "cache", f"run-{key:08x}.json")


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _well_formed(plan: object) -> bool:
    """The cache file has the shape ``_build_plan`` writes (anyone may have edited it)."""
    return (
        isinstance(plan, dict)
        and plan.get("format") == _CACHE_FORMAT
        and isinstance(plan.get("python"), str)
        and isinstance(plan.get("shim"), str)
        and isinstance(plan.get("node_bin", ""), str)
        and all(_strings(plan.get(key)) for key in ("entries", "paths", "bins"))
        and len(plan["entries"]) == len(plan["paths"])
    )


def _cached_plan(cache: str, lock_path: str, env: str, no_dev: bool) -> dict[str, Any] | None:
    try:
        with open(cache, encoding="utf-8") as fh:
            plan = json.load(fh)
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return None
    if not _well_formed(plan):
        return None
    if plan.get("lock") != lock_path or plan.get("env") != env or plan.get("no_dev") != no_dev:
        return None
    if plan.get("lock_sig") != _signature(lock_path):
        return None
    for entry, site in zip(plan["entries"], plan["paths"], strict=True):
        # a complete entry has both; one missing means the entry was damaged since
        if not os.path.isfile(os.path.join(entry, "ENTRY.json")) or not os.path.isdir(site):
            return None
    if not os.access(plan["python"], os.X_OK):
        return None
    if not os.path.isfile(os.path.join(plan["shim"], "python")):
        return None
    if plan.get("node_bin") and not os.access(os.path.join(plan["node_bin"], "node"), os.X_OK):
        return None  # that Node was uninstalled: look again
    checked: dict[str, Any] = plan
    return checked


def _build_plan(home: str, lock_path: str, env_name: str, no_dev: bool) -> dict[str, Any]:
    """The slow path: read the lock and the store (imports YAML and packaging)."""
    from pathlib import Path

    from ..lock import load_lock
    from ..pythons import find_python
    from ..store.paths import environment_entries
    from ..store.shims import bare_python, python_shim_dir

    lock_sig = _signature(lock_path)
    env = load_lock(lock_path).environment(env_name)
    entries = environment_entries(env, include_dev=not no_dev, home=Path(home))
    # the environment sees its packages and the stdlib only: not the site-packages of the
    # interpreter found (envknit's own venv, when it runs from one), nor of its base
    python = bare_python(Path(home), find_python(env.python_version), env.python_version)
    shim = python_shim_dir(Path(home), python, env.python_version)
    node_bin = ""
    if env.node_version:
        from ..nodes import find_node

        node_bin = str(find_node(env.node_version, env_name).bin_dir)
    return {
        "format": _CACHE_FORMAT,
        "lock": lock_path,
        "lock_sig": lock_sig,
        "env": env_name,
        "no_dev": no_dev,
        "python": str(python),
        "python_version": env.python_version,
        "shim": str(shim),
        "entries": [str(e.path) for e in entries],
        "paths": [str(e.site_dir) for e in entries],
        "bins": [str(e.bin_dir) for e in entries if e.bin_dir.is_dir()],
        "node_bin": node_bin,
    }


def _save_plan(cache: str, plan: dict[str, Any]) -> None:
    from .._atomic import atomic_write_text

    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        atomic_write_text(cache, json.dumps(plan))
    except OSError:
        pass  # a cache that cannot be written only costs the next run some time


def run_command(argv: Sequence[str]) -> int:
    """Parse ``argv`` (what follows ``run``) and exec the command; returns only on failure."""
    parsed = _parse(argv)
    if parsed == "help":
        print(_HELP, end="")
        return 0
    from ._errors import oserror_text, print_error

    if isinstance(parsed, str):
        print_error(parsed)
        return 2
    env_name, no_dev, verbose, cmd = parsed
    config = _find_config()
    if config is None:
        from .._wording import no_config

        print_error(no_config(os.path.realpath(os.getcwd())))
        return 1
    lock_path = os.path.join(os.path.dirname(config), "envknit.lock.yaml")
    home = _home()
    cache = _cache_path(home, lock_path, env_name, no_dev)
    plan = _cached_plan(cache, lock_path, env_name, no_dev)
    if plan is None:
        from ..errors import EnvknitError

        try:
            plan = _build_plan(home, lock_path, env_name, no_dev)
        except EnvknitError as exc:
            print_error(exc)
            return 1
        except OSError as exc:  # writing the python shim: a full disk, a read-only home
            print_error(f"cannot prepare the environment: {oserror_text(exc)}")
            return 1
        _save_plan(cache, plan)
    if verbose:
        print(f"envknit: run: environment '{env_name}' uses Python {plan['python_version']} "
              f"({plan['python']}) for python, python3 and python{plan['python_version']}; "
              f"{len(plan['paths'])} package director"
              f"{'y' if len(plan['paths']) == 1 else 'ies'} on PYTHONPATH", file=sys.stderr)
    child_env = dict(os.environ)
    paths = list(plan["paths"])
    if child_env.get("PYTHONPATH"):
        paths.append(child_env["PYTHONPATH"])
    if paths:
        child_env["PYTHONPATH"] = os.pathsep.join(paths)
    child_env["ENVKNIT_ENV"] = env_name
    node_first = [plan["node_bin"]] if plan.get("node_bin") else []
    child_env["PATH"] = os.pathsep.join(
        [*node_first, plan["shim"], *plan["bins"], child_env.get("PATH", os.defpath)]
    )
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(cmd[0], cmd, child_env)
    except FileNotFoundError:
        print_error(f"command not found: {cmd[0]!r}")
        return 127
    except PermissionError:
        print_error(f"permission denied: {cmd[0]!r}")
        return 126
    except OSError as exc:
        print_error(f"cannot run {cmd[0]!r}: {exc.strerror}")
        return 126
    return 0  # pragma: no cover - execvpe does not return

