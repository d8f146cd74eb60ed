"""The public API is pinned: names exist, report module 'envknit', importing changes nothing."""

from __future__ import annotations

import subprocess
import sys

import envknit

SPEC_NAMES = {
    "use", "import_version", "enable", "disable", "set_default", "configure_from_lock", "worker",
    "context_wrap", "ContextThread", "ContextExecutor", "SubInterpreterEnv",
    "CExtIncompatibleError", "UnsupportedPlatformError", "CExtensionError", "EnvknitError",
    "__version__",
}


def test_spec_names_exported() -> None:
    missing = {n for n in SPEC_NAMES if not hasattr(envknit, n)}
    assert not missing


def test_import_has_no_side_effects(tmp_path: object) -> None:
    code = (
        "import sys, builtins; before = (list(sys.meta_path), builtins.__import__);"
        "import envknit; assert (list(sys.meta_path), builtins.__import__) == before;"
        "import os; assert not os.path.exists(os.environ['ENVKNIT_HOME'])"
    )
    home = f"{tmp_path}/home"
    env = {"ENVKNIT_HOME": home, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
