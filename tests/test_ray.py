"""envknit.ray: runtime environments from the lock, and the docs/cluster.md example on a real
local Ray cluster (both modes), which must leave no process behind.

Ray is heavy: it is installed only in the venv ``scripts/dev.py`` gives the ``ray`` extra
(``RAY_PYTHON``, CPython 3.12); every other Python skips this module with that reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from envknit.errors import ClusterMismatchError, IntegrityError
from envknit.lock import DistFile, LockedPackage
from tests._builders import build_wheel, package_files, write_lock
from tests._cli_helpers import cli

RAY_PYTHON = (3, 12)  # keep in step with RAY_PYTHON in scripts/dev.py

try:
    import ray  # noqa: F401 - only to know whether the extra is installed here
except ImportError:
    if sys.version_info[:2] == RAY_PYTHON:
        raise  # CI installs envknit[ray] in this venv: a missing Ray must fail, not skip
    pytest.skip(
        "Ray (envknit[ray]) is installed only in the Python 3.12 venv of scripts/dev.py",
        allow_module_level=True,
    )

import envknit.ray as ekray  # noqa: E402 - after the skip: it needs Ray

pytestmark = pytest.mark.timeout(900)

PY = "{}.{}".format(*sys.version_info[:2])
DOC = Path(__file__).resolve().parent.parent / "docs" / "cluster.md"


def _wheel_package(folder: Path, name: str, version: str) -> tuple[Path, LockedPackage]:
    wheel = build_wheel(folder, name, version, package_files(name, version))
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return wheel, LockedPackage(name=name, version=version,
                                files=(DistFile(name=wheel.name, sha256=sha),))


def test_index_mode_carries_every_pin_with_its_hashes(tmp_path: Path) -> None:
    _, alpha = _wheel_package(tmp_path / "w", "alpha", "1.0")
    _, beta = _wheel_package(tmp_path / "w", "beta", "2.0")
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"web": [beta, alpha]})
    got = ekray.runtime_env(lock, env="web")
    assert got == {"uv": {
        "packages": [f"alpha==1.0 --hash=sha256:{alpha.files[0].sha256}",
                     f"beta==2.0 --hash=sha256:{beta.files[0].sha256}"],
        "uv_pip_install_options": ["--no-deps", "--require-hashes", "--only-binary", ":all:"],
    }}


def test_airgapped_ships_hash_checked_wheels(tmp_path: Path, envknit_home: Path) -> None:
    wheel, alpha = _wheel_package(tmp_path / "w", "alpha", "1.0")
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"web": [alpha]})
    got = ekray.runtime_env(lock, env="web", airgapped=True, wheelhouse=[tmp_path / "w"])
    shipped = Path(got["py_modules"][0])
    assert got == {"py_modules": [str(shipped)]}
    assert shipped.name == wheel.name and shipped.read_bytes() == wheel.read_bytes()
    assert shipped.is_relative_to(envknit_home / "wheels")
    wheel.write_bytes(b"tampered")
    shipped.unlink()
    with pytest.raises(IntegrityError, match="does not match the lock's"):
        ekray.runtime_env(lock, env="web", airgapped=True, wheelhouse=[tmp_path / "w"])


def test_python_the_cluster_does_not_run(tmp_path: Path) -> None:
    _, alpha = _wheel_package(tmp_path / "w", "alpha", "1.0")
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"old": [alpha]}, python_version="3.11")
    with pytest.raises(ClusterMismatchError) as info:
        ekray.runtime_env(lock, env="old", python="3.12")
    assert str(info.value) == (
        "environment 'old' cannot run on this Ray cluster: it is locked for Python 3.11, the "
        "cluster runs Python 3.12; set python_version: \"3.12\" for it in envknit.yaml and run "
        "'envknit lock --env old', or run the job on a Python 3.11 cluster"
    )


def test_package_without_a_wheel_for_the_platform(tmp_path: Path) -> None:
    sdist_only = LockedPackage(name="pyyaml", version="6.0.1", files=(
        DistFile(name="PyYAML-6.0.1.tar.gz", sha256="a" * 64),
        DistFile(name="PyYAML-6.0.1-cp312-cp312-win_amd64.whl", sha256="b" * 64),
    ))
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"web": [sdist_only]})
    for airgapped in (False, True):
        with pytest.raises(ClusterMismatchError, match=re.escape(
            "pyyaml==6.0.1 was locked without a wheel for the cluster's platform (CPython "
            f"{PY}, this platform; locked files: PyYAML-6.0.1-cp312-cp312-win_amd64.whl, "
            "PyYAML-6.0.1.tar.gz); re-run 'envknit lock' on a machine of the cluster's platform"
        )):
            ekray.runtime_env(lock, env="web", airgapped=airgapped)


# ---- the docs/cluster.md example on a real local cluster -----------------------------------

_WRAPPER = """\
import sys, ray
_init = ray.init
def _local(*args, **kwargs):  # the test's cluster: two CPUs, loopback only, short temp dir
    return _init(*args, num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 _temp_dir=sys.argv[2], **kwargs)
ray.init = _local
code = open(sys.argv[1], encoding="utf-8").read()
exec(compile(code, "cluster-example", "exec"), {"__name__": "__main__"})
ray.shutdown()
"""


def _doc_examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    examples = [b for b in blocks if "ray.init()" in b]
    assert len(examples) == 2, "docs/cluster.md shows the index and the air-gapped example"
    return examples


def _marked_pids(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker`` (every Ray process inherits it)."""
    pids = []
    needle = f"ENVKNIT_RAY_TEST={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            continue  # gone, or not ours to read
    return pids


@pytest.fixture(scope="module")
def two_version_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """envknit.yaml with old = attrs 23.1.0 and new = attrs 24.2.0, locked against PyPI."""
    root = tmp_path_factory.mktemp("ray-project")
    home = tmp_path_factory.mktemp("ray-home")
    env = dict(os.environ)
    env.update(ENVKNIT_HOME=str(home), UV_CACHE_DIR=str(tmp_path_factory.mktemp("uv-cache")),
               PYTHONDONTWRITEBYTECODE="1")
    for var in ("UV_OFFLINE", "UV_FIND_LINKS", "VIRTUAL_ENV"):
        env.pop(var, None)
    cli("init", cwd=root, env=env)
    cli("add", "attrs==23.1.0", "--env", "old", cwd=root, env=env)
    cli("add", "attrs==24.2.0", "--env", "new", cwd=root, env=env)
    cli("lock", cwd=root, env=env, timeout=300)
    return root, env


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["index", "airgapped"])
def test_doc_example_on_a_local_cluster(
    two_version_project: tuple[Path, dict[str, str]], mode: str, tmp_path: Path
) -> None:
    root, base_env = two_version_project
    example = _doc_examples()[0 if mode == "index" else 1]
    (tmp_path / "example.py").write_text(example, encoding="utf-8")
    (tmp_path / "wrapper.py").write_text(_WRAPPER, encoding="utf-8")
    marker = uuid.uuid4().hex
    env = {**base_env, "ENVKNIT_RAY_TEST": marker, "RAY_USAGE_STATS_ENABLED": "0",
           # Ray runs 'pip' from PATH to install py_modules wheels: this venv's pip
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base_env['PATH']}"}
    if mode == "airgapped":
        # nodes must not download: pip may not reach an index, uv is offline
        env.update(PIP_NO_INDEX="1", UV_OFFLINE="1")
    ray_tmp = tempfile.mkdtemp(prefix="ekray-", dir="/tmp")  # unix socket paths stay short
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "wrapper.py"), str(tmp_path / "example.py"), ray_tmp],
        cwd=root, env=env, capture_output=True, text=True, timeout=840, check=False,
    )
    took = time.monotonic() - started
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.stdout.strip().splitlines()[-1] == "['23.1.0', '24.2.0']"
    print(f"ray example ({mode}): {took:.1f} s")  # reported, never asserted
    deadline = time.monotonic() + 60
    while (left := _marked_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # the test's own cluster: end it before failing, so nothing leaks
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    assert not left, f"Ray processes left behind: {left}"
    shutil.rmtree(ray_tmp, ignore_errors=True)
