"""Finding a CPython interpreter for a ``python_version``: PATH, pyenv, uv-managed Pythons.

envknit never downloads a Python: a version that is not on this machine is an error that says
where it looked.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from .errors import InterpreterNotFoundError

__all__ = ["candidate_pythons", "find_python", "interpreter_version", "search_places"]

_VERSION_DIR = re.compile(r"^(?:cpython-)?(\d+)\.(\d+)(?:\.(\d+))?")


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _uv_python_dirs() -> list[Path]:
    dirs = []
    if env := os.environ.get("UV_PYTHON_INSTALL_DIR"):
        dirs.append(Path(env))
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    dirs.append(Path(data) / "uv" / "python")
    return dirs


def search_places(version: str) -> list[str]:
    """Where ``candidate_pythons(version)`` looks, for people: PATH names, then folders."""
    major_minor = ".".join(version.split(".")[:2])
    places = [f"PATH (python{major_minor}, python3, python)",
              f"pyenv ({_pyenv_root() / 'versions'})"]
    places.append("uv-managed (" + ", ".join(str(d) for d in _uv_python_dirs()) + ")")
    return places


def candidate_pythons(version: str) -> Iterator[Path]:
    """Paths that may be a Python ``version`` (``"3.12"`` or ``"3.12.1"``), best first."""
    major_minor = ".".join(version.split(".")[:2])
    if ".".join(map(str, sys.version_info[:2])) == major_minor:
        yield Path(sys.executable)
    import shutil  # here: the running Python (above) needs none of its archive modules

    shims = _pyenv_root() / "shims"
    for exe in (f"python{major_minor}", "python3", "python"):
        found = shutil.which(exe)
        # pyenv's shims are shell scripts that take ~0.1 s to start; the versions folder
        # below reaches the same interpreters directly
        if found and Path(found).parent != shims:
            yield Path(found)
    roots = [_pyenv_root() / "versions", *_uv_python_dirs()]
    for root in roots:
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir(), reverse=True):
            m = _VERSION_DIR.match(child.name)
            if not m or f"{m[1]}.{m[2]}" != major_minor:
                continue
            if version.count(".") == 2 and m[3] is not None and child.name.find(version) < 0:
                continue
            for rel in ("bin/python3", "bin/python", "install/bin/python3"):
                exe_path = child / rel
                if exe_path.is_file():
                    yield exe_path
                    break


@lru_cache(maxsize=32)
def interpreter_version(executable: str) -> tuple[int, int, int] | None:
    """The (major, minor, micro) of the CPython at ``executable``, or None if it is not one."""
    import subprocess  # here: the running Python (find_python's usual answer) needs no child

    try:
        out = subprocess.run(
            [executable, "-I", "-S", "-c",
             "import sys; print(sys.implementation.name, *sys.version_info[:3])"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    if len(out) != 4 or out[0] != "cpython":
        return None
    return (int(out[1]), int(out[2]), int(out[3]))


def find_python(version: str | None = None) -> Path:
    """An interpreter for ``version`` (the running one when None), or InterpreterNotFoundError."""
    if not version:
        return Path(sys.executable)
    wanted = tuple(int(p) for p in version.split("."))
    seen: list[str] = []
    for path in candidate_pythons(version):
        if str(path) == sys.executable:  # no need to start the running interpreter again
            found: tuple[int, int, int] | None = (
                sys.version_info.major, sys.version_info.minor, sys.version_info.micro
            )
        else:
            found = interpreter_version(str(path))
        if found is not None and found[: len(wanted)] == wanted:
            return path
        seen.append(f"{path} ({'.'.join(map(str, found)) if found else 'not CPython'})")
    raise InterpreterNotFoundError(version, seen, places=search_places(version))
