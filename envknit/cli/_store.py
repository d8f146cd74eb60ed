"""``envknit store list / gc``: what the global store holds, and removing what nobody needs."""

from __future__ import annotations

import argparse
import sys

from ..store.layout import envknit_home, iter_entries
from ..store.maintenance import collect_garbage, entry_size
from ._errors import print_error

__all__ = ["cmd_store_gc", "cmd_store_list", "human_size"]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def cmd_store_list(args: argparse.Namespace) -> int:
    home = envknit_home()
    rows = [("NAME", "VERSION", "ENTRY", "SIZE", "TAGS")]
    total = 0
    for entry in iter_entries(home):
        size = entry_size(entry)
        total += size
        rows.append((entry.name, entry.version, entry.path.name, human_size(size),
                     ",".join(entry.tags) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for name, version, key, size_text, tags in rows:
        print(f"{name:<{widths[0]}}  {version:<{widths[1]}}  {key:<{widths[2]}}  "
              f"{size_text:>{widths[3]}}  {tags}")
    count = len(rows) - 1
    print(f"{count} entr{'y' if count == 1 else 'ies'}, {human_size(total)} in {home / 'store'}",
          file=sys.stderr)
    return 0


def cmd_store_gc(args: argparse.Namespace) -> int:
    home = envknit_home()
    result = collect_garbage(home, dry_run=args.dry_run)
    if result.refused:
        shown = "; ".join(result.refused[:3])
        more = f"; and {len(result.refused) - 3} more" if len(result.refused) > 3 else ""
        print_error(f"gc removed nothing: it cannot tell what these projects need: {shown}{more}. "
                    "Restore their locks, or delete the registrations under "
                    f"{home / 'projects'} of projects that are gone.")
        return 1
    verb = "would remove" if args.dry_run else "removed"
    for entry in result.removed:
        print(f"{verb} {entry.name} {entry.version} ({entry.path.name})")
    print(f"{verb} {len(result.removed)} entr{'y' if len(result.removed) == 1 else 'ies'} "
          f"({human_size(result.freed)}), kept {result.kept}")
    if result.leftovers:
        count = len(result.leftovers)
        print(f"{verb} {count} leftover build director{'y' if count == 1 else 'ies'} of "
              f"interrupted installs ({human_size(result.leftover_size)})")
    return 0
