"""Whether a locked environment was made for the running Python, and what to say when not."""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import TargetPythonError, TargetPythonWarning
from .lock import LockedEnvironment
from .names import python_tuple
from .store.layout import find_entry

__all__ = ["TargetMismatch", "check_target", "find_mismatch", "report_mismatch"]


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetMismatch:
    """An environment locked for ``target`` used on ``running``; ``foreign`` can't load here."""

    env: str
    lock_path: str
    target: tuple[int, int]
    running: tuple[int, int]
    foreign: tuple[str, ...]


def find_mismatch(
    env: LockedEnvironment,
    lock_path: str | os.PathLike[str],
    *,
    include_dev: bool = True,
    home: Path | None = None,
) -> TargetMismatch | None:
    """None when ``env`` targets the running Python; else what differs.

    ``foreign`` lists the packages (``"name version"``) whose store entry fits the target Python
    but not this one: compiled wheels built for the target. Packages not installed at all are
    left to the callers' own "run envknit install" errors.
    """
    running = (sys.version_info.major, sys.version_info.minor)
    target = python_tuple(env.python_version)
    if target == running:
        return None
    foreign = []
    for pkg in env.selected(include_dev=include_dev):
        if find_entry(pkg.name, pkg.version, pkg.hashes, running, home) is not None:
            continue
        if find_entry(pkg.name, pkg.version, pkg.hashes, target, home) is not None:
            foreign.append(f"{pkg.name} {pkg.version}")
    return TargetMismatch(env=env.name, lock_path=os.fspath(lock_path), target=target,
                          running=running, foreign=tuple(foreign))


def check_target(
    env: LockedEnvironment,
    lock_path: str | os.PathLike[str],
    *,
    include_dev: bool = True,
    home: Path | None = None,
    stacklevel: int = 2,
) -> None:
    """Raise ``TargetPythonError`` if ``env`` has packages built for its target Python only;
    warn ``TargetPythonWarning`` if it targets another Python but everything can load here.

    For code that loads the environment into this interpreter (``use()``, a sub-interpreter);
    a worker runs the environment's own Python and needs no check.
    """
    mismatch = find_mismatch(env, lock_path, include_dev=include_dev, home=home)
    report_mismatch(mismatch, stacklevel=stacklevel + 1)


def report_mismatch(mismatch: TargetMismatch | None, *, stacklevel: int = 2) -> None:
    """What ``check_target`` does with what it found (for callers that found it otherwise)."""
    if mismatch is None:
        return
    if mismatch.foreign:
        raise TargetPythonError(
            env=mismatch.env, lock_path=mismatch.lock_path, target=mismatch.target,
            running=mismatch.running, foreign=mismatch.foreign,
        )
    warnings.warn(
        TargetPythonWarning(
            env=mismatch.env, lock_path=mismatch.lock_path, target=mismatch.target,
            running=mismatch.running,
        ),
        stacklevel=stacklevel + 1,
    )
