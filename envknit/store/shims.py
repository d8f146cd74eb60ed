"""``python`` shims: a directory whose ``python`` runs a chosen interpreter (for ``envknit run``).

Console scripts in the store start with ``#!/usr/bin/env python``, so the ``python`` first on
``PATH`` decides which interpreter runs them; ``envknit run`` puts this directory first. The
shims are tiny ``sh`` scripts rather than symlinks because a symlink to a virtual
environment's ``python`` would lose the environment (``pyvenv.cfg`` is looked up next to the
link, not the target).
"""

from __future__ import annotations

import hashlib
import os
import shlex
from pathlib import Path

from .._atomic import atomic_write_text

__all__ = ["python_shim_dir"]


def python_shim_dir(home: Path, python: Path, python_version: str) -> Path:
    """The shim directory for interpreter ``python`` (created once, atomically)."""
    key = hashlib.sha256(str(python).encode()).hexdigest()[:16]
    folder = home / "shims" / key
    major_minor = ".".join(python_version.split(".")[:2])
    names = ("python", "python3", f"python{major_minor}")
    body = f"#!/bin/sh\nexec {shlex.quote(str(python))} \"$@\"\n"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shim = folder / name
        try:
            if shim.read_text(encoding="utf-8") == body and os.access(shim, os.X_OK):
                continue
        except OSError:
            pass  # missing: write it below
        # executable before it appears under its name: a concurrent run may exec it at once
        atomic_write_text(shim, body, mode=0o755)
    return folder
