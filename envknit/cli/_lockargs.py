"""``envknit lock``'s usual command lines, read without argparse (the rest go to argparse).

argparse's import and the whole command tree it builds cost ~10 ms of a lock that uv answers
in ~20. The forms read here are exact tokens only (``--env NAME``, ``--find-links DIR``,
``--no-index``, ``--offline``, ``--no-build``); anything else, ``--help``, an abbreviation, an
``=`` or a value starting with ``-``, returns None and takes argparse's path, errors included.
"""

from __future__ import annotations

from types import SimpleNamespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["lock_args"]

_FLAGS = {"--no-index": "no_index", "--offline": "offline", "--no-build": "no_build"}


def lock_args(argv: Sequence[str]) -> SimpleNamespace | None:
    """The arguments of ``envknit lock ARGV`` as argparse would give them, or None."""
    args = SimpleNamespace(command="lock", env=None, find_links=None, no_index=False,
                           offline=False, no_build=False)
    tokens = iter(argv)
    for token in tokens:
        if token in _FLAGS:
            setattr(args, _FLAGS[token], True)
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
