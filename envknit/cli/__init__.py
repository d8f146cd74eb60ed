"""The ``envknit`` command line (the library never imports this package)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envknit",
        description="Several versions of a package in one Python process.",
    )
    parser.add_argument("--version", action="version", version=f"envknit {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    parser.print_help()
    return 0
