"""Hostile files and arguments, through the real ``envknit``: one error line each, bounded.

A lock or ``envknit.yaml`` may come from anyone (a cloned repository, a pull request): a lock
without hashes, alias bombs, files that are not UTF-8, over-long names, values with newlines.
Each must give exactly one ``envknit: error:`` line on stderr, quickly, and change nothing.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import yaml

from tests._cli_helpers import _PROGRESS, ENVKNIT, PY, cli, make_small_project

pytest_plugins = ("tests._cli_fixtures",)
pytestmark = pytest.mark.timeout(240)

_MEMORY_CAP = 1 << 30  # 1 GiB of address space: an alias bomb needs more than that


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_CAP, _MEMORY_CAP))


def capped_cli(*args: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``envknit ARGS`` with its address space capped (a MemoryError then shows as a traceback)."""
    return subprocess.run(
        [str(ENVKNIT), *args], cwd=cwd, env=dict(env), capture_output=True, text=True,
        timeout=60, check=False, preexec_fn=_capped,
    )


def assert_one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit status 1 or 2, and stderr is exactly one ``envknit: error:`` line."""
    assert proc.returncode in (1, 2), (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr.endswith("\n"), proc.stderr
    assert lines[0].startswith("envknit: error: "), proc.stderr
    assert len(lines[0]) < 600, lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Path:
    return make_small_project(tmp_path / "proj", env, "alpha==1.0")


def _edit_lock(project: Path, change: Callable[[dict[str, object]], None]) -> None:
    path = project / "envknit.lock.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def _packages(data: dict[str, object]) -> list[dict[str, object]]:
    return data["environments"]["default"]["packages"]  # type: ignore[index,no-any-return]


# --- 1. a lock must name the files (hashes) a package may come from ----------------------


def test_lock_without_hashes_is_refused(
    tmp_path: Path, project: Path, env: dict[str, str]
) -> None:
    # another project already put beta 1.0 in the store; a lock that names no file for it
    # must not pass for it ("0 installed, 2 already in the store")
    other = make_small_project(tmp_path / "other", env, "alpha==1.0", install=False)
    _edit_lock(other, lambda d: _packages(d)[1].update(files=[]))
    for args in (["install"], ["status"], ["verify"], ["run", "--", "true"], ["doctor"]):
        proc = cli(*args, cwd=other, env=env, expect=None)
        if args == ["doctor"]:
            assert proc.returncode == 1 and "must name at least one file" in proc.stdout
            continue
        assert_one_error_line(proc, "packages[1].files", "must name at least one file")


def test_entry_of_another_file_is_not_used(
    tmp_path: Path, project: Path, env: dict[str, str]
) -> None:
    # the same version locked with another file's hash: the store's entry is not that file
    other = make_small_project(tmp_path / "other", env, "alpha==1.0", install=False)
    _edit_lock(other, lambda d: _packages(d)[1]["files"][0].update(sha256="0" * 64))
    status = cli("status", cwd=other, env=env).stdout
    assert "beta 1.0: MISSING" in status and "alpha 1.0: installed" in status
    proc = cli("run", "--", "true", cwd=other, env=env, expect=1)
    assert_one_error_line(proc, "beta==1.0", "not installed")
    verify = cli("verify", cwd=other, env=env, expect=1)
    assert "not installed: beta 1.0" in verify.stdout


# --- 2. alias bombs and deep nesting -----------------------------------------------------

_BOMB = "".join(
    f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [" +
    ",".join([f"*{chr(ord('a') + i - 1)}" if i else '"lol"'] * 9) + "]\n"
    for i in range(9)
)


def _lock_bomb(field: str) -> str:
    pkg = {"name": "beta", "version": "1.0",
           "files": [{"name": "beta-1.0-py3-none-any.whl", "sha256": "0" * 64}]}
    pkg[field] = "BOMB"
    text = yaml.safe_dump({"schema_version": "1.0", "environments": {
        "default": {"python_version": PY, "packages": [pkg]}}})
    return _BOMB + text.replace("BOMB", "*i")


@pytest.mark.parametrize("field", ["version", "name"])
def test_lock_alias_bomb_is_refused_fast(project: Path, env: dict[str, str], field: str) -> None:
    lock = project / "envknit.lock.yaml"
    lock.write_text(_lock_bomb(field))
    assert len(lock.read_bytes()) < 1024
    for args in (["status"], ["install"], ["run", "--", "true"], ["verify"]):
        proc = capped_cli(*args, cwd=project, env=env)
        assert_one_error_line(proc, "malformed YAML", "anchors", str(lock))


@pytest.mark.parametrize("key", ["python_version", "packages"])
def test_config_alias_bomb_is_refused_fast(project: Path, env: dict[str, str], key: str) -> None:
    config = project / "envknit.yaml"
    value = "*i" if key == "python_version" else "[*i]"
    config.write_text(_BOMB + f"environments:\n  default:\n    {key}: {value}\n")
    for args in (["lock"], ["add", "gamma"], ["status"], ["doctor"]):
        proc = capped_cli(*args, cwd=project, env=env)
        if args == ["doctor"]:
            assert proc.returncode == 1 and "anchors" in proc.stdout and proc.stderr == ""
            continue
        assert_one_error_line(proc, "malformed YAML", "anchors")


def test_deep_nesting_is_refused(project: Path, env: dict[str, str]) -> None:
    # PyYAML's constructor recurses: 1,000 levels crash 3.11 (libyaml itself stops at 1,000)
    (project / "envknit.lock.yaml").write_text("[" * 900 + "]" * 900)
    assert_one_error_line(capped_cli("status", cwd=project, env=env), "nested more than")


# --- 3. files that are not UTF-8 text ----------------------------------------------------

_NOT_UTF8 = {
    "latin-1": "environments:\n  default:\n    packages: ['caf\u00e9']\n".encode("latin-1"),
    "utf-16": "environments:\n  default: {}\n".encode("utf-16"),
    "garbage": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("kind", sorted(_NOT_UTF8))
@pytest.mark.parametrize("which", ["envknit.yaml", "envknit.lock.yaml"])
def test_not_utf8_is_one_error(project: Path, env: dict[str, str], kind: str, which: str) -> None:
    cli("install", cwd=project, env=env)  # registered: gc reads this project's lock
    if which == "envknit.yaml":  # the commands that read it
        commands = [["status"], ["lock"], ["add", "gamma"], ["doctor"]]
    else:  # the commands that read the lock
        commands = [["install"], ["status"], ["verify"], ["run", "--", "true"],
                    ["lock", "--env", "default"], ["store", "gc"]]
    for args in commands:
        (project / which).write_bytes(_NOT_UTF8[kind])
        proc = cli(*args, cwd=project, env=env, expect=None)
        if args == ["doctor"]:
            assert proc.returncode == 1 and "not UTF-8" in proc.stdout and proc.stderr == ""
            continue
        assert_one_error_line(proc, which)
        assert "not UTF-8" in proc.stderr or "NUL" in proc.stderr, (args, proc.stderr)


# --- 4. over-long names ------------------------------------------------------------------


def test_add_refuses_overlong_name(project: Path, env: dict[str, str]) -> None:
    before = (project / "envknit.yaml").read_bytes()
    proc = cli("add", "a" * 10_000 + "==1.0", cwd=project, env=env, expect=1)
    assert_one_error_line(proc, "longer than")
    assert (project / "envknit.yaml").read_bytes() == before


def test_lock_with_overlong_name(project: Path, env: dict[str, str]) -> None:
    _edit_lock(project, lambda d: _packages(d)[0].update(name="a" * 300))
    for args in (["install"], ["status"], ["verify"], ["run", "--", "true"]):
        line = assert_one_error_line(cli(*args, cwd=project, env=env, expect=None),
                                     "longer than 128 characters", "(300 characters)")
        assert "a" * 41 not in line
    from envknit import LockError, configure_from_lock

    with pytest.raises(LockError, match="longer than 128"):
        configure_from_lock(project / "envknit.lock.yaml")


# --- 5. one line, escaped ----------------------------------------------------------------


def test_newline_in_environment_name_cannot_fake_a_line(
    project: Path, env: dict[str, str]
) -> None:
    (project / "envknit.yaml").write_text(
        'environments:\n  "x\\nenvknit: ok":\n    packages: []\n'
    )
    for args in (["status"], ["lock"], ["add", "gamma"]):
        line = assert_one_error_line(cli(*args, cwd=project, env=env, expect=None))
        assert "x\\nenvknit: ok" in line
    proc = cli("run", "--env", "x\nenvknit: ok", "--", "true", cwd=project, env=env, expect=1)
    assert_one_error_line(proc, "'x\\nenvknit: ok'")


def _bad_inputs(project: Path) -> list[tuple[list[str], Callable[[], None] | None]]:
    config, lock = project / "envknit.yaml", project / "envknit.lock.yaml"

    def write(path: Path, text: str) -> Callable[[], None]:
        return lambda: path.write_text(text)

    return [
        (["add", "a b c"], None),
        (["add", "a==="], None),
        (["add", "name @ https://example.com/x.whl"], None),
        (["add", "a\nb"], None),
        (["add", "\x1b[31mred"], None),
        (["add", "alpha", "--env", "../x"], None),
        (["add", "alpha", "--env", "x\ny"], None),
        (["add"], None),
        (["remove", "../../etc"], None),
        (["remove", "alpha", "--env", "nope"], None),
        (["remove", "zeta"], None),
        (["lock", "--env", "nope"], None),
        (["install", "--env", "nope\n"], None),
        (["install", "--bogus"], None),
        (["verify", "--env", "nope"], None),
        (["nosuchcommand"], None),
        (["store"], None),
        (["store", "nope"], None),
        (["run"], None),
        (["run", "--bogus", "x"], None),
        (["run", "--env", "nope", "--", "true"], None),
        (["run", "--", "no-such-command-xyz"], None),
        (["init", "--python", "2.7"], None),
        (["init"], None),  # already exists
        (["status"], write(config, "environments: [1, 2\n")),
        (["status"], write(config, "environments:\n  default:\n    colour: red\n")),
        (["status"], write(config, "environments:\n  default:\n    python_version: 3.1\n")),
        (["status"], write(config, "environments:\n  default:\n    packages: [{name: [1]}]\n")),
        (["status"], write(config, "environments:\n  default:\n    packages: 5\n")),
        (["status"], write(config, "environments:\n  1: {}\n  a: {x: 1, 2: y}\n")),
        (["lock"], write(config, "environments: {}\n")),
        (["install"], write(lock, "schema_version: '2.0'\nenvironments: {}\n")),
        (["install"], write(lock, "- 1\n")),
        (["install"], write(lock, "schema_version: '1.0'\nenvironments: {d: {python_version: x}}")),
        (["install"], write(lock, "schema_version: !!binary aGk=\nenvironments: {}\n")),
        (["install"], write(lock, "schema_version: '1.0'\nenvironments: {'a\\nb': {}}\n")),
        (["install"], write(lock, "a: !!python/object/apply:os.system ['true']\n")),
        (["status"], lambda: (lock.unlink(), lock.mkdir())),  # type: ignore[func-returns-value]
        # uv's own failures (several lines of output) are folded into the one line
        (["lock"], write(config, "environments:\n  default:\n    packages: [nosuchpkg]\n")),
        (["install"], lambda: lock.write_text(lock.read_text().replace(
            lock.read_text().split("sha256: ")[1][:64], "0" * 64))),
    ]


def test_every_cli_error_is_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    root = make_small_project(tmp_path / "proj", env, "alpha==1.0", install=False)
    config, lock = root / "envknit.yaml", root / "envknit.lock.yaml"
    good_config, good_lock = config.read_bytes(), lock.read_bytes()
    failures = []
    for args, prepare in _bad_inputs(root):
        if lock.is_dir():
            lock.rmdir()
        config.write_bytes(good_config)
        lock.write_bytes(good_lock)
        if prepare is not None:
            prepare()
        proc = cli(*args, cwd=root, env=env, expect=None)
        # progress lines may come first; then the one error line
        lines = [ln for ln in proc.stderr.splitlines()
                 if not (args[0] in _PROGRESS and _PROGRESS[args[0]].fullmatch(ln))]
        if proc.returncode == 0 or len(lines) != 1 or not lines[0].startswith("envknit: error: "):
            failures.append((args, proc.returncode, proc.stderr))
    assert failures == []


# --- 10. smaller ones ----------------------------------------------------------------------


def test_repair_command_quotes_paths(tmp_path: Path, env: dict[str, str]) -> None:
    home = tmp_path / "my envknit"
    env = {**env, "ENVKNIT_HOME": str(home), "UV_CACHE_DIR": str(tmp_path / "uv cache")}
    root = make_small_project(tmp_path / "proj", env, "alpha==1.0")
    target = next((home / "store" / "beta").glob("*/*/site/beta/__init__.py"))
    target.write_text("evil = True\n")
    proc = cli("verify", cwd=root, env=env, expect=1)
    repair = next(ln for ln in proc.stderr.splitlines() if "rm -rf" in ln)
    assert f"rm -rf '{home}/store/beta/1.0/" in repair


def test_run_notices_a_deleted_site_dir(project: Path, env: dict[str, str],
                                        envknit_home: Path) -> None:
    code = "import beta; print(beta.__version__)"
    assert cli("run", "--", "python", "-c", code, cwd=project, env=env).stdout == "1.0\n"
    site = next((envknit_home / "store" / "beta").glob("*/*/site"))
    import shutil

    shutil.rmtree(site)
    proc = cli("run", "--", "python", "-c", code, cwd=project, env=env, expect=1)
    assert_one_error_line(proc, "beta==1.0", "not installed", "envknit install")
    cli("install", cwd=project, env=env)  # builds it again
    assert cli("run", "--", "python", "-c", code, cwd=project, env=env).stdout == "1.0\n"


@pytest.mark.parametrize("junk", ['{"format": 1, "entries": 5, "paths": 7, "python": 1}',
                                  '[1, 2]', '{"format": 1, "entries": [1], "paths": [null]}',
                                  "\xff\xfe", "envknit-run-plan 3\0a\0b",
                                  "envknit-run-plan 3\0/l\0default\0" "0\0" "1 2 3\0/p\0/s\0"
                                  "\0" "9\0/e\0/p\0" "0\0"])
def test_run_cache_of_the_wrong_shape_is_ignored(
    project: Path, env: dict[str, str], envknit_home: Path, junk: str
) -> None:
    cli("run", "--", "true", cwd=project, env=env)
    (cache,) = (envknit_home / "cache").glob("run-*")
    cache.write_bytes(junk.encode("latin-1"))
    out = cli("run", "--", "python", "-c", "import beta; print(beta.__version__)", cwd=project,
              env=env)
    assert out.stdout == "1.0\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_run_on_a_read_only_home_is_one_error(project: Path, env: dict[str, str],
                                              envknit_home: Path) -> None:
    shims = envknit_home / "shims"
    if shims.exists():
        import shutil

        shutil.rmtree(shims)
    envknit_home.chmod(0o555)
    try:
        proc = cli("run", "--", "true", cwd=project, env=env, expect=1)
    finally:
        envknit_home.chmod(0o755)
    assert_one_error_line(proc, "cannot prepare the environment")


def test_run_on_a_full_disk_is_one_error(project: Path, env: dict[str, str],
                                         envknit_home: Path) -> None:
    # a full disk, simulated in the process: every write of a python shim fails with ENOSPC
    import shutil

    shutil.rmtree(envknit_home / "shims", ignore_errors=True)
    shutil.rmtree(envknit_home / "cache", ignore_errors=True)
    code = (
        "import errno, os, sys\n"
        "import envknit._atomic as a\n"
        "def full(*args, **kwargs):\n"
        "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), args[0])\n"
        "a.atomic_write_text = full\n"
        "import envknit.store.shims as s\n"
        "s.atomic_write_text = full\n"
        "from envknit.cli import main\n"
        "sys.exit(main(['run', '--', 'true']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert_one_error_line(proc, "No space left on device", "cannot prepare the environment")


def test_lock_removes_temporaries_of_killed_writers(project: Path, env: dict[str, str]) -> None:
    import fcntl

    stale = project / f".envknit.lock.yaml.{'1' * 16}.tmp"  # its writer was killed
    young = project / f".envknit.lock.yaml.{'2' * 16}.tmp"  # may not be locked yet
    live = project / f".envknit.lock.yaml.{'3' * 16}.tmp"  # its writer still runs
    other = project / ".notes.txt.1111111111111111.tmp"  # not one of ours
    for path in (stale, young, live, other):
        path.write_text("half a lock")
    for path in (stale, live, other):
        os.utime(path, (0, 0))
    with open(live) as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        cli("lock", cwd=project, env=env)
    assert not stale.exists()
    assert young.exists() and live.exists() and other.exists()


def test_doctor_and_gc_report_leftover_build_dirs(
    project: Path, env: dict[str, str], envknit_home: Path
) -> None:
    leftover = envknit_home / "store" / ".tmp" / ("ab" * 16)
    (leftover / "target").mkdir(parents=True)
    (leftover / "target" / "half.py").write_text("x = 1\n" * 100)
    doctor = cli("doctor", cwd=project, env=env, expect=1).stdout
    assert "[FAIL] 1 leftover build directories of interrupted installs" in doctor
    assert "envknit store gc" in doctor
    dry = cli("store", "gc", "--dry-run", cwd=project, env=env).stdout
    assert "would remove 1 leftover build directory of interrupted installs (600 B)" in dry
    assert leftover.is_dir()
    assert "removed 1 leftover build directory" in cli("store", "gc", cwd=project, env=env).stdout
    assert not leftover.exists()
    assert "[ok] 0 leftover" in cli("doctor", cwd=project, env=env).stdout


# --- 9. run sees the locked packages and the stdlib only ----------------------------------


def test_run_does_not_see_envknits_own_site_packages(
    project: Path, env: dict[str, str], envknit_home: Path
) -> None:
    # this test runs from a virtual environment that has PyYAML, and its base has pip
    assert sys.prefix != sys.base_prefix
    code = (
        "import importlib.util as u, sys, json, sqlite3, beta\n"
        "print(beta.__version__, [m for m in ('yaml', 'pip', 'envknit', 'pytest')"
        " if u.find_spec(m)], sys.base_prefix)\n"
    )
    out = cli("run", "--", "python", "-c", code, cwd=project, env=env).stdout.split(maxsplit=2)
    assert out[:2] == ["1.0", "[]"]
    assert out[2].strip() == sys.base_prefix
    # the same through the cached fast path, and for console scripts' '#!/usr/bin/env python'
    again = cli("run", "--", "python", "-c", code, cwd=project, env=env).stdout
    assert again.split(maxsplit=2)[:2] == ["1.0", "[]"]
    bare = next((envknit_home / "pythons").iterdir())
    assert (bare / "pyvenv.cfg").is_file() and not list((bare / "bin").glob("activate*"))
