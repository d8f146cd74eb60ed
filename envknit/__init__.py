"""envknit: several versions of a package in one Python process.

Importing envknit changes nothing: no import hook is installed and no directory is created.
``SubInterpreterEnv``, the Gen 1 routing API and the worker API load on first use (PEP 562), so
that a bare ``import envknit`` and the ``envknit`` command stay lean: ``envknit run`` has a
start-up budget (docs/benchmarks.md), and every module-level import here is paid by every command.
"""


from ._version import __version__ as __version__
from .errors import (
    CExtensionError as CExtensionError,
    CExtIncompatibleError as CExtIncompatibleError,
    ClusterMismatchError as ClusterMismatchError,
    ConfigError as ConfigError,
    EntryMissingError as EntryMissingError,
    EnvknitError as EnvknitError,
    EnvknitTimeoutError as EnvknitTimeoutError,
    EnvknitWarning as EnvknitWarning,
    HostImportRefusedError as HostImportRefusedError,
    IntegrityError as IntegrityError,
    InterpreterClosedError as InterpreterClosedError,
    InterpreterNotFoundError as InterpreterNotFoundError,
    InvalidNameError as InvalidNameError,
    LockError as LockError,
    LockSchemaError as LockSchemaError,
    MessageTooLargeError as MessageTooLargeError,
    NodeNotFoundError as NodeNotFoundError,
    ProtocolError as ProtocolError,
    RemoteError as RemoteError,
    ResolverError as ResolverError,
    StoreError as StoreError,
    StrictModeError as StrictModeError,
    SubInterpreterError as SubInterpreterError,
    TargetPythonError as TargetPythonError,
    TargetPythonWarning as TargetPythonWarning,
    UnknownEnvironmentError as UnknownEnvironmentError,
    UnsupportedPlatformError as UnsupportedPlatformError,
    VersionNotInstalledError as VersionNotInstalledError,
    WorkerCrashedError as WorkerCrashedError,
    WorkerError as WorkerError,
    WorkerRemoteError as WorkerRemoteError,
)

# not typing.TYPE_CHECKING: importing typing would cost every `import envknit` ~3 ms
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._subinterp import SubInterpreterEnv as SubInterpreterEnv
    from ._worker import (
        WorkerProxy as WorkerProxy,
        shutdown_workers as shutdown_workers,
        worker as worker,
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

_LAZY = {
    "SubInterpreterEnv": "._subinterp",
    "ContextExecutor": ".routing",
    "ContextThread": ".routing",
    "configure_from_lock": ".routing",
    "context_wrap": ".routing",
    "disable": ".routing",
    "enable": ".routing",
    "import_version": ".routing",
    "set_default": ".routing",
    "use": ".routing",
    "WorkerProxy": "._worker",
    "shutdown_workers": "._worker",
    "worker": "._worker",
}


def __getattr__(name: str) -> object:
    """Import the sub-module that defines ``name`` on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'envknit' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
