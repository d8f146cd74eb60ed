"""A fixture package for worker tests: it prints, fails, crashes, sleeps and returns C objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from envknit.lock import LockedPackage

from ._builders import make_store_entry, package_files, write_lock

__all__ = ["DEMO_SOURCE", "make_demo", "make_demo_project"]

DEMO_SOURCE = '''
import array
import builtins
import os
import signal
import sys
import time

print("demo imported: this goes to the worker's stdout", flush=True)


class CustomError(ValueError):
    pass


class Box:
    def __init__(self, value):
        self.value = value
        self.items = [value, value + 1, value + 2]

    def get(self):
        return self.value

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]

    def __iter__(self):
        return iter(self.items)

    def __repr__(self):
        return f"Box({self.value})"


def echo(value):
    return value


def noisy(value):
    print("noise " * 1000, flush=True)
    sys.stdout.write("\\x00\\x00\\x00\\x05{bad}")
    sys.stdout.flush()
    os.write(1, b"\\x00\\x00\\x00\\x02{}")
    print("more noise", file=sys.stderr, flush=True)
    return value


def fail(kind, message):
    raise getattr(builtins, kind)(message)


def custom():
    raise CustomError("custom failure")


def missing_file():
    open("/nonexistent/envknit/file")


def sleep(seconds):
    time.sleep(seconds)
    return seconds


def segfault():
    import ctypes

    ctypes.string_at(0)


def sigsegv():
    os.kill(os.getpid(), signal.SIGSEGV)


def hard_exit(code):
    os._exit(code)


def pid():
    return os.getpid()


def big(size):
    return b"x" * size


def repeat(text, times):
    return text * times


def cap_memory(extra):
    """Let this process's address space grow by ``extra`` bytes at most (Linux)."""
    import resource

    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (kib * 1024 + extra, resource.RLIM_INFINITY))


def numbers(n):
    return array.array("i", range(n))


def decimal(text):
    import decimal

    return decimal.Decimal(text)


def make_box(value):
    return Box(value)


def unbox(box):
    return box.get()


def can_import(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def info():
    flags = [sys.flags.isolated, sys.flags.no_site]
    version = list(sys.version_info[:2])
    return {"path": sys.path, "executable": sys.executable, "flags": flags, "version": version}
'''


def make_demo(
    home: Path, lock_path: Path, version: str = "1.0", python_version: str | None = None
) -> LockedPackage:
    """A store entry for ``demo==version`` and a lock (environment ``default``) pinning it."""
    files = package_files("demo", version, {"core.py": DEMO_SOURCE})
    init = f"__version__ = {version!r}\nfrom .core import *\nfrom . import core\n"
    files["demo/__init__.py"] = init
    pkg = make_store_entry(home, "demo", version, files)
    write_lock(lock_path, {"default": [pkg]}, python_version=python_version)
    return pkg



def make_demo_project(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``demo==1.0`` installed and locked in ``./envknit.lock.yaml`` of a fresh working dir."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    lock = project / "envknit.lock.yaml"
    make_demo(home, lock)
    return lock
