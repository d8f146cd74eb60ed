"""Progress of a long child process: a spinner with the elapsed time, or a line now and then."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TextIO

__all__ = ["elapsed", "wait_with_progress"]

_SPINNER = "|/-\\"


def elapsed(seconds: float) -> str:
    """``"7 s"``, ``"2 min 05 s"``: how long something has run, for people."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    return f"{whole // 60} min {whole % 60:02d} s"


def wait_with_progress(
    proc: subprocess.Popen[str],
    label: str,
    *,
    stream: TextIO | None = None,
    tick: float = 0.2,
    every: float = 30.0,
) -> tuple[str, str]:
    """Wait for ``proc`` and return its (stdout, stderr), showing that ``label`` is running.

    On a terminal a spinner line with the elapsed time is redrawn every ``tick`` seconds and
    cleared at the end; elsewhere (a log, a CI job) a line is written when the wait starts and
    then every ``every`` seconds, so a slow build from source is never silent.
    """
    out = sys.stderr if stream is None else stream
    tty = out.isatty()
    start = time.monotonic()
    last_line = start
    if not tty:
        out.write(f"  {label} ...\n")
        out.flush()
    frame = 0
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=tick if tty else min(every, 1.0))
            break
        except subprocess.TimeoutExpired:
            # communicate() keeps what it read so far; calling it again loses nothing
            now = time.monotonic()
            if tty:
                frame += 1
                out.write(f"\r  {_SPINNER[frame % 4]} {label} ({elapsed(now - start)})  ")
                out.flush()
            elif now - last_line >= every:
                last_line = now
                out.write(f"  ... still {label} ({elapsed(now - start)})\n")
                out.flush()
    if tty:
        out.write("\r\x1b[K")
        out.flush()
    return stdout, stderr
