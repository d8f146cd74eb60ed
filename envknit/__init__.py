"""envknit: several versions of a package in one Python process.

Importing envknit changes nothing: no import hook is installed and no directory is created.
"""

from ._subinterp import SubInterpreterEnv as SubInterpreterEnv
from ._version import __version__ as __version__
from .errors import (
    CExtensionError as CExtensionError,
    CExtIncompatibleError as CExtIncompatibleError,
    ConfigError as ConfigError,
    EntryMissingError as EntryMissingError,
    EnvknitError as EnvknitError,
    EnvknitTimeoutError as EnvknitTimeoutError,
    IntegrityError as IntegrityError,
    InterpreterClosedError as InterpreterClosedError,
    InterpreterNotFoundError as InterpreterNotFoundError,
    InvalidNameError as InvalidNameError,
    LockError as LockError,
    LockSchemaError as LockSchemaError,
    MessageTooLargeError as MessageTooLargeError,
    ProtocolError as ProtocolError,
    RemoteError as RemoteError,
    ResolverError as ResolverError,
    StoreError as StoreError,
    StrictModeError as StrictModeError,
    SubInterpreterError as SubInterpreterError,
    UnknownEnvironmentError as UnknownEnvironmentError,
    UnsupportedPlatformError as UnsupportedPlatformError,
    VersionNotInstalledError as VersionNotInstalledError,
    WorkerCrashedError as WorkerCrashedError,
    WorkerError as WorkerError,
    WorkerRemoteError as WorkerRemoteError,
)
from .routing import (
    ContextExecutor as ContextExecutor,
    ContextThread as ContextThread,
    configure_from_lock as configure_from_lock,
    context_wrap as context_wrap,
    disable as disable,
    enable as enable,
    import_version as import_version,
    set_default as set_default,
    use as use,
)
from .worker import (
    WorkerProxy as WorkerProxy,
    shutdown_workers as shutdown_workers,
    worker as worker,
)
