"""``envknit init / add / remove``: editing envknit.yaml (``lock`` is ``cli._lock``)."""

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
from ..errors import ConfigError
from ..names import normalize_name, validate_env_name, validate_python_version

if TYPE_CHECKING:
    import argparse

__all__ = ["cmd_add", "cmd_init", "cmd_remove"]

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
