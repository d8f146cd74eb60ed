"""node_version: finding Node in fnm/nvm/mise/volta layouts and on PATH; run, lock and doctor."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from envknit.config import Config
from envknit.errors import ConfigError, NodeNotFoundError
from envknit.lock import load_lock
from envknit.nodes import find_node, node_installs
from tests._cli_helpers import cli, make_small_project

pytest_plugins = ("tests._cli_fixtures",)
pytestmark = pytest.mark.timeout(120)

# each tool's real on-disk layout, relative to its root (see envknit/nodes.py)
LAYOUTS = {
    "fnm": ("FNM_DIR", "node-versions/v{v}/installation/bin/node"),
    "nvm": ("NVM_DIR", "versions/node/v{v}/bin/node"),
    "mise": ("MISE_DATA_DIR", "installs/node/{v}/bin/node"),
    "volta": ("VOLTA_HOME", "tools/image/node/{v}/bin/node"),
}


def fake_node(path: Path, version: str) -> Path:
    """A ``node`` that prints its version like the real one (and its argv)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo v{version}; '
                    f'else echo "fake node v{version} $*"; fi\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def managers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Empty fnm/nvm/mise/volta roots in tmp_path, HOME moved there, no node on PATH."""
    env = {var: str(tmp_path / tool) for tool, (var, _) in LAYOUTS.items()}
    env["HOME"] = str(tmp_path / "home")
    env["XDG_DATA_HOME"] = str(tmp_path / "home" / "share")
    # PATH without the machine's node: its folders minus any holding one, plus a folder with sh
    tools = tmp_path / "tools"
    tools.mkdir()
    sh = shutil.which("sh")
    assert sh is not None
    (tools / "sh").symlink_to(sh)
    env["PATH"] = os.pathsep.join([str(tools), *(
        p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "node").exists()
    )])
    monkeypatch.delenv("MISE_INSTALLS_DIR", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def install(managers: dict[str, str], tool: str, version: str) -> Path:
    var, rel = LAYOUTS[tool]
    return fake_node(Path(managers[var]) / rel.format(v=version), version)


@pytest.mark.parametrize("tool", sorted(LAYOUTS))
def test_each_tool_layout_is_found(managers: dict[str, str], tool: str) -> None:
    node = install(managers, tool, "20.11.1")
    found = find_node("20", "web")
    assert (found.version, found.node, found.source) == ("20.11.1", node, tool)


def test_major_picks_newest_and_exact_picks_itself(managers: dict[str, str]) -> None:
    install(managers, "fnm", "20.11.1")
    install(managers, "nvm", "20.12.2")
    install(managers, "mise", "18.19.0")
    install(managers, "volta", "22.1.0")
    assert find_node("20").version == "20.12.2"
    assert find_node("20.11").version == "20.11.1"
    assert find_node("20.11.1").source == "fnm"
    assert find_node("v18").source == "mise"
    assert {n.version for n in node_installs()} == {"20.11.1", "20.12.2", "18.19.0", "22.1.0"}


def test_missing_version_names_it_and_how_to_install(managers: dict[str, str]) -> None:
    install(managers, "nvm", "18.19.0")
    with pytest.raises(NodeNotFoundError) as info:
        find_node("20", "web")
    msg = str(info.value)
    assert "environment 'web' needs Node 20, which is not installed" in msg
    assert "fnm install 20" in msg
    assert managers["NVM_DIR"] in msg


def test_node_on_path_is_asked_its_version(managers: dict[str, str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    node = fake_node(tmp_path / "bin" / "node", "20.5.0")
    monkeypatch.setenv("PATH", f"{node.parent}{os.pathsep}{managers['PATH']}")
    found = find_node("20")
    assert (found.source, found.version, found.node) == ("PATH", "20.5.0", node)


def test_config_accepts_and_checks_node_version(tmp_path: Path) -> None:
    path = tmp_path / "envknit.yaml"
    cfg = Config.from_dict({"environments": {"a": {"node_version": 20},
                                             "b": {"node_version": "20.11.1"}}}, path)
    assert cfg.environment("a").node_version == "20"
    assert cfg.environment("b").to_dict()["node_version"] == "20.11.1"
    for bad in ("twenty", "20.x", True, "20.1.1.1"):
        with pytest.raises(ConfigError, match="node_version"):
            Config.from_dict({"environments": {"a": {"node_version": bad}}}, path)


def _project_with_node(root: Path, env: dict[str, str], version: str) -> Path:
    make_small_project(root, env, "gamma", install=False)
    cfg = root / "envknit.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["environments"]["default"]["node_version"] = version
    cfg.write_text(yaml.safe_dump(data))
    cli("lock", cwd=root, env=env)
    cli("install", cwd=root, env=env)
    return root


def test_run_puts_the_node_first_and_lock_and_doctor_record_it(
    tmp_path: Path, env: dict[str, str], managers: dict[str, str]
) -> None:
    env = {**env, **managers}
    decoy = fake_node(tmp_path / "decoy" / "node", "20.0.0")  # on PATH, older: not chosen
    env["PATH"] = f"{decoy.parent}{os.pathsep}{env['PATH']}"
    install(managers, "volta", "20.11.1")
    root = _project_with_node(tmp_path / "proj", env, "20")
    assert load_lock(root / "envknit.lock.yaml").environment("default").node_version == "20"
    out = cli("run", "--", "node", "--version", cwd=root, env=env)
    assert out.stdout.strip() == "v20.11.1"
    out = cli("run", "--", "sh", "-c", "command -v node", cwd=root, env=env)
    assert out.stdout.strip() == str(Path(managers["VOLTA_HOME"]) /
                                     "tools/image/node/20.11.1/bin/node")
    doctor = cli("doctor", cwd=root, env=env)
    assert "[ok] default: Node 20.11.1 (volta) at" in doctor.stdout


def test_run_and_doctor_name_a_missing_node(
    tmp_path: Path, env: dict[str, str], managers: dict[str, str]
) -> None:
    env = {**env, **managers}
    root = _project_with_node(tmp_path / "proj", env, "22.3")
    out = cli("run", "--", "node", "--version", cwd=root, env=env, expect=1)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("envknit: error: environment 'default' "
                                                   "needs Node 22.3, which is not installed")
    assert "fnm install 22.3" in lines[0]
    doctor = cli("doctor", cwd=root, env=env, expect=1)
    assert "[FAIL] default: environment 'default' needs Node 22.3" in doctor.stdout


def _real_node_major() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip().lstrip("v").split(".")[0] or None


@pytest.mark.skipif(_real_node_major() is None, reason="no node on PATH on this machine")
def test_real_node_on_path(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
                           ) -> None:
    major = _real_node_major()
    assert major is not None
    home = tmp_path / "home"  # no version manager installs: the PATH node is the one
    env = {**env, "HOME": str(home), "XDG_DATA_HOME": str(home / "share"),
           "FNM_DIR": str(home / "fnm"), "NVM_DIR": str(home / "nvm"),
           "MISE_DATA_DIR": str(home / "mise"), "VOLTA_HOME": str(home / "volta")}
    root = _project_with_node(tmp_path / "proj", env, major)
    out = cli("run", "--", "node", "-e", "console.log(process.version)", cwd=root, env=env)
    assert out.stdout.strip().startswith(f"v{major}.")
