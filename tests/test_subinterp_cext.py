"""C extensions in sub-interpreters: verdicts decided out of process, refusals, overrides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import envknit
from envknit.lock import LockedPackage
from envknit.store import verdicts as _verdicts
from envknit.store.layout import entry_dir, read_entry
from tests._builders import make_store_entry, write_lock
from tests._cext_builders import build_extension, have_compiler
from tests._helpers import gen2

pytestmark = [
    gen2,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not have_compiler(), reason="needs gcc to build fixture extensions"),
]

TAG = "cp{0}{1}-cp{0}{1}-linux_x86_64".format(*sys.version_info[:2])
MODES = ("ok", "single", "raises", "crash")


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes]]:
    """Each mode's extension module ``_<mode>``, compiled once per session."""
    root = tmp_path_factory.mktemp("cext-build")
    built = {mode: build_extension(root / mode, f"_{mode}", mode) for mode in MODES}
    built["second"] = build_extension(root / "second", "_second", "ok")
    return built


def cext_package(home: Path, compiled: dict[str, tuple[str, bytes]], mode: str,
                 extra: tuple[str, ...] = (), name: str = "") -> LockedPackage:
    """Store entry ``cx-<name>`` 1.0: package ``cx_<name>`` whose __init__ imports ``_<mode>``.

    ``name`` defaults to ``mode``. (A refused module name is remembered for the whole process,
    so a test that needs a fresh refusal uses a name of its own.)
    """
    name = name or mode
    filename, data = compiled[mode]
    files: dict[str, str | bytes] = {
        f"cx_{name}/__init__.py": f"from . import _{mode}\n__version__ = '1.0'\n",
        f"cx_{name}/{filename}": data,
    }
    for other in extra:
        extra_name, blob = compiled[other]
        files[f"cx_{name}/{extra_name}"] = blob
    return make_store_entry(home, f"cx-{name}", "1.0", files, tag=TAG)


def entry_of(home: Path, pkg: LockedPackage) -> Path:
    return entry_dir(pkg.name, pkg.version, next(iter(pkg.hashes)), home)


def verdict_of(home: Path, pkg: LockedPackage) -> dict[str, object]:
    entry = read_entry(entry_of(home, pkg))
    assert entry is not None
    record = _verdicts.read_verdict(_verdicts.verdict_path(entry, home))
    assert record is not None
    return record


FRESH = textwrap.dedent("""\
    import json, sys
    import envknit
    lock = sys.argv[1]
    out = {}
    with envknit.SubInterpreterEnv("cx", fallback="worker") as interp:
        interp.configure_from_lock(lock)
        for mode in ("ok", "single", "raises", "crash"):
            out[mode] = interp.try_import("cx_" + mode)
            try:
                interp.try_import("cx_" + mode, raise_on_cext=True)
            except envknit.CExtIncompatibleError as exc:
                out[mode + "-error"] = str(exc)
        # the worker runs what the sub-interpreter must not
        out["crash-worker"] = interp.eval_json("import cx_crash\\nresult = cx_crash._crash.answer")
        out["ok-inline"] = interp.eval_json("import cx_ok\\nresult = cx_ok._ok.answer")
    envknit.shutdown_workers()
    # the host itself can still import what a sub-interpreter refused
    sys.path.insert(0, sys.argv[2])
    import cx_raises
    out["host"] = cx_raises._raises.answer
    print(json.dumps(out))
""")


def run_fresh(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "fresh.py"
    path.write_text(script)
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                          timeout=240, check=False, env=dict(os.environ))


def test_verdicts_in_a_fresh_host(envknit_home: Path, tmp_path: Path,
                                  compiled: dict[str, tuple[str, bytes]]) -> None:
    pkgs = [cext_package(envknit_home, compiled, mode) for mode in MODES]
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": pkgs})
    raises_site = entry_of(envknit_home, pkgs[2]) / "site"
    proc = run_fresh(tmp_path, FRESH, str(lock), str(raises_site))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = json.loads(proc.stdout)
    assert [out[m] for m in MODES] == [True, False, False, False]
    assert "does not support loading in subinterpreters" in out["single-error"]
    assert "AttributeError: module 'datetime' has no attribute 'fake_CAPI'" in out["raises-error"]
    assert "crashed a probe process" in out["crash-error"] and "SIGABRT" in out["crash-error"]
    assert out["crash-worker"] == 42 and out["ok-inline"] == 42 and out["host"] == 42
    # the verdicts are on disk, per entry
    records = [verdict_of(envknit_home, pkg) for pkg in pkgs]
    assert [r["verdict"] for r in records] == ["loads", "refused", "refused", "crashed"]
    assert records[0]["modules"] == {"cx_ok._ok": {"ok": True, "error": ""}}
    assert records[3]["signal"] == "SIGABRT" and "cx_crash._crash" in str(records[3]["detail"])
    # a second host uses them: nothing is probed again
    stamps = [_verdicts.verdict_path(read_entry(entry_of(envknit_home, p)), envknit_home)  # type: ignore[arg-type]
              .stat().st_mtime_ns for p in pkgs]
    again = run_fresh(tmp_path, FRESH, str(lock), str(raises_site))
    assert again.returncode == 0 and again.stderr == ""
    assert json.loads(again.stdout) == out
    assert stamps == [_verdicts.verdict_path(read_entry(entry_of(envknit_home, p)), envknit_home)  # type: ignore[arg-type]
                      .stat().st_mtime_ns for p in pkgs]


def test_without_envknit_the_crashing_extension_kills_the_host(
        tmp_path: Path, compiled: dict[str, tuple[str, bytes]]) -> None:
    """Negative control: the crash the probe absorbs is real (raw private API, no envknit)."""
    filename, data = compiled["crash"]
    (tmp_path / filename).write_bytes(data)
    create = ("import _interpreters as I\niid = I.create('isolated')\nrun = I.exec"
              if sys.version_info >= (3, 13) else
              "import _xxsubinterpreters as I\niid = I.create(isolated=True)\nrun = I.run_string")
    inner = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import _crash"
    script = f"{create}\nrun(iid, {inner!r})\n"
    proc = run_fresh(tmp_path, script)
    assert proc.returncode == -6  # SIGABRT


def test_pure_python_entries_cost_nothing(envknit_home: Path, tmp_path: Path) -> None:
    pkg = make_store_entry(envknit_home, "plain", "1.0")
    entry = read_entry(entry_of(envknit_home, pkg))
    assert entry is not None and not _verdicts.has_extensions(entry)
    assert _verdicts.entries_for_child([entry], envknit_home) == {}
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})
    with envknit.SubInterpreterEnv("p") as interp:
        interp.configure_from_lock(lock)
        assert interp.eval_json("import plain\nresult = plain.__version__") == "1.0"
    assert not (envknit_home / "verdicts").exists()


def test_a_recorded_verdict_is_obeyed_without_probing(
        envknit_home: Path, tmp_path: Path, compiled: dict[str, tuple[str, bytes]]) -> None:
    pkg = cext_package(envknit_home, compiled, "ok")
    entry = read_entry(entry_of(envknit_home, pkg))
    assert entry is not None
    path = _verdicts.verdict_path(entry, envknit_home)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "format": 1, "entry": "cx-ok 1.0", "verdict": "refused", "source": "probe",
        "detail": "cx_ok._ok: made up", "signal": None,
        "modules": {"cx_ok._ok": {"ok": False, "error": "RuntimeError: made up"}},
    }))
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})
    with envknit.SubInterpreterEnv("v") as interp:
        interp.configure_from_lock(lock)
        with pytest.raises(envknit.CExtIncompatibleError, match="RuntimeError: made up"):
            interp.try_import("cx_ok", raise_on_cext=True)
    assert "made up" in path.read_text()  # not probed again


def test_overrides_and_any_loader_failure_is_a_refusal(
        envknit_home: Path, tmp_path: Path, compiled: dict[str, tuple[str, bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pkgs = [cext_package(envknit_home, compiled, "ok"),
            cext_package(envknit_home, compiled, "raises", name="ov")]
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": pkgs})
    # cx-raises forced to 'loads': the extension really runs here and raises an AttributeError
    # in its init, which is a C-extension refusal too (point 1 of issue 8)
    monkeypatch.setenv("ENVKNIT_CEXT_OVERRIDES", "cx-ok==1.0=refused, cx_ov=loads")
    with envknit.SubInterpreterEnv("o", fallback="worker") as interp:
        interp.configure_from_lock(lock)
        with pytest.raises(envknit.CExtIncompatibleError, match="ENVKNIT_CEXT_OVERRIDES"):
            interp.try_import("cx_ok", raise_on_cext=True)
        with pytest.raises(envknit.CExtIncompatibleError) as info:
            interp.try_import("cx_ov", raise_on_cext=True)
        assert "AttributeError: module 'datetime' has no attribute 'fake_CAPI'" in str(info.value)
        assert isinstance(info.value.__cause__, envknit.SubInterpreterError)
        # remembered: the second attempt never runs the init function again
        with pytest.raises(envknit.CExtIncompatibleError, match="refused earlier"):
            interp.try_import("cx_ov", raise_on_cext=True)
        # and the call is routed to a worker
        assert interp.eval_json("import cx_ov\nresult = cx_ov._raises.answer") == 42
    envknit.shutdown_workers()
    assert list((envknit_home / "verdicts").glob("*/cx-*/*/*.json")) == []


def test_tracebacks_hold_no_envknit_frames(
        envknit_home: Path, tmp_path: Path, compiled: dict[str, tuple[str, bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = cext_package(envknit_home, compiled, "raises", name="tb")
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})
    monkeypatch.setenv("ENVKNIT_CEXT_OVERRIDES", "cx-tb=loads")  # the guard runs the loader
    with envknit.SubInterpreterEnv("t") as interp:
        interp.configure_from_lock(lock)
        with pytest.raises(envknit.SubInterpreterError) as info:
            interp.eval_json("def load():\n    import cx_tb\nload()")
    text = info.value.remote_traceback
    assert "in load" in text and "fake_CAPI" in text
    assert "_child.py" not in text and "_subinterp" not in text and "_runner.py" not in text


def test_a_module_the_probe_did_not_reach_is_probed_on_its_own(
        envknit_home: Path, tmp_path: Path, compiled: dict[str, tuple[str, bytes]]) -> None:
    pkg = cext_package(envknit_home, compiled, "ok", extra=("second",))
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": [pkg]})
    with envknit.SubInterpreterEnv("m") as interp:
        interp.configure_from_lock(lock)
        assert interp.try_import("cx_ok") is True
        assert set(verdict_of(envknit_home, pkg)["modules"]) == {"cx_ok._ok"}  # type: ignore[arg-type]
        assert interp.eval_json("from cx_ok import _second\nresult = _second.answer") == 42
    record = verdict_of(envknit_home, pkg)
    assert record["verdict"] == "loads"
    assert set(record["modules"]) == {"cx_ok._ok", "cx_ok._second"}  # type: ignore[arg-type]


def test_gc_prunes_verdicts_of_removed_entries(
        envknit_home: Path, tmp_path: Path, compiled: dict[str, tuple[str, bytes]]) -> None:
    kept, gone = (cext_package(envknit_home, compiled, m) for m in ("ok", "single"))
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": [kept, gone]})
    with envknit.SubInterpreterEnv("g") as interp:
        interp.configure_from_lock(lock)
        interp.try_import("cx_ok")
        interp.try_import("cx_single")
    import shutil

    shutil.rmtree(entry_of(envknit_home, gone))
    assert _verdicts.prune(envknit_home) == 1
    files = sorted(p.name for p in (envknit_home / "verdicts").glob("*/*/*/*.json"))
    assert files == [entry_of(envknit_home, kept).name + ".json"]


def test_doctor_shows_and_reprobe_forgets_verdicts(
        envknit_home: Path, tmp_path: Path, compiled: dict[str, tuple[str, bytes]],
        capsys: pytest.CaptureFixture[str]) -> None:
    from envknit.cli._inspect import _show_verdicts
    from envknit.lock import load_lock

    pkgs = [cext_package(envknit_home, compiled, "single"),
            cext_package(envknit_home, compiled, "ok"),
            make_store_entry(envknit_home, "plain", "1.0")]
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"default": pkgs})
    with envknit.SubInterpreterEnv("d") as interp:
        interp.configure_from_lock(lock)
        assert interp.try_import("cx_single") is False
    env = load_lock(lock).environment("default")
    _show_verdicts("default", env, envknit_home, reprobe=False)
    out = capsys.readouterr().out
    assert "cx-single 1.0: refused (cx_single._single: ImportError:" in out
    assert "cx-ok 1.0: not probed yet" in out and "plain" not in out
    _show_verdicts("default", env, envknit_home, reprobe=True)
    assert "forgot 1 C-extension verdict(s)" in capsys.readouterr().out
    assert list((envknit_home / "verdicts").glob("*/*/*/*.json")) == []


OUTSIDE = textwrap.dedent("""\
    import json, sys
    import envknit
    with envknit.SubInterpreterEnv("outside") as interp:
        code = "import sys\\nsys.path.insert(0, d)\\nimport _crash"
        try:
            interp.eval_json(code, d=sys.argv[1])
            out = "imported"
        except envknit.SubInterpreterError as exc:
            out = exc.remote_message
        ok = interp.eval_json(
            "import sys\\nsys.path.insert(0, d)\\nimport _ok\\nresult = _ok.answer", d=sys.argv[2])
    print(json.dumps([out, ok]))
""")


def test_compiled_modules_outside_the_store_are_probed_too(
        tmp_path: Path, compiled: dict[str, tuple[str, bytes]]) -> None:
    """Code inside that puts its own directory on sys.path cannot crash the host either."""
    dirs = []
    for mode in ("crash", "ok"):
        folder = tmp_path / mode
        folder.mkdir()
        filename, data = compiled[mode]
        (folder / filename).write_bytes(data)
        dirs.append(str(folder))
    proc = run_fresh(tmp_path, OUTSIDE, *dirs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    refused, ok = json.loads(proc.stdout)
    assert "crashed a probe process" in refused and "SIGABRT" in refused
    assert ok == 42
    assert not (Path(os.environ["ENVKNIT_HOME"]) / "verdicts").exists()  # memory only
