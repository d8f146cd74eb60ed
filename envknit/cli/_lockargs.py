"""``envknit lock``'s and ``install``'s usual command lines, read without argparse.

argparse's import and the whole command tree it builds cost ~10 ms of a lock that uv answers
in ~20, and of an install that finds everything in the store. The forms read here are exact
tokens only (``--env NAME``, ``--find-links DIR``, ``--no-index``, ``--offline``,
``--no-build``, and install's ``--no-dev``); anything else, ``--help``, an abbreviation, an
``=`` or a value starting with ``-``, returns None and takes argparse's path, errors included.
"""

from __future__ import annotations

from types import SimpleNamespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["install_args", "lock_args"]

_FLAGS = {"--no-index": "no_index", "--offline": "offline", "--no-build": "no_build"}
_INSTALL_FLAGS = {**_FLAGS, "--no-dev": "no_dev"}


def lock_args(argv: Sequence[str]) -> SimpleNamespace | None:
    """The arguments of ``envknit lock ARGV`` as argparse would give them, or None."""
    return _read(argv, SimpleNamespace(command="lock", env=None, find_links=None,
                                       no_index=False, offline=False, no_build=False), _FLAGS)


def install_args(argv: Sequence[str]) -> SimpleNamespace | None:
    """The arguments of ``envknit install ARGV`` as argparse would give them, or None."""
    return _read(argv, SimpleNamespace(command="install", env=None, no_dev=False,
                                       find_links=None, no_index=False, offline=False,
                                       no_build=False), _INSTALL_FLAGS)


def _read(
    argv: Sequence[str], args: SimpleNamespace, flags: dict[str, str]
) -> SimpleNamespace | None:
    tokens = iter(argv)
    for token in tokens:
        if token in flags:
            setattr(args, flags[token], True)
            continue
        if token not in ("--env", "--find-links"):
            return None
        value = next(tokens, "")
        if not value or value.startswith("-"):
            return None
        if token == "--env":
            args.env = value
        else:
            args.find_links = [*(args.find_links or ()), value]
    return args
