"""The ``envknit`` command line (the library never imports this package).

Start-up is kept lean: ``envknit run`` takes a fast path that imports neither argparse nor the
YAML and packaging libraries when its cache is fresh; every other command imports its module
only when it is chosen. The console script and ``python -m envknit`` go through
:func:`console`, which also skips the interpreter's teardown when nothing needs it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # collections.abc (~1 ms) only for the type checker: run's budget
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["console", "main"]


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
            from ._lock import cmd_lock

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


def console() -> int:
    """The console script: :func:`main`, then, once its output is flushed, ``os._exit``.

    A CLI process that is about to end has nothing to gain from the interpreter's teardown
    (freeing every module and object: ~17 ms of CPU after an install) unless something
    registered work for it: an ``atexit`` callback (workers, sub-interpreters, lane pools,
    ``weakref.finalize`` and logging register one), a thread still running, or a
    ``threading._register_atexit`` hook. Then, or when a flush fails (a closed pipe), the
    status is returned for ``sys.exit`` and the interpreter ends as usual. Tests call
    :func:`main`, which returns the status and leaves the process alone.
    """
    status = main()
    if not _teardown_needed():
        try:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:  # None when the process started with that fd closed
                    stream.flush()
        except (OSError, ValueError):
            return status  # the usual exit reports it (and exits 120), as before
        import os

        os._exit(status)
    return status


def _teardown_needed() -> bool:
    import atexit

    count = getattr(atexit, "_ncallbacks", None)  # CPython's, 3.10-3.14; otherwise: unknown
    if count is None or count():
        return True
    threading = sys.modules.get("threading")
    if threading is None:
        return False
    return threading.active_count() > 1 or bool(getattr(threading, "_threading_atexits", ()))
