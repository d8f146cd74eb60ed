"""Builds from source are announced: ``lock`` names packages without a wheel, ``install`` shows
the build while it runs. The sdist's build waits for a release file, so the test sees it running.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests._cli_helpers import ENVKNIT, PY, build_fixture_wheels, cli, uv_env
from tests._sdist import RELEASE_VAR, build_waiting_sdist

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def project(tmp_path: Path, envknit_home: Path) -> tuple[Path, dict[str, str]]:
    wheels = build_fixture_wheels(tmp_path / "wheels")
    build_waiting_sdist(wheels, "slowpkg", "1.0")
    env = uv_env(wheels, tmp_path / "uv-cache", {"ENVKNIT_HOME": str(envknit_home)})
    root = tmp_path / "p"
    root.mkdir()
    cli("init", cwd=root, env=env)
    cli("add", "slowpkg==1.0", cwd=root, env=env)
    cli("add", "alpha==1.0", cwd=root, env=env)
    return root, env


def test_lock_names_packages_without_a_wheel(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    proc = cli("lock", cwd=root, env=env)
    assert (f"note: default: no wheel for Python {PY} on this platform: slowpkg 1.0 "
            "(built from source by 'envknit install'; 'envknit lock --no-build' refuses "
            "source builds)") in proc.stderr
    assert "alpha" not in proc.stderr.split("note:")[1]
    refused = cli("lock", "--no-build", cwd=root, env=env, expect=1)
    assert refused.stderr.count("envknit: error:") == 1
    message = refused.stderr.strip().splitlines()[-1]  # after "resolving default ..."
    assert message.startswith("envknit: error: default: no wheel for slowpkg fits Python")
    assert "--no-build" in message


def test_install_shows_the_build_while_it_runs(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, env = project
    cli("lock", cwd=root, env=env)
    release = tmp_path / "release"
    # a fresh uv cache: the wheel uv may have built while locking is not reused
    run_env = {**env, RELEASE_VAR: str(release), "UV_CACHE_DIR": str(tmp_path / "cache2")}
    proc = subprocess.Popen([str(ENVKNIT), "install"], cwd=root, env=run_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "building slowpkg 1.0 from source" in line:
                break
        # the build waits for the release file: the line came while it was running
        assert proc.poll() is None, seen
        release.touch()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen) + err
    assert "built slowpkg 1.0 from source in " in err, err
    assert "installed slowpkg 1.0" in "".join(seen) + err
    check = cli("run", "--", "python", "-c", "import slowpkg; print(slowpkg.__version__)",
                cwd=root, env=env)
    assert check.stdout.strip() == "1.0"


def test_install_no_build_refuses_the_sdist(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, env = project
    cli("lock", cwd=root, env=env)
    run_env = {**env, "UV_CACHE_DIR": str(tmp_path / "cache3")}
    proc = cli("install", "--no-build", cwd=root, env=run_env, expect=1)
    assert proc.stderr.count("envknit: error:") == 1
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("envknit: error: default: slowpkg 1.0 has no wheel for Python")
    assert "--no-build refuses to build from source" in message
    assert not (tmp_path / "cache3").exists()  # refused before uv ran
