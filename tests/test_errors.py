"""The error tree: one root, builtin meanings kept, messages built from fields."""

from __future__ import annotations

import envknit
from envknit import errors


def test_every_error_derives_from_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, envknit.EnvknitError), name
        assert cls.__module__ == "envknit"
        assert getattr(envknit, name) is cls


def test_builtin_meanings() -> None:
    assert issubclass(envknit.CExtIncompatibleError, ImportError)
    assert issubclass(envknit.CExtensionError, ImportError)
    assert issubclass(envknit.VersionNotInstalledError, ModuleNotFoundError)
    assert issubclass(envknit.UnsupportedPlatformError, RuntimeError)
    assert issubclass(envknit.SubInterpreterError, RuntimeError)
    assert issubclass(envknit.EnvknitTimeoutError, TimeoutError)


def test_remote_error_message_carries_type_message_traceback() -> None:
    err = envknit.SubInterpreterError("ValueError", "boom", 'File "<x>", line 1\nValueError: boom')
    text = str(err)
    assert "ValueError: boom" in text and 'File "<x>", line 1' in text


def test_version_not_installed_names_available() -> None:
    err = envknit.VersionNotInstalledError("mylib", "3.0", ["1.0.0", "2.0.0"])
    assert "mylib==3.0" in str(err) and "1.0.0, 2.0.0" in str(err)
    assert err.name == "mylib"
