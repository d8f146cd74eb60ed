"""``envknit export [--env NAME] [-o FILE]``: one locked environment as a PEP 751 pylock.toml."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["EXPORT_HELP", "add_export_parser", "cmd_export"]

EXPORT_HELP = """\
Write the locked environment NAME as a PEP 751 lock file: pylock.toml for 'default',
pylock.<NAME>.toml otherwise, next to envknit.lock.yaml (or FILE with -o; '-' for stdout).

Every locked package is written with its version and the name and sha256 of each of its
files. A file found in a --find-links folder or a UV_FIND_LINKS folder is written as a path
relative to the output file; any other file gets its URL from the index (UV_INDEX_URL, else
PyPI). The output is deterministic: exporting an unchanged lock gives the same bytes.

Install it elsewhere with:  uv pip install -r pylock.toml   (or pip install -r, pip >= 25.1)
"""


def add_export_parser(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "export", help="write an environment as a PEP 751 pylock.toml",
        description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", default="default", metavar="NAME",
                   help="the environment to export (default: default)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write (default: pylock[.NAME].toml by the lock; '-': stdout)")
    p.add_argument("--find-links", metavar="DIR", action="append", default=[],
                   help="a folder of the locked files: they are referenced by path (repeatable)")
    p.add_argument("--no-dev", action="store_true", help="leave dev packages out")


def cmd_export(args: argparse.Namespace) -> int:
    # imported here: the parser imports this module for every command
    from .._atomic import atomic_write_text
    from ..pylock import build_pylock, pylock_filename
    from ._common import load_project

    project = load_project()
    env = project.lock().environment(args.env)
    if args.output == "-":
        target = None
        base = Path.cwd()
    else:
        target = Path(args.output) if args.output else (
            project.lock_path.parent / pylock_filename(env.name)
        )
        base = target.absolute().parent
    text = build_pylock(
        env, base_dir=base, folders=[Path(f) for f in args.find_links],
        include_dev=not args.no_dev,
    )
    if target is None:
        sys.stdout.write(text)
        return 0
    atomic_write_text(target, text)
    print(f"wrote {target} ({len(env.selected(include_dev=not args.no_dev))} packages, "
          f"environment {env.name!r})", file=sys.stderr)
    return 0
