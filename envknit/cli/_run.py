"""``envknit run [--env NAME] [--no-dev] -- CMD...``: CMD with an environment on PYTHONPATH.

This is the one command on a hot path (scripts, test runners), so it parses its own arguments
and keeps a small cache per (lock, environment) under ``$ENVKNIT_HOME/cache``: when the lock
file and every entry are unchanged, start-up imports only ``os``, ``sys`` and ``zlib`` before
exec'ing the command (``python`` itself directly, not through its shim). Any doubt (changed
lock, missing entry, missing interpreter) falls back to the full path, which reads the lock and
the store.
"""

from __future__ import annotations

import os
import sys
import zlib

from .._where import find_config as _find_config, home as _home

# ``envknit run`` has a start-up budget (docs/benchmarks.md): typing and collections.abc only
# for the type checker, and no json (it imports re and enum, ~3 ms): the cache is text of
# NUL-separated fields (no path or name can hold a NUL).
TYPE_CHECKING = False
if TYPE_CHECKING:
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
# 2: "python" is a bare venv of the base interpreter; 3: "python_version"; 4: NUL-separated
# text instead of JSON
_CACHE_FORMAT = "envknit-run-plan 4"


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
    return os.path.join(home, "cache", f"run-{key:08x}.plan")


_LISTS = ("entries", "paths", "bins")


def _dump(plan: dict[str, Any]) -> str:
    """The cache text: fixed fields, then each list with its length first."""
    sig = plan["lock_sig"]
    fields = [
        _CACHE_FORMAT, plan["lock"], plan["env"], "1" if plan["no_dev"] else "0",
        " ".join(map(str, sig)) if sig else "", plan["python"], plan["shim"], plan["node_bin"],
        plan["python_version"],
    ]
    for key in _LISTS:
        fields += [str(len(plan[key])), *plan[key]]
    return "\0".join(fields)


def _load(text: str) -> dict[str, Any] | None:
    """The plan ``_dump`` wrote, or None for anything else (anyone may have edited the file)."""
    fields = text.split("\0")
    if len(fields) < 9 or fields[0] != _CACHE_FORMAT or fields[3] not in ("0", "1"):
        return None
    sig = fields[4].split()
    if not all(s.isdigit() for s in sig):
        return None
    plan: dict[str, Any] = {
        "lock": fields[1], "env": fields[2], "no_dev": fields[3] == "1",
        "lock_sig": [int(s) for s in sig] or None,
        "python": fields[5], "shim": fields[6], "node_bin": fields[7],
        "python_version": fields[8],
    }
    at = 9
    for key in _LISTS:
        if at >= len(fields) or not fields[at].isdigit():
            return None
        n = int(fields[at])
        plan[key] = fields[at + 1:at + 1 + n]
        at += 1 + n
    if at != len(fields) or len(plan["entries"]) != len(plan["paths"]):
        return None
    return plan


def _cached_plan(cache: str, lock_path: str, env: str, no_dev: bool) -> dict[str, Any] | None:
    try:
        with open(cache, encoding="utf-8") as fh:
            plan = _load(fh.read())
    except (OSError, ValueError):  # ValueError: not UTF-8
        return None
    if plan is None:
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
    return plan


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
        atomic_write_text(cache, _dump(plan))
    except OSError:
        pass  # a cache that cannot be written only costs the next run some time


def _is_the_shim(name: str, plan: dict[str, Any]) -> bool:
    """``name`` (python, python3, pythonX.Y) is what the PATH lookup finds in the shim folder."""
    if "/" in name or not os.path.isfile(os.path.join(plan["shim"], name)):
        return False
    node_bin = plan["node_bin"]  # ahead of the shim on PATH
    return not (node_bin and os.path.exists(os.path.join(node_bin, name)))


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
        if _is_the_shim(cmd[0], plan):
            # the shim first on PATH would exec this very interpreter with these arguments;
            # doing it here saves starting a shell
            os.execve(plan["python"], [plan["python"], *cmd[1:]], child_env)
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

