"""Real compiled packages from PyPI in sub-interpreters: verdicts, refusals, worker fallback.

Each case runs in a fresh host process (exit status 0, empty stderr, the right value). The
environments are locked and installed once per session with the real CLI, into a home and a uv
cache of the session's own; each case then starts from no verdicts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests._cli_helpers import ENVKNIT, PY
from tests._helpers import gen2

pytestmark = [gen2, pytest.mark.network, pytest.mark.timeout(900)]

# environment -> (requirement, import name, distribution whose version the import reports)
PACKAGES: dict[str, tuple[str, str, str]] = {
    "np2": ("numpy==2.1.3", "numpy", "numpy"),
    "orjson": ("orjson==3.10.12", "orjson", "orjson"),
    "pydantic": ("pydantic==2.10.3", "pydantic_core", "pydantic-core"),
    "pyyaml": ("PyYAML==6.0.2", "yaml", "pyyaml"),
    "markupsafe": ("MarkupSafe==3.0.2", "markupsafe", "markupsafe"),
}
if sys.version_info[:2] == (3, 12):
    PACKAGES["np1"] = ("numpy==1.26.4", "numpy", "numpy")


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A project with one environment per package, locked and installed once per session."""
    root = tmp_path_factory.mktemp("cext-net")
    env = dict(os.environ)
    env.update(ENVKNIT_HOME=str(root / "home"), UV_CACHE_DIR=str(root / "uv-cache"),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("VIRTUAL_ENV", None)
    config = {"environments": {name: {"python_version": PY, "packages": [req]}
                               for name, (req, _, _) in PACKAGES.items()}}
    (root / "envknit.yaml").write_text(json.dumps(config))
    for command in ("lock", "install"):
        proc = subprocess.run([str(ENVKNIT), command], cwd=root, env=env, capture_output=True,
                              text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr
    return root, env


CASE = textwrap.dedent("""\
    import json, sys
    import envknit
    from envknit.lock import load_lock
    env_name, module, dist = sys.argv[1:4]
    packages = load_lock("envknit.lock.yaml").environment(env_name).packages
    locked = {p.name: p.version for p in packages}
    out = {"locked": locked[dist]}
    # the example of issue 8, verbatim
    try:
        with envknit.SubInterpreterEnv(env_name) as interp:
            interp.configure_from_lock("envknit.lock.yaml", env_name=env_name)
            interp.try_import(module, raise_on_cext=True)
        out["raise_on_cext"] = "imported"
    except envknit.CExtIncompatibleError as exc:
        out["raise_on_cext"] = "CExtIncompatibleError"
        out["why"] = exc.detail
    with envknit.SubInterpreterEnv(env_name) as interp:
        interp.configure_from_lock("envknit.lock.yaml", env_name=env_name)
        out["try_import"] = interp.try_import(module)
    with envknit.SubInterpreterEnv(env_name, fallback="worker") as interp:
        interp.configure_from_lock("envknit.lock.yaml", env_name=env_name)
        out["version"] = interp.eval_json(
            "import importlib.metadata as m\\n__import__(name)\\nresult = m.version(dist)",
            name=module, dist=dist)
    envknit.shutdown_workers()
    import os, pathlib
    verdicts = pathlib.Path(os.environ["ENVKNIT_HOME"], "verdicts")
    records = {f.parent.parent.name: json.loads(f.read_text())
               for f in verdicts.glob("*/*/*/*.json")}
    out["probes"] = {name: [r["verdict"], r["seconds"], r["detail"]]
                     for name, r in records.items()}
    print(json.dumps(out))
""")


@pytest.mark.parametrize("env_name", sorted(PACKAGES))
def test_compiled_package(project: tuple[Path, dict[str, str]], env_name: str) -> None:
    root, env = project
    shutil.rmtree(Path(env["ENVKNIT_HOME"]) / "verdicts", ignore_errors=True)
    _, module, dist = PACKAGES[env_name]
    script = root / "case.py"
    script.write_text(CASE)
    proc = subprocess.run([sys.executable, str(script), env_name, module, dist], cwd=root,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = json.loads(proc.stdout)
    print(env_name, out)  # the measured matrix (pytest -s shows it)
    assert out["version"] == out["locked"]
    assert out["try_import"] is (out["raise_on_cext"] == "imported")
    if module in ("numpy", "orjson", "pydantic_core"):
        assert out["raise_on_cext"] == "CExtIncompatibleError"
    if module in ("yaml", "markupsafe"):
        # yaml falls back to pure Python when its libyaml binding is refused; markupsafe's
        # _speedups is a multi-phase module that loads
        assert out["try_import"] is True
