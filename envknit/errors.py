"""The envknit error tree: every error envknit raises derives from ``EnvknitError``.

::

    EnvknitError
    ├── ConfigError (ValueError)               envknit.yaml is missing, malformed or invalid
    ├── LockError (ValueError)                 envknit.lock.yaml is malformed or invalid
    │   └── LockSchemaError                    schema_version major we do not know
    ├── UnknownEnvironmentError (LookupError)  an environment name that is not defined
    ├── InvalidNameError (ValueError)          a hostile or malformed package name / version
    ├── StoreError                             the global store
    │   ├── EntryMissingError                  a locked package is not installed ("envknit install")
    │   └── IntegrityError                     a hash or manifest does not match
    ├── ResolverError                          uv failed to resolve or install
    ├── InterpreterNotFoundError (LookupError) no Python of the requested version was found
    ├── UnsupportedPlatformError (RuntimeError) a feature this Python cannot provide
    ├── ClusterMismatchError (RuntimeError)    a locked environment the Ray cluster cannot run
    ├── NodeNotFoundError (LookupError)        no installed Node matches an env's node_version
    ├── TargetPythonError (RuntimeError)       an environment built for another Python, loaded here
    ├── RemoteError (RuntimeError)             an exception raised on the other side of a boundary
    │   ├── SubInterpreterError                ... inside a sub-interpreter
    │   └── WorkerRemoteError                  ... inside a worker process
    ├── InterpreterClosedError (RuntimeError)  a sub-interpreter used after it was closed
    ├── EnvknitTimeoutError (TimeoutError)     a call exceeded its timeout
    ├── CExtIncompatibleError (ImportError)    a C extension cannot load in a sub-interpreter
    ├── HostImportRefusedError (ImportError)   3.12: a module a sub-interpreter refused, in the host
    ├── CExtensionError (ImportError)          use() of a package with compiled extensions
    ├── VersionNotInstalledError (ModuleNotFoundError)  use() of a version that is not installed
    ├── StrictModeError (ImportError)          plain import of a managed package in strict mode
    └── WorkerError (RuntimeError)             a worker process failed
        ├── WorkerCrashedError                 it died (signal or exit code)
        ├── ProtocolError                      bad frame, version mismatch
        └── MessageTooLargeError (ValueError)  a message past the size limit

Leaf errors also derive from the builtin whose meaning they carry, so ``except ImportError``
keeps working. Errors carry structured fields and build their message from them.

Warnings: ``EnvknitWarning`` (a ``UserWarning``) > ``TargetPythonWarning``: an environment
locked for another Python, loaded here because everything in it can load (it was resolved for
that Python, though).
"""

from __future__ import annotations

# typing and collections.abc (~3 ms) only for the type checker: `import envknit` loads this
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "CExtIncompatibleError", "CExtensionError", "ClusterMismatchError", "ConfigError",
    "EntryMissingError", "EnvknitError", "EnvknitTimeoutError", "HostImportRefusedError",
    "IntegrityError",
    "InterpreterClosedError", "InterpreterNotFoundError", "InvalidNameError", "LockError",
    "LockSchemaError", "MessageTooLargeError", "NodeNotFoundError", "ProtocolError",
    "RemoteError", "ResolverError", "StoreError", "StrictModeError", "SubInterpreterError",
    "TargetPythonError", "UnknownEnvironmentError", "EnvknitWarning", "TargetPythonWarning",
    "UnsupportedPlatformError", "VersionNotInstalledError", "WorkerCrashedError", "WorkerError",
    "WorkerRemoteError",
]


def quoted(value: object, limit: int = 40) -> str:  # not an error: outside __all__
    """A user-supplied ``value`` for a one-line message: its repr (newlines and control
    characters escaped, so a crafted name cannot print a line of its own) cut to ``limit``
    characters, or what kind of thing it is when it is not a string.

    Never ``str()`` of an arbitrary value: a YAML file can hand us a list of a billion items.
    """
    if not isinstance(value, str):
        return f"(a {type(value).__name__}, not a string)"
    if len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    return repr(value)


def _where(path: str | None, field: str | None, *, quote: bool) -> str:
    """``path: field: `` for a message; the field quoted if ``quote``, and either quoted
    anyway when it holds control characters (a field names a user's key: no fake lines)."""
    where = ""
    if path:
        where += f"{path if path.isprintable() else repr(path)}: "
    if field:
        if quote or not field.isprintable():
            where += f"{quoted(field, 80)}: "
        else:
            where += f"{field if len(field) <= 80 else field[:80] + '...'}: "
    return where


class EnvknitError(Exception):
    """Root of every error envknit raises."""

    __module__ = "envknit"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Users import these from ``envknit``; tracebacks and reprs should say so. Subclasses
        # defined elsewhere (a user's own, say) keep their module.
        if cls.__module__ == __name__:
            cls.__module__ = "envknit"


class _LocatedError(EnvknitError, ValueError):
    """A problem in a file: ``path`` and ``field`` (when given) prefix the message."""

    _quote_field = False

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None):
        self.path = path
        self.field = field
        super().__init__(f"{_where(path, field, quote=self._quote_field)}{message}")


class ConfigError(_LocatedError):
    """``envknit.yaml`` is missing, malformed or invalid."""


class LockError(_LocatedError):
    """``envknit.lock.yaml`` is malformed or invalid; ``field`` names the offending field."""

    _quote_field = True  # lock fields are paths such as 'packages[0].version'


class LockSchemaError(LockError):
    """The lock's ``schema_version`` has a major version this envknit does not know."""

    def __init__(self, found: str, supported: str, *, path: str | None = None):
        self.found = found
        self.supported = supported
        super().__init__(
            f"schema_version {found!r} is not supported (this envknit reads {supported}); "
            "upgrade envknit or re-create the lock with 'envknit lock'",
            path=path,
            field="schema_version",
        )


class UnknownEnvironmentError(EnvknitError, LookupError):
    """An environment name that the config or lock does not define."""

    def __init__(self, name: str, available: Sequence[str], *, source: str = "the lock"):
        self.name = name
        self.available = tuple(available)
        names = ", ".join(quoted(n) for n in self.available) or "none"
        super().__init__(
            f"unknown environment {quoted(name)} in {source}; environments: {names}"
        )


class InvalidNameError(EnvknitError, ValueError):
    """A package name, version or environment name that is malformed or unsafe."""

    def __init__(self, kind: str, value: object, reason: str):
        self.kind = kind
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {kind} {quoted(value)}: {reason}")


class StoreError(EnvknitError):
    """A problem with the global store."""


class EntryMissingError(StoreError):
    """A locked package has no complete entry in the store."""

    def __init__(self, name: str, version: str, *, env: str | None = None):
        self.name = name
        self.version = version
        self.env = env
        in_env = f" (environment {env!r})" if env else ""
        hint = f"envknit install --env {env}" if env else "envknit install"
        super().__init__(
            f"{name}=={version}{in_env} is locked but not installed in the store; run '{hint}'"
        )


class IntegrityError(StoreError):
    """A file or distribution whose hash does not match what was recorded."""


class ResolverError(EnvknitError):
    """uv failed to resolve or install; the message carries uv's own output."""


class InterpreterNotFoundError(EnvknitError, LookupError):
    """No Python interpreter of the requested version could be found.

    ``places`` says where envknit looked, ``searched`` the interpreters it found there (none of
    them the wanted version).
    """

    def __init__(
        self, version: str, searched: Sequence[str] = (), *, places: Sequence[str] = (),
        needed_by: str = "",
    ):
        self.version = version
        self.searched = tuple(searched)
        self.places = tuple(places)
        self.needed_by = needed_by
        where = "; searched " + ", ".join(self.places) if self.places else ""
        seen = "; found only " + ", ".join(self.searched) if self.searched else ""
        who = f"{needed_by} targets Python {version}, but " if needed_by else ""
        relock = (", or re-lock it for a Python you have (its python_version in envknit.yaml, "
                  "then 'envknit lock')" if needed_by else "")
        super().__init__(
            f"{who}no Python {version} interpreter found{where}{seen}; install it "
            f"('pyenv install {version}' or 'uv python install {version}'; envknit never "
            f"downloads one){relock}"
        )


class UnsupportedPlatformError(EnvknitError, RuntimeError):
    """The running Python cannot provide the requested feature."""


def _py(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _relock_advice(env: str, running: tuple[int, int]) -> str:
    here = _py(running)
    return (f"re-lock it for Python {here} (python_version: \"{here}\" for '{env}' in "
            f"envknit.yaml, then 'envknit lock --env {env}' and 'envknit install --env {env}'), "
            f"or add an environment for {here}")


class TargetPythonError(EnvknitError, RuntimeError):
    """An environment whose installed packages were built for its target Python, not this one."""

    def __init__(
        self, *, env: str, lock_path: str, target: tuple[int, int], running: tuple[int, int],
        foreign: Sequence[str],
    ):
        self.env = env
        self.lock_path = lock_path
        self.target = target
        self.running = running
        self.foreign = tuple(foreign)
        verb = "is" if len(self.foreign) == 1 else "are"
        super().__init__(
            f"{lock_path}: environment '{env}' targets Python {_py(target)}, this is Python "
            f"{_py(running)}: {', '.join(self.foreign)} {verb} installed for Python "
            f"{_py(target)} only and cannot load here; {_relock_advice(env, running)}, or use "
            "envknit.worker(), which runs the environment's own Python"
        )


class EnvknitWarning(UserWarning):
    """Root of the warnings envknit issues."""

    __module__ = "envknit"


class TargetPythonWarning(EnvknitWarning):
    """An environment locked for another Python, loaded here: it loads, but was resolved for
    that Python (dependency markers and wheels may differ on this one)."""

    __module__ = "envknit"

    def __init__(
        self, *, env: str, lock_path: str, target: tuple[int, int], running: tuple[int, int],
        foreign: Sequence[str] = (),
    ):
        self.env = env
        self.lock_path = lock_path
        self.target = target
        self.running = running
        self.foreign = tuple(foreign)
        if self.foreign:
            loads = (f"{', '.join(self.foreign)} {'is' if len(self.foreign) == 1 else 'are'} "
                     f"installed for Python {_py(target)} only (use() of "
                     f"{'it' if len(self.foreign) == 1 else 'them'} fails here; "
                     "envknit.worker() runs the environment's own Python)")
        else:
            loads = "its packages load here"
        super().__init__(
            f"{lock_path}: environment '{env}' targets Python {_py(target)}, this is Python "
            f"{_py(running)}; {loads}, but it was resolved for {_py(target)}: "
            f"{_relock_advice(env, running)}"
        )


class RemoteError(EnvknitError, RuntimeError):
    """An exception raised on the other side of an isolation boundary.

    ``remote_type`` is the remote exception's qualified type name, ``remote_message`` its
    message and ``remote_traceback`` the remote traceback text.
    """

    where = "remote"

    def __init__(self, remote_type: str, remote_message: str, remote_traceback: str = ""):
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        text = f"{remote_type}: {remote_message}" if remote_message else remote_type
        msg = f"{text} (raised {self.where})"
        if remote_traceback:
            msg += "\n\nRemote traceback:\n" + remote_traceback.rstrip()
        super().__init__(msg)


class SubInterpreterError(RemoteError):
    """An exception raised by code running inside a sub-interpreter."""

    where = "in a sub-interpreter"


class WorkerRemoteError(RemoteError):
    """An exception raised by code running inside a worker process."""

    where = "in a worker process"


class InterpreterClosedError(EnvknitError, RuntimeError):
    """A sub-interpreter handle used after it was closed."""


class EnvknitTimeoutError(EnvknitError, TimeoutError):
    """A call into a sub-interpreter or worker did not finish within its timeout."""


class CExtIncompatibleError(EnvknitError, ImportError):
    """A C extension module cannot be loaded inside a sub-interpreter."""

    def __init__(self, module: str, detail: str = ""):
        self.module = module
        self.detail = detail
        because = f" ({detail})" if detail else ""
        super().__init__(
            f"{module!r} needs a C extension that cannot load in a sub-interpreter{because}; "
            f"run it in a worker process instead: envknit.worker({module!r}, version)",
            name=module,
        )


class HostImportRefusedError(EnvknitError, ImportError):
    """The host imports an extension module whose init function already ran in a refusing
    sub-interpreter (CPython 3.12); loading it now would abort the process."""

    def __init__(self, module: str, origin: str):
        self.module = module
        self.origin = origin
        super().__init__(
            f"envknit refuses to import {module!r} ({origin}) in this process: a "
            "sub-interpreter already ran its init function and refused it, and on CPython "
            "3.12 loading it again aborts the process (python/cpython#117953). Import it "
            "before creating the first SubInterpreterEnv, or use it in envknit.worker()",
            name=module,
            path=origin,
        )


class CExtensionError(EnvknitError, ImportError):
    """``use()`` of a package with compiled extensions, which cannot load twice in a process."""

    def __init__(self, name: str, version: str, extensions: Sequence[str] = ()):
        self.package = name
        self.version = version
        self.extensions = tuple(extensions)
        shown = ", ".join(self.extensions[:3]) + (" ..." if len(self.extensions) > 3 else "")
        files = f" ({shown})" if shown else ""
        super().__init__(
            f"{name}=={version} has compiled extensions{files} and cannot be loaded side by side "
            f"in one process; use envknit.use({name!r}, {version!r}, auto_worker=True) or "
            f"envknit.worker({name!r}, {version!r})",
            name=name,
        )


class VersionNotInstalledError(EnvknitError, ModuleNotFoundError):
    """A requested version that is not installed; names the versions that are."""

    def __init__(self, name: str, version: str, available: Sequence[str]):
        self.package = name
        self.version = version
        self.available = tuple(available)
        have = ", ".join(self.available) if self.available else "none"
        super().__init__(
            f"{name}=={version} is not installed; installed versions: {have} "
            "(add it to envknit.yaml, then run 'envknit lock' and 'envknit install')",
            name=name,
        )


class StrictModeError(EnvknitError, ImportError):
    """A plain import of an envknit-managed package outside any ``use()`` block, in strict mode."""

    def __init__(self, name: str, versions: Sequence[str] = ()):
        self.package = name
        self.versions = tuple(versions)
        have = ", ".join(self.versions) if self.versions else "none"
        super().__init__(
            f"strict mode: {name!r} is managed by envknit (versions: {have}); import it inside "
            f"'with envknit.use({name!r}, version):' or choose one with envknit.set_default()",
            name=name,
        )


class WorkerError(EnvknitError, RuntimeError):
    """A worker process failed."""


class WorkerCrashedError(WorkerError):
    """A worker process died: ``signal`` or ``exit_code`` says how."""

    def __init__(self, message: str, *, exit_code: int | None = None, signal: str | None = None):
        self.exit_code = exit_code
        self.signal = signal
        super().__init__(message)


class ProtocolError(WorkerError):
    """A malformed frame or a protocol version mismatch between host and worker."""


class MessageTooLargeError(WorkerError, ValueError):
    """A message larger than the documented limit."""

    def __init__(self, size: int, limit: int, *, buffers: bool = False):
        self.size = size
        self.limit = limit
        self.buffers = buffers
        if buffers:  # the binary lane's guard, not the JSON frame's
            super().__init__(
                f"buffers of {size} bytes in one call exceed the limit of {limit} bytes; "
                "raise it with the ENVKNIT_MAX_BUFFER_BYTES environment variable"
            )
            return
        super().__init__(
            f"message of {size} bytes exceeds the limit of {limit} bytes; "
            "keep large data in the worker (a proxy) or pass it in smaller pieces"
        )


class ClusterMismatchError(EnvknitError, RuntimeError):
    """A locked environment that the Ray cluster cannot run as locked (Python, platform)."""

    def __init__(self, env: str, reason: str, hint: str):
        self.env = env
        self.reason = reason
        self.hint = hint
        super().__init__(f"environment {env!r} cannot run on this Ray cluster: {reason}; {hint}")


class NodeNotFoundError(EnvknitError, LookupError):
    """No installed Node.js matches an environment's ``node_version``."""

    def __init__(self, version: str, env: str, searched: Sequence[str] = ()):
        self.version = version
        self.env = env
        self.searched = tuple(searched)
        where = "; searched: " + ", ".join(self.searched) if self.searched else ""
        super().__init__(
            f"environment {env!r} needs Node {version}, which is not installed{where}; "
            f"install it with 'fnm install {version}' (or nvm install / mise install "
            f"node@{version} / volta install node@{version})"
        )
