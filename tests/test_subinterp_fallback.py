"""SubInterpreterEnv(fallback="worker"): C-extension failures re-run in a worker process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import envknit
from tests._builders import make_store_entry, package_files, write_lock
from tests._helpers import gen2

pytestmark = [gen2, pytest.mark.timeout(180)]

CEXT_USER = {
    "native.py": (
        "import _testsinglephase  # a single-phase C extension: refused in sub-interpreters\n"
        "import os\n"
        "def where():\n"
        "    return {'pid': os.getpid(), 'mod': _testsinglephase.__name__}\n"
    ),
}


def cext_lock(home: Path, tmp_path: Path) -> Path:
    pkg = make_store_entry(
        home, "cext-user", "1.0.0", package_files("cext_user", "1.0.0", CEXT_USER)
    )
    return write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})


def test_eval_json_and_call_fall_back_to_a_worker(envknit_home: Path, tmp_path: Path) -> None:
    lock = cext_lock(envknit_home, tmp_path)
    try:
        with envknit.SubInterpreterEnv("x", fallback="worker") as interp:
            interp.configure_from_lock(lock)
            assert interp.try_import("cext_user.native") is False
            got = interp.eval_json(
                "from cext_user import native\nresult = native.where()['mod'] + suffix",
                suffix="!",
            )
            assert got == "_testsinglephase!"
            info = interp.call("cext_user.native:where")
            assert info["mod"] == "_testsinglephase"
            assert info["pid"] != os.getpid()  # it ran in another process
            assert interp.submit("import cext_user.native\nresult = 7").result(60) == 7
            # other errors are not re-routed
            with pytest.raises(envknit.SubInterpreterError, match="ValueError"):
                interp.eval_json("raise ValueError('not a C extension problem')")
    finally:
        envknit.shutdown_workers()


def test_without_fallback_the_import_error_surfaces(envknit_home: Path, tmp_path: Path) -> None:
    lock = cext_lock(envknit_home, tmp_path)
    with envknit.SubInterpreterEnv("x") as interp:
        interp.configure_from_lock(lock)
        with pytest.raises(envknit.SubInterpreterError) as info:
            interp.eval_json("import cext_user.native")
        assert "does not support loading in subinterpreters" in str(info.value)


def test_fallback_needs_a_configured_environment() -> None:
    with envknit.SubInterpreterEnv("x", fallback="worker") as interp:
        with pytest.raises(envknit.SubInterpreterError) as info:
            interp.eval_json("import _testsinglephase")
        notes = getattr(info.value, "__notes__", [])
        assert any("configure_from_lock" in n for n in notes)
