"""``store gc`` from the library side: what it keeps when installs run at the same time."""

from __future__ import annotations

import os
import time
from pathlib import Path

from envknit.store.layout import ENTRY_FILE, entry_dir, iter_entries
from envknit.store.maintenance import collect_garbage
from tests._builders import make_store_entry


def test_gc_keeps_entries_finished_after_it_began(envknit_home: Path) -> None:
    # no registered project needs either entry; 'late' was completed by an install that ran
    # while gc was working (so its lock may be newer than the one gc read): it must stay
    old = make_store_entry(envknit_home, "old", "1.0")
    late = make_store_entry(envknit_home, "late", "1.0")
    later = time.time() + 3600
    os.utime(entry_dir(late.name, late.version, late.files[0].sha256, envknit_home) / ENTRY_FILE,
             (later, later))
    result = collect_garbage(envknit_home)
    assert [e.name for e in result.removed] == [old.name]
    assert result.kept == 1
    assert [e.name for e in iter_entries(envknit_home)] == ["late"]
