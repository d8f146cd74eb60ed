"""Reading and adjusting a dist-info ``RECORD`` (the installed files of a distribution).

The store's one RECORD reader: installs use it to split uv's output into entries and to check
each installed file against its wheel's hash.
"""

from __future__ import annotations

import binascii
import contextlib
import io
import os
from pathlib import Path

from ..errors import StoreError

__all__ = ["move_record_rows", "read_record", "record_rows"]


def record_rows(text: str) -> list[list[str]]:
    """The non-empty CSV rows of a RECORD's text (the one RECORD parser of envknit).

    Without a quote or a carriage return (the usual RECORD), a row is its line split at
    commas, which is what the csv module reads there; csv itself is imported only otherwise.
    """
    if '"' not in text and "\r" not in text:
        return [line.split(",") for line in text.split("\n") if line]
    import csv

    return [row for row in csv.reader(io.StringIO(text, newline="")) if row]


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return record_rows(fh.read())


def read_record(dist_info: Path) -> list[tuple[str, str | None]]:
    """``(path relative to the install target, sha256 hex or None)`` of each RECORD row.

    A row pointing outside the install target raises ``StoreError``.
    """
    found: list[tuple[str, str | None]] = []
    for row in _rows(dist_info / "RECORD"):
        rel = os.path.normpath(row[0])
        if rel.startswith("..") or os.path.isabs(rel):
            raise StoreError(
                f"{dist_info.name}/RECORD lists {row[0]!r}, outside the install target; "
                "envknit only installs files that stay inside a store entry"
            )
        if rel == os.curdir:
            continue
        algo, _, digest = row[1].partition("=") if len(row) > 1 else ("", "", "")
        sha = None
        if algo == "sha256" and digest:
            with contextlib.suppress(ValueError):  # a malformed digest: nothing to check
                # base64.urlsafe_b64decode without the base64 module (struct...)
                raw = binascii.a2b_base64(digest.replace("-", "+").replace("_", "/")
                                          + "=" * (-len(digest) % 4))
                sha = raw.hex() if len(raw) == 32 else None
        found.append((rel, sha))
    return found


def move_record_rows(record: Path, top: str, prefix: str) -> None:
    """Prefix the paths of RECORD rows under ``top/`` with ``prefix`` (after moving the files)."""
    import csv

    rows = _rows(record)
    for row in rows:
        if row[0].startswith(f"{top}/"):
            row[0] = prefix + row[0]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    record.write_text(out.getvalue(), encoding="utf-8")
