"""What configure_from_lock() learns from installed dist-infos, and a whole fresh process."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import envknit
from envknit.store.layout import iter_entries

from ._builders import make_store_entry, write_lock


def _site(home: Path, dist: str, version: str) -> Path:
    return next(e.site_dir for e in iter_entries(home) if (e.name, e.version) == (dist, version))


def test_single_file_module_namespace_package_and_record_only_dist_info(
    envknit_home: Path, tmp_path: Path
) -> None:
    pkgs = []
    for version in ("1.0", "2.0"):
        files = {
            "solo.py": f"__version__ = {version!r}\n",
            "nsp/part.py": f"V = {version!r}\n",  # a namespace package: no __init__.py
        }
        pkgs.append(make_store_entry(envknit_home, "solo-dist", version, files))
        # installers other than setuptools write no top_level.txt: RECORD alone must do
        for info in _site(envknit_home, "solo-dist", version).glob("*.dist-info"):
            (info / "top_level.txt").unlink()
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"a": [pkgs[0]], "b": [pkgs[1]]})
    assert envknit.configure_from_lock(lock) == 2
    for version in ("1.0", "2.0"):
        with envknit.use("solo-dist", version) as solo:
            import nsp.part
            import solo as again

            assert solo is again and solo.__version__ == version
            assert version == nsp.part.V
            assert importlib.metadata.version("solo_dist") == version
        with envknit.use("nsp", version):  # any of its import names finds the distribution
            from nsp import part

            assert version == part.V


def test_dist_without_modules_can_still_pin(envknit_home: Path, tmp_path: Path) -> None:
    data = make_store_entry(envknit_home, "just-data", "1.0", {"just_data-1.0.data/x.txt": "x"})
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"a": [data]})
    assert envknit.configure_from_lock(lock) == 1
    with envknit.use("just-data", "1.0") as nothing:
        assert nothing is None
        assert importlib.metadata.version("just-data") == "1.0"


@pytest.mark.timeout(90)
def test_fresh_process_routes_and_exits_cleanly(envknit_home: Path, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from ._routing_fixtures import make_mylib_lock

    lock = make_mylib_lock(envknit_home, tmp_path)
    script = tmp_path / "main.py"
    script.write_text(
        "import json, sys, threading, envknit\n"
        "envknit.configure_from_lock(sys.argv[1])\n"
        "out = {}\n"
        "def run(v):\n"
        "    with envknit.use('mylib', v) as m:\n"
        "        out[v] = (m.__version__, m.HELPER_AT_IMPORT)\n"
        "ts = [envknit.ContextThread(target=run, args=(v,)) for v in ('1.0.0', '2.0.0')]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "envknit.disable()\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(lock)],
        capture_output=True, text=True, timeout=60, env=dict(os.environ), check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"1.0.0": ["1.0.0", "1.0.0"], "2.0.0": ["2.0.0", "2.0.0"]}
    assert done.stderr == ""


def test_code_that_looks_itself_up_in_sys_modules(envknit_home: Path, tmp_path: Path) -> None:
    # dataclasses, typing.get_type_hints and pickle find a class's module through
    # sys.modules[cls.__module__]: routed modules are there under their private names
    source = (
        "from __future__ import annotations\n"
        "import dataclasses, typing\n"
        "VERSION = {v!r}\n"
        "@dataclasses.dataclass\n"
        "class Point:\n"
        "    x: int\n"
        "    label: Label\n"
        "class Label(str):\n"
        "    pass\n"
        "def hints():\n"
        "    return typing.get_type_hints(Point)\n"
    )
    pkgs = [
        make_store_entry(envknit_home, "geom", v, {"geom/__init__.py": source.format(v=v)})
        for v in ("1", "2")
    ]
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"a": [pkgs[0]], "b": [pkgs[1]]})
    envknit.configure_from_lock(lock)
    one = envknit.import_version("geom", "1")
    two = envknit.import_version("geom", "2")
    assert one.hints()["label"] is one.Label
    assert two.hints()["label"] is two.Label
    assert one.Label is not two.Label
    assert not isinstance(one.Point(1, one.Label("a")), two.Point)  # the isinstance caveat
