"""``envknit lock`` with each target's usable files kept (envknit._filecache): one uv compile
per environment once they are known, the same lock bytes as without them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from envknit import _filecache, _uvlock
from envknit.cli import main
from envknit.lock import LOCK_FILENAME
from tests._builders import build_wheel, package_files
from tests._cli_helpers import PY, build_fixture_wheels

pytestmark = pytest.mark.timeout(180)

TWO = f"""\
environments:
  default:
    packages: ["alpha==1.0"]
    dev_packages: [tool]
  other:
    python_version: "{PY}"
    packages: ["alpha>=2", gamma]
"""
SHA = "0" * 64


class Spawns:
    """The ``uv pip compile`` runs of each lock, and which ran at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.compiles: list[list[str]] = []
        self.batches: list[int] = []
        spawn, communicate = _uvlock.spawn, _uvlock.communicate

        def counted(argv: list[str], env: object) -> _uvlock.Process:
            if "compile" in argv:
                self.compiles.append(argv)
            return spawn(argv, env)  # type: ignore[arg-type]

        def together(procs: list[_uvlock.Process]) -> None:
            self.batches.append(sum("compile" in p.argv for p in procs))
            communicate(procs)

        monkeypatch.setattr(_uvlock, "spawn", counted)
        monkeypatch.setattr(_uvlock, "communicate", together)

    def take(self) -> tuple[list[list[str]], list[int]]:
        out = (self.compiles, self.batches)
        self.compiles, self.batches = [], []
        return out


@pytest.fixture
def project(tmp_path: Path, envknit_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wheels = build_fixture_wheels(tmp_path / "wheels")
    monkeypatch.setenv("UV_FIND_LINKS", str(wheels))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    root = tmp_path / "project"
    root.mkdir()
    (root / "envknit.yaml").write_text(TWO)
    monkeypatch.chdir(root)
    return root


def _lock(*args: str) -> str:
    assert main(["lock", *args]) == 0
    return Path(LOCK_FILENAME).read_text(encoding="utf-8")


def _kept(home: Path) -> list[Path]:
    return sorted((home / "cache" / "files").glob("*.txt"))


def _fresh(home: Path) -> str:
    """The lock without any kept files."""
    shutil.rmtree(home / "cache" / "files", ignore_errors=True)
    return _lock()


def _pylock_runs(compiles: list[list[str]]) -> list[list[str]]:
    return [argv for argv in compiles if "pylock.toml" in argv]


def test_a_relock_runs_one_compile_per_environment_and_writes_the_same_bytes(
    project: Path, envknit_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawns = Spawns(monkeypatch)
    first = _lock()
    compiles, _ = spawns.take()
    assert len(compiles) == 4 and len(_pylock_runs(compiles)) == 2
    assert len(_kept(envknit_home)) == 1  # both environments are one target
    before = _kept(envknit_home)[0].stat().st_mtime_ns
    assert _lock() == first
    compiles, batches = spawns.take()
    assert len(compiles) == 2 and not _pylock_runs(compiles)
    assert batches == [2]  # both environments' compiles ran at once
    assert _kept(envknit_home)[0].stat().st_mtime_ns == before  # nothing new: not rewritten
    assert _fresh(envknit_home) == first


def test_a_pinned_version_whose_files_changed_is_asked_for_again(
    project: Path, envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _lock()
    # alpha 1.0's wheel replaced by other bytes: its hash set is not the one kept
    build_wheel(tmp_path / "wheels", "alpha", "1.0",
                package_files("alpha", "1.0", {"extra.py": "X = 1\n"}), requires=["beta==1.0"])
    spawns = Spawns(monkeypatch)
    relock = _lock()
    compiles, _ = spawns.take()
    fallback = _pylock_runs(compiles)
    assert len(compiles) == 3 and len(fallback) == 1 and "--no-deps" in fallback[0]
    assert not Path(fallback[0][fallback[0].index("--directory") + 1]).exists()
    assert relock != first
    assert _fresh(envknit_home) == relock
    _lock()
    compiles, _ = spawns.take()
    assert not _pylock_runs(compiles[4:])  # kept now: one compile each again


@pytest.mark.parametrize("tag", ["py3-none-win_amd64", "py2.py3-none-any"])
def test_a_file_added_for_a_pinned_version_gives_the_lock_of_a_fresh_run(
    project: Path, envknit_home: Path, tmp_path: Path, tag: str
) -> None:
    # uv lists the hashes an index gives for every file, and for a local folder's files the
    # hash of the file it picked: either way, the lock holds only files whose hash it lists
    _lock()
    build_wheel(tmp_path / "wheels", "alpha", "1.0", package_files("alpha", "1.0"),
                requires=["beta==1.0"], tag=tag)
    relock = _lock()
    assert _fresh(envknit_home) == relock


def test_another_target_does_not_reuse_the_files(
    project: Path, envknit_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lock()
    full = "{}.{}.{}".format(*sys.version_info[:3])  # the same interpreter, another target
    (project / "envknit.yaml").write_text(TWO.replace(f'"{PY}"', f'"{full}"'))
    spawns = Spawns(monkeypatch)
    _lock()
    compiles, _ = spawns.take()
    assert len(_pylock_runs(compiles)) == 1  # "other" asks uv for its files at once
    assert len(_kept(envknit_home)) == 2


def test_a_new_uv_configuration_file_is_another_target(
    project: Path, envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    first = _lock()
    (tmp_path / "config" / "uv").mkdir(parents=True)
    (tmp_path / "config" / "uv" / "uv.toml").write_text("# its options are uv's options\n")
    spawns = Spawns(monkeypatch)
    assert _lock() == first
    compiles, _ = spawns.take()
    assert len(_pylock_runs(compiles)) == 2


@pytest.mark.parametrize("damage", [
    lambda text: "garbage\x00\n",
    lambda text: text.replace("\nend\n", "\n"),  # cut short
    lambda text: text.replace("\t", " ", 1),
    lambda text: text.replace("\t", "\t\t", 1),  # a field too many
    lambda text: text.replace(text.split("\t")[1][:64], text.split("\t")[1][:63]),  # short
    lambda text: text.replace(".whl=", ".whl=ZZ", 1),  # a hash that is not hex
    lambda text: text.replace("envknit-files 1", "envknit-files 2"),
])
def test_a_damaged_file_is_ignored(
    project: Path, envknit_home: Path, monkeypatch: pytest.MonkeyPatch, damage: object
) -> None:
    first = _lock()
    (kept,) = _kept(envknit_home)
    kept.write_bytes(damage(kept.read_text()).encode())  # type: ignore[operator]
    spawns = Spawns(monkeypatch)
    assert _lock() == first
    compiles, _ = spawns.take()
    assert len(_pylock_runs(compiles)) == 2  # both compiles, as without the file
    assert _filecache.load(str(envknit_home / "cache"), _key(kept)) is not None  # rewritten


def _key(kept: Path) -> str:
    return kept.read_text(encoding="utf-8").split("\n")[1]


def test_a_home_that_cannot_be_written_keeps_nothing_and_locks(
    project: Path, envknit_home: Path
) -> None:
    (envknit_home / "cache").mkdir(parents=True, exist_ok=True)
    (envknit_home / "cache" / "files").write_text("not a folder")
    first = _lock()
    assert _lock() == first
    assert (envknit_home / "cache" / "files").read_text() == "not a folder"


def test_the_text_round_trips_and_refuses_what_it_cannot_hold(tmp_path: Path) -> None:
    key = "0.13.9\0/usr/bin/python3\0" + "x" * 3
    entries = {"alpha==1.0": (frozenset({SHA, "1" * 64}), {"alpha-1.0-py3-none-any.whl": SHA}),
               "bad name==1": (frozenset({SHA}), {"b-1.whl": SHA})}
    path = Path(_filecache.cache_file(str(tmp_path), key))
    path.parent.mkdir()
    path.write_text(_filecache.dumps(key, entries))
    assert _filecache.load(str(tmp_path), key) == {"alpha==1.0": entries["alpha==1.0"]}
    assert _filecache.load(str(tmp_path), key + "y") is None  # another target
    assert _filecache.target_key("0.13.9", str(tmp_path / "none"), "3.12", [], {}) is None
