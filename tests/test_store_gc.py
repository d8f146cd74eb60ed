"""``store gc`` from the library side: what it keeps when installs run at the same time."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from envknit.lock import LockedEnvironment
from envknit.store import maintenance
from envknit.store.install import install_environment
from envknit.store.layout import entry_dir, iter_entries
from envknit.store.maintenance import collect_garbage
from tests._builders import make_store_entry

PY = "{}.{}".format(*sys.version_info[:2])


def test_gc_keeps_entries_finished_after_it_began(envknit_home: Path) -> None:
    # no registered project needs either entry; 'late' was completed by an install that ran
    # while gc was working (so its lock may be newer than the one gc read): it must stay
    old = make_store_entry(envknit_home, "old", "1.0")
    late = make_store_entry(envknit_home, "late", "1.0")
    later = time.time() + 3600
    os.utime(entry_dir(late.name, late.version, late.files[0].sha256, envknit_home),
             (later, later))
    result = collect_garbage(envknit_home)
    assert [e.name for e in result.removed] == [old.name]
    assert result.kept == 1
    assert [e.name for e in iter_entries(envknit_home)] == ["late"]


def test_gc_keeps_entries_an_install_reuses_meanwhile(
    envknit_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an install of a project whose lock gc has not seen reuses 'shared' while gc reads the
    # registered locks (none of which needs it): gc must not delete it under that install
    shared = make_store_entry(envknit_home, "shared", "1.0")
    make_store_entry(envknit_home, "unused", "1.0")
    for entry in iter_entries(envknit_home):
        os.utime(entry.path, (1, 1))  # both were installed long ago
    env = LockedEnvironment(name="default", python_version=PY, packages=(shared,))
    real_needed = maintenance._needed

    def needed_while_installing(home: Path) -> tuple[set[tuple[str, str, str]], list[str]]:
        result = install_environment(env, python_exe=Path(sys.executable),
                                     python=sys.version_info[:2], home=home)
        assert [e.name for e in result.reused] == ["shared"] and not result.installed
        return real_needed(home)

    monkeypatch.setattr(maintenance, "_needed", needed_while_installing)
    result = maintenance.collect_garbage(envknit_home)
    assert [e.name for e in result.removed] == ["unused"]
    assert [e.name for e in iter_entries(envknit_home)] == ["shared"]


def test_a_project_registers_without_fsync_and_a_torn_record_keeps_everything(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envknit.store.projects import register_project, registered_projects

    def no_fsync(fd: int) -> None:
        raise AssertionError("the registration is not synced (a lost one is harmless)")

    monkeypatch.setattr(os, "fsync", no_fsync)
    lock = tmp_path / "envknit.lock.yaml"
    lock.write_text("")
    record = register_project(lock, envknit_home)
    assert [r.lock for r in registered_projects(envknit_home)] == [lock.resolve()]
    record.write_text("")  # what a power cut may leave of an unsynced file
    assert [r.lock for r in registered_projects(envknit_home)] == [None]  # gc keeps all
