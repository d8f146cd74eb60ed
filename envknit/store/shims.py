"""The interpreter ``envknit run`` gives an environment: stdlib only, behind ``python`` shims.

An environment must see its locked packages and the standard library, nothing else. The
interpreter envknit finds may be a virtual environment's (envknit's own, when it runs from
one: its site-packages hold PyYAML, packaging, uv...), and even a base interpreter has a
site-packages (pip, whatever was installed there, ``.pth`` files). So ``run`` uses a *bare*
virtual environment per base interpreter, made once under ``$ENVKNIT_HOME/pythons`` with
``python -m venv --without-pip``: no packages, no system site-packages, no user site.

Console scripts in the store start with ``#!/usr/bin/env python``, so the ``python`` first on
``PATH`` decides which interpreter runs them; ``envknit run`` puts a shim directory first. The
shims are tiny ``sh`` scripts rather than symlinks because a symlink to a virtual
environment's ``python`` would lose the environment (``pyvenv.cfg`` is looked up next to the
link, not the target).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from .._atomic import atomic_write_text
from ..errors import StoreError

__all__ = ["bare_python", "base_interpreter", "python_shim_dir"]


def _venv_home(python: Path) -> Path | None:
    """The ``home`` of the virtual environment ``python`` belongs to, or None (PEP 405)."""
    for cfg in (python.parent / "pyvenv.cfg", python.parent.parent / "pyvenv.cfg"):
        try:
            text = cfg.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "home" and value.strip():
                return Path(value.strip())
    return None


def base_interpreter(python: Path, python_version: str) -> Path:
    """The interpreter a virtual environment's ``python`` was made from (``python`` if none).

    Read from ``pyvenv.cfg`` rather than ``sys._base_executable``: that is the venv's own
    ``python`` on 3.10, and asking would start an interpreter.
    """
    major_minor = ".".join(python_version.split(".")[:2])
    for _ in range(4):  # a venv made from a venv: follow a few hops
        home = _venv_home(python)
        if home is None:
            return python
        for name in (python.name, f"python{major_minor}", "python3", "python"):
            if (home / name).is_file():
                python = home / name
                break
        else:
            return python  # the base is gone: let the caller fail on the venv's python
    return python


def bare_python(home: Path, python: Path, python_version: str) -> Path:
    """``bin/python`` of a bare virtual environment of ``python``'s base (made once)."""
    base = base_interpreter(python, python_version)
    root = home / "pythons"
    folder = root / hashlib.sha256(str(base).encode()).hexdigest()[:16]
    exe = folder / "bin" / "python"
    if (folder / "pyvenv.cfg").is_file() and exe.exists():
        return exe
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{folder.name}.{os.urandom(8).hex()}"
    try:
        proc = subprocess.run(
            [str(base), "-I", "-m", "venv", "--without-pip", str(staging)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise StoreError(
                f"cannot make a bare environment of {str(base)!r} for 'envknit run': "
                f"{detail[0][:200]}"
            )
        for script in (staging / "bin").glob("[aA]ctivate*"):
            script.unlink()  # they name the staging path; nothing here activates
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / "pyvenv.cfg").is_file():
                raise
            # another run made it meanwhile: use theirs
    except subprocess.TimeoutExpired:
        raise StoreError(f"{str(base)!r} -m venv did not finish in 120 s") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return exe


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
