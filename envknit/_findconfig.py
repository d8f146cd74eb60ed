"""Finding a project's ``envknit.yaml``, apart from its reader (install and run need only this)."""

from __future__ import annotations

import os
from pathlib import Path

from ._wording import no_config
from .errors import ConfigError

__all__ = ["CONFIG_FILENAME", "find_config"]

CONFIG_FILENAME = "envknit.yaml"


def find_config(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest ``envknit.yaml`` in ``start`` (default: the cwd) or one of its parents."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    raise ConfigError(no_config(str(here)))
