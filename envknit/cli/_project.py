"""``envknit init / add / remove / lock``: editing envknit.yaml; locking is ``envknit.locking``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .._atomic import atomic_write_text
from ..config import (
    CONFIG_FILENAME,
    Config,
    load_config,
    parse_requirement,
    requirement_name,
)
from ..errors import ConfigError, LockError
from ..lock import LOCK_FILENAME, Lock, load_lock, save_lock
from ..locking import lock_environments, needs_build
from ..names import normalize_name, validate_env_name, validate_python_version
from ..store.layout import envknit_home
from ._common import uv_options

if TYPE_CHECKING:
    import argparse  # the lock command's usual lines are read without it (cli._lockargs)

__all__ = ["cmd_add", "cmd_init", "cmd_lock", "cmd_remove"]

_TEMPLATE = """\
# envknit.yaml: the environments of this project.
# Each environment pins its own versions; two environments may pin different versions of
# the same package. After editing, run 'envknit lock' and 'envknit install'.
environments:
  default:
    python_version: "{python}"
    packages: []
    dev_packages: []
"""


def _running_python() -> str:
    return "{}.{}".format(*sys.version_info[:2])


def cmd_init(args: argparse.Namespace) -> int:
    path = Path.cwd() / CONFIG_FILENAME
    python = validate_python_version(args.python_version or _running_python())
    if path.exists() and not args.force:
        raise ConfigError("already exists; edit it, or pass --force to overwrite", path=str(path))
    atomic_write_text(path, _TEMPLATE.format(python=python))
    print(f"wrote {path}")
    return 0


def _write_config(config: Config, text: str) -> None:
    """Validate the new text as a config before it replaces the file (atomically)."""
    import yaml

    from .._yamlfile import safe_load_bounded

    try:
        data = safe_load_bounded(text)
    except yaml.YAMLError as exc:  # pragma: no cover - the editor checked it already
        raise ConfigError(f"internal error: edit produced malformed YAML: {exc}") from None
    Config.from_dict(data, config.path)
    atomic_write_text(config.path, text)


def cmd_add(args: argparse.Namespace) -> int:
    from ._edit import edit_requirement  # here: PyYAML, which lock need not import
    requirement = parse_requirement(args.requirement, "requirement")
    env = validate_env_name(args.env)
    config = load_config()
    key = "dev_packages" if args.dev else "packages"
    name = requirement_name(requirement)
    text = config.path.read_text(encoding="utf-8")
    result = edit_requirement(text, env, key, name, requirement)
    _write_config(config, result.text)
    print(f"added {requirement} to {env}.{key} in {config.path}")
    if not result.kept_layout:
        print("note: the file's layout was not one envknit edits line by line; it was "
              "re-written and its comments were lost", file=sys.stderr)
    print("next: envknit lock" + ("" if env == "default" else f" --env {env}"))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ._edit import edit_requirement
    name = normalize_name(args.name)
    config = load_config()
    env = config.environment(args.env)
    keys = ["dev_packages"] if args.dev else ["packages", "dev_packages"]
    text = config.path.read_text(encoding="utf-8")
    removed = []
    kept_layout = True
    for key in keys:
        if any(requirement_name(r) == name for r in getattr(env, key)):
            result = edit_requirement(text, env.name, key, name, None)
            text = result.text
            kept_layout &= result.kept_layout
            removed.append(key)
    if not removed:
        raise ConfigError(
            f"{name!r} is not a requirement of environment {env.name!r}", path=str(config.path)
        )
    _write_config(config, text)
    print(f"removed {name} from {env.name}.{' and '.join(removed)} in {config.path}")
    if not kept_layout:
        print("note: the file was re-written and its comments were lost", file=sys.stderr)
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    cache = envknit_home() / "cache"
    config = load_config(cache_dir=cache)
    lock_path = config.root / LOCK_FILENAME
    if args.env is not None:
        targets = [config.environment(args.env)]
        try:
            base = load_lock(lock_path)
        except LockError as exc:
            if lock_path.exists():
                raise LockError(
                    f"{exc} (--env keeps the other environments of the lock, so it must be "
                    "readable; run 'envknit lock' without --env to re-create it)"
                ) from None
            base = Lock()
    else:
        targets = list(config.environments.values())
        base = Lock()
    if not targets:
        raise ConfigError("no environments defined; add one with 'envknit add REQ'",
                          path=str(config.path))
    lock = lock_environments(
        targets, base=base, progress=lambda msg: print(msg, file=sys.stderr),
        options=uv_options(args), cache_dir=cache,
    )
    save_lock(lock, lock_path)
    for env in targets:
        env_locked = lock.environment(env.name)
        print(f"locked {env_locked.name}: {len(env_locked.packages)} package(s) for Python "
              f"{env_locked.python_version}")
        sdist_only = needs_build(env_locked)
        if sdist_only:
            names = ", ".join(f"{p.name} {p.version}" for p in sdist_only)
            print(f"note: {env_locked.name}: no wheel for Python {env_locked.python_version} on "
                  f"this platform: {names} (built from source by 'envknit install'; "
                  "'envknit lock --no-build' refuses source builds)", file=sys.stderr)
    print(f"wrote {lock_path}")
    return 0
