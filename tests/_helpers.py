"""Shared test helpers: the Gen 2 marker and running code in a fresh interpreter process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

import pytest

__all__ = ["gen2", "run_fresh"]

gen2 = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="sub-interpreters with their own GIL need CPython 3.12+"
)


def run_fresh(
    code: str, *, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with this Python in a new process (this environment plus ``env``).

    Crash and finalization cases go through here: callers assert the exit status and that
    stderr is empty, so a warning or a traceback printed at shutdown fails the test.
    """
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
