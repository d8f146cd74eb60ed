"""``envknit lock``'s and ``install``'s usual command lines, read without argparse.

argparse's import and the whole command tree it builds cost ~10 ms of a lock that uv answers
in ~20, and of an install that finds everything in the store. The forms read here are exact
tokens only (``--env NAME``, ``--find-links DIR``, ``--no-index``, ``--offline``,
``--no-build``, and install's ``--no-dev``); anything else, ``--help``, an abbreviation, an
``=`` or a value starting with ``-``, returns None and takes argparse's path, errors included.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Args", "install_args", "lock_args"]


class Args:
    """The parsed arguments, as attributes (``types.Args`` costs its module's import,
    ~0.5 ms of a lock)."""

    command: str
    env: str | None
    find_links: list[str] | None
    no_index: bool
    offline: bool
    no_build: bool
    no_dev: bool

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

_FLAGS = {"--no-index": "no_index", "--offline": "offline", "--no-build": "no_build"}
_INSTALL_FLAGS = {**_FLAGS, "--no-dev": "no_dev"}


def lock_args(argv: Sequence[str]) -> Args | None:
    """The arguments of ``envknit lock ARGV`` as argparse would give them, or None."""
    return _read(argv, Args(command="lock", env=None, find_links=None,
                                       no_index=False, offline=False, no_build=False), _FLAGS)


def install_args(argv: Sequence[str]) -> Args | None:
    """The arguments of ``envknit install ARGV`` as argparse would give them, or None."""
    return _read(argv, Args(command="install", env=None, no_dev=False,
                                       find_links=None, no_index=False, offline=False,
                                       no_build=False), _INSTALL_FLAGS)


def _read(
    argv: Sequence[str], args: Args, flags: dict[str, str]
) -> Args | None:
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
