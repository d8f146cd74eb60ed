"""Argument parsing and dispatch of every command but the ``run`` fast path."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._version import __version__
from ._errors import guarded, print_error

__all__ = ["build_parser", "dispatch"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``envknit: error:`` line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        print_error(f"{message} (see '{self.prog} --help')")
        sys.exit(2)

# command -> (module, function); modules are imported only when their command runs
_COMMANDS = {
    "init": ("_project", "cmd_init"),
    "add": ("_project", "cmd_add"),
    "remove": ("_project", "cmd_remove"),
    "lock": ("_lock", "cmd_lock"),
    "install": ("_install", "cmd_install"),
    "verify": ("_inspect", "cmd_verify"),
    "doctor": ("_inspect", "cmd_doctor"),
    "status": ("_inspect", "cmd_status"),
    "export": ("_export", "cmd_export"),
    "store list": ("_store", "cmd_store_list"),
    "store gc": ("_store", "cmd_store_gc"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="envknit",
        description="Several versions of a package in one Python process: "
        "environments in envknit.yaml, locked and installed into a global store with uv.",
    )
    parser.add_argument("--version", action="version", version=f"envknit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("init", help="create envknit.yaml with a 'default' environment")
    p.add_argument("--python", dest="python_version", help="python_version of 'default'")
    p.add_argument("--force", action="store_true", help="overwrite an existing envknit.yaml")

    p = sub.add_parser("add", help="add a requirement (PEP 508) to an environment")
    p.add_argument("requirement", metavar="REQUIREMENT",
                   help="a PEP 508 requirement, e.g. 'attrs==23.1.0' or 'rich[jupyter]>=13' "
                   "(quote it in the shell); replaces the line of a package already listed")
    p.add_argument("--env", default="default", metavar="NAME",
                   help="the environment, created if new (default: 'default')")
    p.add_argument("--dev", action="store_true", help="add it to dev_packages")

    p = sub.add_parser("remove", help="remove a package from an environment")
    p.add_argument("name", metavar="NAME",
                   help="the package's name (no version), e.g. 'attrs'")
    p.add_argument("--env", default="default", metavar="NAME",
                   help="the environment (default: 'default')")
    p.add_argument("--dev", action="store_true", help="remove it from dev_packages only")

    p = sub.add_parser("lock", help="resolve with uv and write envknit.lock.yaml")
    p.add_argument("--env", metavar="NAME",
                   help="re-lock this environment only, keep the others (default: all)")
    _add_uv_options(p, "resolve", "pick only versions that have a wheel for the "
                    "environment's Python here; fail if there is none")

    p = sub.add_parser("install", help="install the locked packages into the global store")
    p.add_argument("--env", metavar="NAME", help="only this environment (default: all)")
    p.add_argument("--no-dev", action="store_true", help="skip dev packages")
    _add_uv_options(p, "install", "fail instead of building a package that has no wheel")

    # listed for --help only: main() hands 'run' to cli._run, whose own parser is the only one
    # (it must not import argparse: see _run's docstring)
    sub.add_parser("run", help="run a command with an environment on PYTHONPATH "
                   "('envknit run --help')", add_help=False)

    p = sub.add_parser("verify", help="check store entries against their manifests")
    p.add_argument("--env", help="only this environment (default: all)")

    p = sub.add_parser("doctor", help="check uv, interpreters, Node, the store and the lock")
    p.add_argument("--reprobe", action="store_true",
                   help="forget this Python's C-extension verdicts of the project's packages")
    from ._export import add_export_parser

    add_export_parser(sub)
    sub.add_parser("status", help="per environment: locked, installed, stale")

    store = sub.add_parser("store", help="inspect or clean the global store")
    store_sub = store.add_subparsers(dest="store_command", metavar="SUBCOMMAND")
    store_sub.add_parser("list", help="entries with their sizes")
    p = store_sub.add_parser("gc", help="remove entries no registered project needs")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    return parser


def _add_uv_options(p: argparse.ArgumentParser, verb: str, no_build: str) -> None:
    """The uv options of ``lock`` and ``install``: where files come from, and builds."""
    p.add_argument("--find-links", metavar="DIR", action="append",
                   help=f"{verb} from the wheels (and sdists) in DIR too; repeatable")
    p.add_argument("--no-index", action="store_true",
                   help="ask no package index: only --find-links folders (and UV_FIND_LINKS)")
    p.add_argument("--offline", action="store_true",
                   help="no network at all: uv's cache and local folders only")
    p.add_argument("--no-build", action="store_true", help=f"never build from source: {no_build}")


def dispatch(argv: Sequence[str]) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(list(argv))
    command = args.command
    if command is None:
        parser.print_help()
        return 2
    if command == "run":  # only after a global option: main() takes a leading 'run' itself
        from ._run import run_command

        return run_command(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(map(repr, rest))}")
    if command == "store":
        if args.store_command is None:
            print_error("'envknit store' needs a subcommand: list or gc "
                        "(see 'envknit store --help')")
            return 2
        command = f"store {args.store_command}"
    module_name, func_name = _COMMANDS[command]
    module = importlib.import_module(f"{__package__}.{module_name}")
    return guarded(lambda: int(getattr(module, func_name)(args)))
