"""SubInterpreterEnv.configure_from_lock: store paths per environment, errors, reuse pool."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import envknit
from envknit.errors import EntryMissingError, UnknownEnvironmentError
from tests._builders import make_store_entry, package_files, write_lock
from tests._helpers import gen2, run_fresh

pytestmark = [gen2, pytest.mark.timeout(120)]

VERSION_CODE = "import demo_pkg\nresult = [demo_pkg.__version__, demo_pkg.__file__]"


def two_env_lock(home: Path, tmp_path: Path) -> Path:
    old = make_store_entry(home, "demo-pkg", "1.0.0")
    new = make_store_entry(
        home, "demo-pkg", "2.0.0",
        package_files("demo_pkg", "2.0.0", {"calc.py": "def double(x):\n    return 2 * x\n"}),
    )
    return write_lock(tmp_path / "envknit.lock.yaml", {"old": [old], "new": [new]})


def test_two_versions_side_by_side(envknit_home: Path, tmp_path: Path) -> None:
    lock = two_env_lock(envknit_home, tmp_path)
    with envknit.SubInterpreterEnv("old") as a, envknit.SubInterpreterEnv("new") as b:
        a.configure_from_lock(lock, env_name="old")
        b.configure_from_lock(lock, env_name="new")
        va, fa = a.eval_json(VERSION_CODE)
        vb, fb = b.eval_json(VERSION_CODE)
        assert (va, vb) == ("1.0.0", "2.0.0")
        assert fa.startswith(str(envknit_home)) and fb.startswith(str(envknit_home))
        assert b.call("demo_pkg.calc:double", 21) == 42
        with pytest.raises(envknit.SubInterpreterError, match="ModuleNotFoundError"):
            a.call("demo_pkg.calc:double", 21)
        paths = a.eval_json("import sys\nresult = sys.path")
        assert not any("site-packages" in p for p in paths)
        assert any(p.endswith("lib-dynload") for p in paths)
    assert importlib.util.find_spec("demo_pkg") is None  # the host never saw it


def test_reconfiguring_switches_versions(envknit_home: Path, tmp_path: Path) -> None:
    lock = two_env_lock(envknit_home, tmp_path)
    with envknit.SubInterpreterEnv("x") as interp:
        interp.configure_from_lock(lock, env_name="old")
        assert interp.eval_json(VERSION_CODE)[0] == "1.0.0"
        interp.configure_from_lock(lock, env_name="new")
        assert interp.eval_json(VERSION_CODE)[0] == "2.0.0"


def test_unknown_environment_names_the_existing_ones(
    envknit_home: Path, tmp_path: Path
) -> None:
    lock = two_env_lock(envknit_home, tmp_path)
    with envknit.SubInterpreterEnv("x") as interp:
        with pytest.raises(UnknownEnvironmentError) as info:
            interp.configure_from_lock(lock, env_name="nope")
        assert "nope" in str(info.value)
        assert "old" in str(info.value) and "new" in str(info.value)


def test_missing_store_entry_says_run_install(envknit_home: Path, tmp_path: Path) -> None:
    pkg = make_store_entry(envknit_home, "gone-pkg", "3.1.4")
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})
    for entry in (envknit_home / "store").rglob("ENTRY.json"):
        entry.unlink()
    with envknit.SubInterpreterEnv("x") as interp:
        with pytest.raises(EntryMissingError) as info:
            interp.configure_from_lock(lock)
        assert "gone-pkg" in str(info.value)
        assert "envknit install" in str(info.value)


def test_reuse_pool_keeps_a_warm_interpreter(envknit_home: Path, tmp_path: Path) -> None:
    lock = two_env_lock(envknit_home, tmp_path)
    with envknit.SubInterpreterEnv("pooled", reuse=True) as first:
        first.configure_from_lock(lock, env_name="new")
        first.run_string("import demo_pkg\ndemo_pkg.marker = 'kept'")
    with envknit.SubInterpreterEnv("pooled", reuse=True) as again:
        # same interpreter: module state persisted, the configuration too
        assert again.eval_json("import demo_pkg\nresult = demo_pkg.marker") == "kept"
        with pytest.raises(envknit.SubInterpreterError, match="NameError"):
            again.eval_json("result = leftover_name")  # namespaces stay fresh per call
    fresh = envknit.SubInterpreterEnv("pooled")  # reuse=False: a new interpreter
    with fresh, pytest.raises(envknit.SubInterpreterError, match="ModuleNotFoundError"):
        fresh.eval_json("import demo_pkg")


# Runs in a new process: a pooled interpreter and one never closed, both configured from a lock,
# are still alive when the interpreter finalizes.
LEFT_OPEN_AT_EXIT = """\
import os
import envknit

with envknit.SubInterpreterEnv("pooled", reuse=True) as pooled:
    pooled.configure_from_lock(os.environ["ENVKNIT_TEST_LOCK"], env_name="new")
    assert pooled.call("demo_pkg.calc:double", 21) == 42
left = envknit.SubInterpreterEnv("left").__enter__()
left.configure_from_lock(os.environ["ENVKNIT_TEST_LOCK"], env_name="old")
assert left.eval_json("import demo_pkg\\nresult = demo_pkg.__version__") == "1.0.0"
print("done")
"""


def test_configured_interpreters_left_open_finalize_cleanly(
    envknit_home: Path, tmp_path: Path
) -> None:
    lock = two_env_lock(envknit_home, tmp_path)
    proc = run_fresh(LEFT_OPEN_AT_EXIT, env={"ENVKNIT_TEST_LOCK": str(lock)})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "done\n", "")
