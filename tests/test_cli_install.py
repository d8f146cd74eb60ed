"""``envknit install / run`` end to end: store entries, reuse, races, SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envknit.lock import load_lock
from envknit.pythons import find_python
from envknit.store.layout import ENTRY_FILE, iter_entries, read_entry
from envknit.store.maintenance import verify_entry
from envknit.store.paths import environment_paths
from tests._builders import build_wheel, package_files
from tests._cli_helpers import ENVKNIT, PY, cli, make_project, make_small_project

pytest_plugins = ("tests._cli_fixtures",)
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def locked(tmp_path: Path, env: dict[str, str]) -> Path:
    return make_project(tmp_path / "proj", env, lock=True)


def entries(home: Path) -> dict[str, Path]:
    return {f"{e.name}=={e.version}": e.path for e in iter_entries(home)}


def test_install_then_run(locked: Path, env: dict[str, str], envknit_home: Path) -> None:
    out = cli("install", cwd=locked, env=env)
    assert "installed alpha 1.0" in out.stderr and "installed tool 1.0" in out.stderr
    got = entries(envknit_home)
    assert sorted(got) == ["alpha==1.0", "alpha==2.0", "beta==1.0", "beta==2.0", "tool==1.0"]
    # the entries look like what the other parts of envknit expect (tests/_builders)
    entry = read_entry(got["alpha==1.0"])
    assert entry is not None and entry.files and entry.python == PY
    assert (entry.site_dir / "alpha" / "__init__.py").is_file()
    assert (entry.site_dir / "alpha-1.0.dist-info" / "RECORD").is_file()
    meta = json.loads((entry.path / ENTRY_FILE).read_text())
    assert set(meta) == {"format", "name", "version", "sha256", "filename", "tags", "python",
                         "files"}
    assert all(k.startswith("site/") for k in meta["files"])
    assert verify_entry(entry) == []
    paths = environment_paths(locked / "envknit.lock.yaml", "new", home=envknit_home)
    assert [p.parent.parent.parent.name for p in paths] == ["alpha", "beta", "tool"]

    code = "import alpha, beta, os, sys; print(alpha.__version__, beta.__version__, " \
           "os.environ['ENVKNIT_ENV'], os.environ['PYTHONPATH'])"
    one = cli("run", "--", "python", "-c", code, cwd=locked, env=env).stdout.split()
    two = cli("run", "--env", "new", "--", "python", "-c", code, cwd=locked, env=env).stdout.split()
    assert one[:3] == ["1.0", "1.0", "default"]
    assert two[:3] == ["2.0", "2.0", "new"]
    assert one[3].split(os.pathsep) == [str(got["alpha==1.0"] / "site"),
                                        str(got["beta==1.0"] / "site")]
    # console scripts by name; exit codes pass through; --no-dev leaves dev packages out
    tool = cli("run", "--env", "new", "--", "tool", "x", cwd=locked, env=env).stdout
    assert tool.strip() == f"tool {tuple(sys.version_info[:2])} ['x']"
    fail = cli("run", "--", "python", "-c", "raise SystemExit(7)", cwd=locked, env=env,
               expect=7)
    assert fail.stderr == ""
    nodev = cli("run", "--env", "new", "--no-dev", "--", "python", "-c", "import tool",
                cwd=locked, env=env, expect=1)
    assert "No module named 'tool'" in nodev.stderr
    missing = cli("run", "--", "no-such-command-xyz", cwd=locked, env=env, expect=127)
    assert "command not found: 'no-such-command-xyz'" in missing.stderr

    # a second install reuses every entry, untouched
    stamps = {k: (v / ENTRY_FILE).stat().st_mtime_ns for k, v in got.items()}
    again = cli("install", cwd=locked, env=env)
    assert "0 installed, 2 already" in again.stdout and "0 installed, 3 already" in again.stdout
    assert {k: (v / ENTRY_FILE).stat().st_mtime_ns for k, v in got.items()} == stamps


def test_run_needs_install(locked: Path, env: dict[str, str]) -> None:
    proc = cli("run", "--", "python", "-c", "pass", cwd=locked, env=env, expect=1)
    assert "alpha==1.0 (environment 'default') is locked but not installed" in proc.stderr
    assert "envknit install --env default" in proc.stderr
    proc = cli("run", "--env", "nope", "--", "true", cwd=locked, env=env, expect=1)
    assert "unknown environment 'nope'" in proc.stderr


def test_run_after_entry_removed_falls_back(
    locked: Path, env: dict[str, str], envknit_home: Path
) -> None:
    cli("install", "--env", "default", cwd=locked, env=env)
    cli("run", "--", "python", "-c", "import alpha", cwd=locked, env=env)  # fills the cache
    beta = entries(envknit_home)["beta==1.0"]
    (beta / ENTRY_FILE).unlink()
    proc = cli("run", "--", "python", "-c", "import alpha", cwd=locked, env=env, expect=1)
    assert "beta==1.0" in proc.stderr and "envknit install" in proc.stderr


def other_python() -> str | None:
    for version in ("3.11", "3.12", "3.13", "3.10"):
        if version == PY:
            continue
        try:
            find_python(version)
        except LookupError:
            continue
        return version
    return None


def test_python_version_picks_the_interpreter(tmp_path: Path, env: dict[str, str]) -> None:
    version = other_python()
    if version is None:
        pytest.skip("needs a second CPython (3.10-3.13) on this machine")
    root = tmp_path / "p"
    root.mkdir()
    cli("init", "--python", version, cwd=root, env=env)
    cli("add", "tool", cwd=root, env=env)
    cli("lock", cwd=root, env=env)
    assert load_lock(root / "envknit.lock.yaml").environment("default").python_version == version
    cli("install", cwd=root, env=env)
    out = cli("run", "--", "python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])",
              cwd=root, env=env).stdout
    assert out.strip() == version
    tool = cli("run", "--", "tool", cwd=root, env=env).stdout
    assert tool.startswith(f"tool {tuple(int(x) for x in version.split('.'))}")


def test_two_installs_at_once(locked: Path, env: dict[str, str], envknit_home: Path) -> None:
    procs = [
        subprocess.Popen([str(ENVKNIT), "install"], cwd=locked, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    got = entries(envknit_home)
    assert len(got) == 5
    assert len(list((envknit_home / "store").glob("*/*/*"))) == 5  # one entry each, no leftovers
    for path in got.values():
        entry = read_entry(path)
        assert entry is not None and verify_entry(entry) == []
    cli("verify", cwd=locked, env=env)


def test_namespace_package_split_per_distribution(
    tmp_path: Path, env: dict[str, str], envknit_home: Path
) -> None:
    # two distributions share the top-level folder 'nsp' (PEP 420) and both ship a script:
    # one uv run installs both, and each entry gets only its own files
    wheels = tmp_path / "ns-wheels"
    for part in ("one", "two"):
        build_wheel(wheels, f"nsp-{part}", "1.0", {
            f"nsp/{part}/__init__.py": f"NAME = {part!r}\n",
            f"nsp_{part}-1.0.dist-info/entry_points.txt":
                f"[console_scripts]\nnsp-{part} = nsp.{part}:NAME\n",
        })
    ns_env = {**env, "UV_FIND_LINKS": str(wheels)}
    root = make_small_project(tmp_path / "ns", ns_env, "nsp-one", "nsp-two")
    got = entries(envknit_home)
    assert sorted(got) == ["nsp-one==1.0", "nsp-two==1.0"]
    for part, other in (("one", "two"), ("two", "one")):
        entry = read_entry(got[f"nsp-{part}==1.0"])
        assert entry is not None and verify_entry(entry) == []
        assert f"site/nsp/{part}/__init__.py" in entry.files
        assert f"bin/nsp-{part}" in entry.files
        assert not any(other in rel for rel in entry.files)
    out = cli("run", "--", "python", "-c", "import nsp.one, nsp.two; print(nsp.one.NAME, "
              "nsp.two.NAME)", cwd=root, env=ns_env)
    assert out.stdout.split() == ["one", "two"]
    cli("verify", cwd=root, env=ns_env)


@pytest.fixture
def big_project(tmp_path: Path, env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A project whose one package is a 40 MB wheel, so an install takes a noticeable time."""
    wheels = tmp_path / "big-wheels"
    build_wheel(wheels, "big", "1.0",
                {**package_files("big", "1.0"), "big/blob.bin": os.urandom(40 << 20)})
    big_env = {**env, "UV_FIND_LINKS": str(wheels), "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    return make_small_project(tmp_path / "big", big_env, "big", install=False), big_env


def test_sigkilled_install_leaves_nothing_installed(
    big_project: tuple[Path, dict[str, str]], envknit_home: Path
) -> None:
    root, env = big_project
    tmp = envknit_home / "store" / ".tmp"
    for _attempt in range(5):
        proc = subprocess.Popen([str(ENVKNIT), "install"], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        # kill once uv has started writing the build (or envknit is splitting it up)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(tmp.glob("*/target")) or any(tmp.glob("*/entries")):
                break
            time.sleep(0.001)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.returncode == -signal.SIGKILL:
            break
        shutil.rmtree(envknit_home / "store")  # finished before the kill: try again
    assert proc.returncode == -signal.SIGKILL
    assert any(tmp.iterdir())  # killed mid-build: its build directory is left behind
    for path in (envknit_home / "store").glob("big/*/*"):
        entry = read_entry(path)  # a complete entry may only exist if it is whole
        assert entry is None or verify_entry(entry) == []
    status = cli("status", cwd=root, env=env).stdout
    if not any(read_entry(p) for p in (envknit_home / "store").glob("big/*/*")):
        assert "0/1 installed" in status and "MISSING" in status
    cli("install", cwd=root, env=env)
    cli("verify", cwd=root, env=env)
    assert not tmp.is_dir() or list(tmp.iterdir()) == []  # the stale build was cleaned
    out = cli("run", "--", "python", "-c", "import big; print(big.__version__)", cwd=root, env=env)
    assert out.stdout.strip() == "1.0"


def test_disk_full_mid_install(
    big_project: tuple[Path, dict[str, str]], envknit_home: Path
) -> None:
    root, env = big_project
    lock_before = (root / "envknit.lock.yaml").read_bytes()
    # RLIMIT_FSIZE makes writes past 8 MB fail with EFBIG, like a full disk, in envknit and uv
    limited = (
        "import os, resource, signal, sys;"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20));"
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    # a fresh uv cache, so that uv has to write the 40 MB file (lock filled the other one)
    env = {**env, "UV_CACHE_DIR": str(root / "fresh-cache"), "UV_LINK_MODE": "copy"}
    proc = subprocess.run([sys.executable, "-c", limited, str(ENVKNIT), "install"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("envknit: error:") == 1
    assert "installing big==1.0 failed" in proc.stderr
    assert list(iter_entries(envknit_home)) == []
    tmp = envknit_home / "store" / ".tmp"
    assert not tmp.is_dir() or list(tmp.iterdir()) == []
    assert (root / "envknit.lock.yaml").read_bytes() == lock_before


def test_hash_mismatch_is_refused(locked: Path, env: dict[str, str], envknit_home: Path) -> None:
    path = locked / "envknit.lock.yaml"
    lock = load_lock(path)
    beta = lock.environment("default").package("beta")
    assert beta is not None
    path.write_text(path.read_text().replace(beta.files[0].sha256, "ab" * 32))
    before = path.read_bytes()
    proc = cli("install", "--env", "default", cwd=locked, env=env, expect=1)
    assert "does not match the hash in the lock" in proc.stderr
    assert "beta" in proc.stderr
    assert not (envknit_home / "store" / "beta").exists()
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("name: beta", "name: ../../etc", "invalid package name '../../etc'"),
        ("name: beta", "name: /abs", "invalid package name '/abs'"),
        ("name: beta\n      version: '1.0'", "name: beta\n      version: ../../x",
         "invalid version '../../x'"),
        ("name: beta-1.0-py3-none-any.whl", "name: ../beta-1.0-py3-none-any.whl",
         "invalid distribution file name"),
    ],
)
def test_lock_pointing_outside_the_store(
    locked: Path, env: dict[str, str], envknit_home: Path, old: str, new: str, message: str
) -> None:
    path = locked / "envknit.lock.yaml"
    path.write_text(path.read_text().replace(old, new, 1))
    for args in (["install"], ["run", "--", "true"], ["verify"], ["status"]):
        proc = cli(*args, cwd=locked, env=env, expect=1)
        assert message in proc.stderr and "envknit.lock.yaml" in proc.stderr, args
    assert not (envknit_home / "store").exists() or entries(envknit_home) == {}


@pytest.mark.network
@pytest.mark.timeout(300)
def test_requests_two_versions_from_pypi(tmp_path: Path, envknit_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.update(ENVKNIT_HOME=str(envknit_home), UV_CACHE_DIR=str(tmp_path / "uv-cache"))
    root = tmp_path / "net"
    root.mkdir()
    cli("init", cwd=root, env=env)
    cli("add", "requests==2.28.2", cwd=root, env=env)
    cli("add", "requests==2.31.0", "--env", "new", cwd=root, env=env)
    cli("lock", cwd=root, env=env, timeout=240)
    cli("install", cwd=root, env=env, timeout=240)
    code = "import requests, urllib3; print(requests.__version__, urllib3.__version__)"
    old = cli("run", "--", "python", "-c", code, cwd=root, env=env).stdout.split()
    new = cli("run", "--env", "new", "--", "python", "-c", code, cwd=root, env=env).stdout.split()
    assert old[0] == "2.28.2" and old[1].startswith("1.26.")
    assert new[0] == "2.31.0"
    cli("verify", cwd=root, env=env)


def test_install_no_dev_and_one_environment(
    locked: Path, env: dict[str, str], envknit_home: Path
) -> None:
    cli("install", "--env", "new", "--no-dev", cwd=locked, env=env)
    assert sorted(entries(envknit_home)) == ["alpha==2.0", "beta==2.0"]
    proc = cli("run", "--env", "new", "--", "tool", cwd=locked, env=env, expect=1)
    assert "tool==1.0 (environment 'new') is locked but not installed" in proc.stderr
    out = cli("run", "--env", "new", "--no-dev", "--", "python", "-c",
              "import alpha; print(alpha.__version__)", cwd=locked, env=env)
    assert out.stdout.strip() == "2.0"


def test_unknown_lock_major_is_refused_everywhere(locked: Path, env: dict[str, str]) -> None:
    path = locked / "envknit.lock.yaml"
    path.write_text(path.read_text().replace("schema_version: '1.0'", "schema_version: '7.1'"))
    for args in (["install"], ["run", "--", "true"], ["verify"], ["status"]):
        proc = cli(*args, cwd=locked, env=env, expect=1)
        assert "schema_version '7.1' is not supported" in proc.stderr, args
    doctor = cli("doctor", cwd=locked, env=env, expect=1)
    assert "schema_version '7.1' is not supported" in doctor.stdout


def test_a_cold_install_runs_uv_without_subprocess(locked: Path, env: dict[str, str],
                                                    envknit_home: Path) -> None:
    # uv starts through os.posix_spawn and envknit.yaml is found without envknit.config: a
    # cold install loads neither subprocess (threading, signal, selectors) nor the config model
    code = ("import sys\nfrom envknit.cli import main\nrc = main(['install'])\n"
            "sys.stdout.flush()\nprint('MODULES', *sorted(sys.modules))\nsys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=locked, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "installed alpha 1.0" in proc.stderr
    loaded = set(proc.stdout.rsplit("MODULES", 1)[1].split())
    assert "envknit._uv" in loaded and "envknit.store.record" in loaded
    assert not loaded & {"subprocess", "threading", "selectors", "envknit.config", "base64"}
    assert len(list(iter_entries(envknit_home))) == 5
