"""The ``envknit`` command line (the library never imports this package).

Start-up is kept lean: ``envknit run`` takes a fast path that imports neither argparse nor the
YAML and packaging libraries when its cache is fresh; every other command imports its module
only when it is chosen.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # collections.abc (~1 ms) only for the type checker: run's budget
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "run":
        from ._run import run_command

        return run_command(args[1:])
    if args and args[0] == "lock":
        from ._lockargs import lock_args

        lock = lock_args(args[1:])
        if lock is not None:  # the usual command lines: no argparse (~10 ms)
            from ._errors import guarded
            from ._project import cmd_lock

            return guarded(lambda: cmd_lock(lock))  # type: ignore[arg-type]
    if args and args[0] == "install":
        from ._lockargs import install_args

        install = install_args(args[1:])
        if install is not None:  # as lock's
            from ._errors import guarded
            from ._install import cmd_install

            return guarded(lambda: cmd_install(install))  # type: ignore[arg-type]
    from ._parser import dispatch

    return dispatch(args)
