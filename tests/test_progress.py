"""envknit._progress: a long child process is never silent, on a terminal or in a log."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from envknit._progress import elapsed, wait_with_progress

pytestmark = pytest.mark.timeout(60)

CHILD = "import sys, time; time.sleep(0.6); print('out'); print('err', file=sys.stderr)"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _child() -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_elapsed_reads_like_a_person_says_it() -> None:
    assert [elapsed(s) for s in (0.4, 7.9, 60, 125.5)] == ["0 s", "7 s", "1 min 00 s",
                                                           "2 min 05 s"]


def test_log_gets_a_start_line_and_still_lines() -> None:
    log = io.StringIO()
    out, err = wait_with_progress(_child(), "building slow 1.0 from source", stream=log,
                                  every=0.05)
    assert (out, err) == ("out\n", "err\n")
    lines = log.getvalue().splitlines()
    assert lines[0] == "  building slow 1.0 from source ..."
    assert all(line.startswith("  ... still building slow 1.0 from source (") for line in lines[1:])
    assert len(lines) >= 2  # the child sleeps 0.6 s: at least one "still" line at 0.05 s


def test_terminal_gets_a_spinner_that_is_cleared() -> None:
    term = _Terminal()
    out, _ = wait_with_progress(_child(), "building slow 1.0 from source", stream=term,
                                tick=0.05)
    assert out == "out\n"
    text = term.getvalue()
    assert text.startswith("\r  / building slow 1.0 from source (0 s)")
    assert text.endswith("\r\x1b[K")
