"""The error tree: one root, builtin meanings kept, messages built from fields."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import envknit
from envknit import errors

# Every public error's public ancestry (private helper bases left out), nearest first.
ANCESTRY: dict[str, tuple[str, ...]] = {
    "CExtIncompatibleError": ("EnvknitError", "ImportError", "Exception"),
    "CExtensionError": ("EnvknitError", "ImportError", "Exception"),
    "ClusterMismatchError": ("EnvknitError", "RuntimeError", "Exception"),
    "ConfigError": ("EnvknitError", "ValueError", "Exception"),
    "EntryMissingError": ("StoreError", "EnvknitError", "Exception"),
    "EnvknitError": ("Exception",),
    "EnvknitTimeoutError": ("EnvknitError", "TimeoutError", "OSError", "Exception"),
    "HostImportRefusedError": ("EnvknitError", "ImportError", "Exception"),
    "IntegrityError": ("StoreError", "EnvknitError", "Exception"),
    "InterpreterClosedError": ("EnvknitError", "RuntimeError", "Exception"),
    "InterpreterNotFoundError": ("EnvknitError", "LookupError", "Exception"),
    "InvalidNameError": ("EnvknitError", "ValueError", "Exception"),
    "LockError": ("EnvknitError", "ValueError", "Exception"),
    "LockSchemaError": ("LockError", "EnvknitError", "ValueError", "Exception"),
    "MessageTooLargeError": (
        "WorkerError", "EnvknitError", "RuntimeError", "ValueError", "Exception",
    ),
    "NodeNotFoundError": ("EnvknitError", "LookupError", "Exception"),
    "ProtocolError": ("WorkerError", "EnvknitError", "RuntimeError", "Exception"),
    "RemoteError": ("EnvknitError", "RuntimeError", "Exception"),
    "ResolverError": ("EnvknitError", "Exception"),
    "StoreError": ("EnvknitError", "Exception"),
    "StrictModeError": ("EnvknitError", "ImportError", "Exception"),
    "SubInterpreterError": ("RemoteError", "EnvknitError", "RuntimeError", "Exception"),
    "TargetPythonError": ("EnvknitError", "RuntimeError", "Exception"),
    "UnknownEnvironmentError": ("EnvknitError", "LookupError", "Exception"),
    "UnsupportedPlatformError": ("EnvknitError", "RuntimeError", "Exception"),
    "VersionNotInstalledError": (
        "EnvknitError", "ModuleNotFoundError", "ImportError", "Exception",
    ),
    "WorkerCrashedError": ("WorkerError", "EnvknitError", "RuntimeError", "Exception"),
    "WorkerError": ("EnvknitError", "RuntimeError", "Exception"),
    "WorkerRemoteError": ("RemoteError", "EnvknitError", "RuntimeError", "Exception"),
    # the warnings, outside the error tree
    "EnvknitWarning": ("UserWarning", "Warning", "Exception"),
    "TargetPythonWarning": ("EnvknitWarning", "UserWarning", "Warning", "Exception"),
}
WARNINGS = {"EnvknitWarning", "TargetPythonWarning"}

# (constructor call, the exact message it builds)
MESSAGES: list[tuple[Callable[[], BaseException], str]] = [
    (lambda: errors.ConfigError("bad"), "bad"),
    (lambda: errors.ConfigError("bad", path="a/envknit.yaml"), "a/envknit.yaml: bad"),
    (lambda: errors.ConfigError("bad", field="environments.x"), "environments.x: bad"),
    (
        lambda: errors.ConfigError("bad", path="p.yaml", field="environments.x"),
        "p.yaml: environments.x: bad",
    ),
    (lambda: errors.LockError("bad"), "bad"),
    (lambda: errors.LockError("bad", path="l.yaml"), "l.yaml: bad"),
    (
        lambda: errors.LockError("bad", path="l.yaml", field="packages[0].version"),
        "l.yaml: 'packages[0].version': bad",
    ),
    (
        lambda: errors.LockSchemaError("9.0", "1.x", path="l.yaml"),
        "l.yaml: 'schema_version': schema_version '9.0' is not supported (this envknit reads "
        "1.x); upgrade envknit or re-create the lock with 'envknit lock'",
    ),
    (
        lambda: errors.UnknownEnvironmentError("ml", ["a", "b"]),
        "unknown environment 'ml' in the lock; environments: 'a', 'b'",
    ),
    (
        lambda: errors.UnknownEnvironmentError("ml", [], source="envknit.yaml"),
        "unknown environment 'ml' in envknit.yaml; environments: none",
    ),
    (
        lambda: errors.InvalidNameError("package name", "../x", "not a name"),
        "invalid package name '../x': not a name",
    ),
    (lambda: errors.StoreError("s"), "s"),
    (
        lambda: errors.EntryMissingError("attrs", "23.1.0"),
        "attrs==23.1.0 is locked but not installed in the store; run 'envknit install'",
    ),
    (
        lambda: errors.EntryMissingError("attrs", "23.1.0", env="ml"),
        "attrs==23.1.0 (environment 'ml') is locked but not installed in the store; "
        "run 'envknit install --env ml'",
    ),
    (lambda: errors.IntegrityError("hash"), "hash"),
    (
        lambda: errors.ClusterMismatchError("old", "it is locked for Python 3.11", "re-lock"),
        "environment 'old' cannot run on this Ray cluster: it is locked for Python 3.11; re-lock",
    ),
    (
        lambda: errors.NodeNotFoundError("20", "web", ["/n"]),
        "environment 'web' needs Node 20, which is not installed; searched: /n; install it with "
        "'fnm install 20' (or nvm install / mise install node@20 / volta install node@20)",
    ),
    (lambda: errors.ResolverError("uv said no"), "uv said no"),
    (
        lambda: errors.InterpreterNotFoundError("3.9"),
        "no Python 3.9 interpreter found; install it ('pyenv install 3.9' or "
        "'uv python install 3.9'; envknit never downloads one)",
    ),
    (
        lambda: errors.InterpreterNotFoundError("3.9", ["/a (3.11.7)"], places=["PATH (x)"],
                                                needed_by="environment 'ml' of /p/l.yaml"),
        "environment 'ml' of /p/l.yaml targets Python 3.9, but no Python 3.9 interpreter "
        "found; searched PATH (x); found only /a (3.11.7); install it ('pyenv install 3.9' "
        "or 'uv python install 3.9'; envknit never downloads one), or re-lock it for a "
        "Python you have (its python_version in envknit.yaml, then 'envknit lock')",
    ),
    (
        lambda: errors.TargetPythonError(env="ml", lock_path="l.yaml", target=(3, 12),
                                         running=(3, 13), foreign=["numpy 1.26.4"]),
        "l.yaml: environment 'ml' targets Python 3.12, this is Python 3.13: numpy 1.26.4 is "
        "installed for Python 3.12 only and cannot load here; re-lock it for Python 3.13 "
        "(python_version: \"3.13\" for 'ml' in envknit.yaml, then 'envknit lock --env ml' and "
        "'envknit install --env ml'), or add an environment for 3.13, or use envknit.worker(), "
        "which runs the environment's own Python",
    ),
    (
        lambda: errors.TargetPythonWarning(env="ml", lock_path="l.yaml", target=(3, 12),
                                           running=(3, 13)),
        "l.yaml: environment 'ml' targets Python 3.12, this is Python 3.13; its packages load "
        "here, but it was resolved for 3.12: re-lock it for Python 3.13 (python_version: "
        "\"3.13\" for 'ml' in envknit.yaml, then 'envknit lock --env ml' and 'envknit install "
        "--env ml'), or add an environment for 3.13",
    ),
    (
        lambda: errors.TargetPythonWarning(env="ml", lock_path="l.yaml", target=(3, 12),
                                           running=(3, 13), foreign=["a 1", "b 2"]),
        "l.yaml: environment 'ml' targets Python 3.12, this is Python 3.13; a 1, b 2 are "
        "installed for Python 3.12 only (use() of them fails here; envknit.worker() runs the "
        "environment's own Python), but it was resolved for 3.12: re-lock it for Python 3.13 "
        "(python_version: \"3.13\" for 'ml' in envknit.yaml, then 'envknit lock --env ml' "
        "and 'envknit install --env ml'), or add an environment for 3.13",
    ),
    (lambda: errors.UnsupportedPlatformError("no"), "no"),
    (lambda: errors.RemoteError("T", ""), "T (raised remote)"),
    (lambda: errors.RemoteError("T", "m"), "T: m (raised remote)"),
    (
        lambda: errors.SubInterpreterError("ValueError", "boom", "File x\nValueError: boom\n"),
        "ValueError: boom (raised in a sub-interpreter)\n\nRemote traceback:\n"
        "File x\nValueError: boom",
    ),
    (
        lambda: errors.WorkerRemoteError("KeyError", "'k'"),
        "KeyError: 'k' (raised in a worker process)",
    ),
    (lambda: errors.InterpreterClosedError("closed"), "closed"),
    (lambda: errors.EnvknitTimeoutError("slow"), "slow"),
    (
        lambda: errors.CExtIncompatibleError("numpy"),
        "'numpy' needs a C extension that cannot load in a sub-interpreter; run it in a worker "
        "process instead: envknit.worker('numpy', version)",
    ),
    (
        lambda: errors.CExtIncompatibleError("numpy", "single-phase init"),
        "'numpy' needs a C extension that cannot load in a sub-interpreter (single-phase init); "
        "run it in a worker process instead: envknit.worker('numpy', version)",
    ),
    (
        lambda: errors.HostImportRefusedError("_x", "/lib/_x.so"),
        "envknit refuses to import '_x' (/lib/_x.so) in this process: a sub-interpreter already "
        "ran its init function and refused it, and on CPython 3.12 loading it again aborts the "
        "process (python/cpython#117953). Import it before creating the first SubInterpreterEnv, "
        "or use it in envknit.worker()",
    ),
    (
        lambda: errors.CExtensionError("np", "1.0"),
        "np==1.0 has compiled extensions and cannot be loaded side by side in one process; "
        "use envknit.use('np', '1.0', auto_worker=True) or envknit.worker('np', '1.0')",
    ),
    (
        lambda: errors.CExtensionError("np", "1.0", ["a.so", "b.so", "c.so", "d.so"]),
        "np==1.0 has compiled extensions (a.so, b.so, c.so ...) and cannot be loaded side by "
        "side in one process; use envknit.use('np', '1.0', auto_worker=True) or "
        "envknit.worker('np', '1.0')",
    ),
    (
        lambda: errors.VersionNotInstalledError("mylib", "3.0", ["1.0.0", "2.0.0"]),
        "mylib==3.0 is not installed; installed versions: 1.0.0, 2.0.0 (add it to envknit.yaml, "
        "then run 'envknit lock' and 'envknit install')",
    ),
    (
        lambda: errors.VersionNotInstalledError("mylib", "3.0", []),
        "mylib==3.0 is not installed; installed versions: none (add it to envknit.yaml, "
        "then run 'envknit lock' and 'envknit install')",
    ),
    (
        lambda: errors.StrictModeError("mylib", ["1.0", "2.0"]),
        "strict mode: 'mylib' is managed by envknit (versions: 1.0, 2.0); import it inside "
        "'with envknit.use('mylib', version):' or choose one with envknit.set_default()",
    ),
    (
        lambda: errors.StrictModeError("mylib"),
        "strict mode: 'mylib' is managed by envknit (versions: none); import it inside "
        "'with envknit.use('mylib', version):' or choose one with envknit.set_default()",
    ),
    (lambda: errors.WorkerError("w"), "w"),
    (lambda: errors.WorkerCrashedError("died", exit_code=3), "died"),
    (lambda: errors.ProtocolError("bad frame"), "bad frame"),
    (
        lambda: errors.MessageTooLargeError(10, 4),
        "message of 10 bytes exceeds the limit of 4 bytes; keep large data in the worker "
        "(a proxy) or pass it in smaller pieces",
    ),
]


def test_every_error_derives_from_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        root = envknit.EnvknitWarning if name in WARNINGS else envknit.EnvknitError
        assert issubclass(cls, root), name
        assert cls.__module__ == "envknit"
        assert getattr(envknit, name) is cls


def test_public_ancestry_is_pinned() -> None:
    assert set(ANCESTRY) == set(errors.__all__)
    for name, expected in ANCESTRY.items():
        mro = getattr(errors, name).__mro__[1:]
        public = tuple(
            k.__name__ for k in mro if not k.__name__.startswith("_")
            and k not in (BaseException, object)
        )
        assert public == expected, name


def test_every_public_error_is_constructed_here() -> None:
    built = {type(make()).__name__ for make, _ in MESSAGES}
    assert built == set(errors.__all__) - {"EnvknitError", "EnvknitWarning"}


@pytest.mark.parametrize(("make", "message"), MESSAGES)
def test_message_built_from_fields(make: Callable[[], BaseException], message: str) -> None:
    err = make()
    assert str(err) == message
    assert err.args == (message,)


def test_builtin_meanings() -> None:
    assert issubclass(envknit.CExtIncompatibleError, ImportError)
    assert issubclass(envknit.CExtensionError, ImportError)
    assert issubclass(envknit.VersionNotInstalledError, ModuleNotFoundError)
    assert issubclass(envknit.UnsupportedPlatformError, RuntimeError)
    assert issubclass(envknit.SubInterpreterError, RuntimeError)
    assert issubclass(envknit.EnvknitTimeoutError, TimeoutError)


def test_structured_fields() -> None:
    cfg = errors.ConfigError("bad", path="p", field="f")
    assert (cfg.path, cfg.field) == ("p", "f")
    lock = errors.LockSchemaError("9.0", "1.x", path="l")
    assert (lock.found, lock.supported, lock.path, lock.field) == ("9.0", "1.x", "l",
                                                                   "schema_version")
    unknown = errors.UnknownEnvironmentError("ml", ["a"])
    assert (unknown.name, unknown.available) == ("ml", ("a",))
    bad = errors.InvalidNameError("version", "x y", "spaces")
    assert (bad.kind, bad.value, bad.reason) == ("version", "x y", "spaces")
    missing = errors.EntryMissingError("a", "1", env="e")
    assert (missing.name, missing.version, missing.env) == ("a", "1", "e")
    nopy = errors.InterpreterNotFoundError("3.9", ["/a"], places=["p"], needed_by="e")
    assert (nopy.version, nopy.searched, nopy.places, nopy.needed_by) == ("3.9", ("/a",),
                                                                          ("p",), "e")
    other = errors.TargetPythonError(env="e", lock_path="l", target=(3, 1), running=(3, 2),
                                     foreign=["a 1"])
    assert (other.env, other.lock_path, other.target, other.running, other.foreign) == (
        "e", "l", (3, 1), (3, 2), ("a 1",),
    )
    remote = errors.WorkerRemoteError("T", "m", "tb")
    assert (remote.remote_type, remote.remote_message, remote.remote_traceback) == (
        "T", "m", "tb",
    )
    cext = errors.CExtIncompatibleError("numpy", "why")
    assert (cext.module, cext.detail, cext.name, cext.msg) == ("numpy", "why", "numpy", str(cext))
    comp = errors.CExtensionError("np", "1", ["a.so"])
    assert (comp.package, comp.version, comp.extensions, comp.name) == ("np", "1", ("a.so",), "np")
    absent = errors.VersionNotInstalledError("m", "3", ["1"])
    assert (absent.package, absent.version, absent.available, absent.name) == (
        "m", "3", ("1",), "m",
    )
    strict = errors.StrictModeError("m", ["1"])
    assert (strict.package, strict.versions, strict.name) == ("m", ("1",), "m")
    crashed = errors.WorkerCrashedError("died", signal="SIGKILL")
    assert (crashed.exit_code, crashed.signal) == (None, "SIGKILL")
    big = errors.MessageTooLargeError(10, 4)
    assert (big.size, big.limit) == (10, 4)


def test_a_subclass_outside_envknit_keeps_its_own_module() -> None:
    class MyError(errors.StoreError):
        pass

    assert MyError.__module__ == __name__
