"""Reading ``envknit.yaml`` and the lock: the one place YAML files are read (``safe_load``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ConfigError, LockError

__all__ = ["read_yaml"]

# libyaml's safe loader builds the same data 3-5x faster (a lock is read on every install and
# every uncached `envknit run`); PyYAML's pure-Python one is the fallback. Writing keeps the
# pure-Python dumper so that a lock's text does not depend on whether libyaml is installed.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(
    path: Path, error: type[ConfigError | LockError], *, what: str, missing_hint: str
) -> object:
    """The data of the YAML file at ``path``; any failure is one ``error`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} not found; {missing_hint}", path=str(path)) from None
    except OSError as exc:
        raise error(f"cannot read the {what}: {exc.strerror}", path=str(path)) from None
    try:
        return yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        raise error(f"malformed YAML: {exc}", path=str(path)) from None
