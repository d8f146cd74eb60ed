"""Store internals a user relies on: choosing the file, stale builds, manifests, shims."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from envknit.errors import StoreError
from envknit.lock import DistFile, LockedPackage
from envknit.store._locking import _rmtree, build_dir, clean_stale_builds, tmp_root
from envknit.store.install import _fix_script, choose_file, manifest, wheel_tags
from envknit.store.record import record_rows
from envknit.store.shims import python_shim_dir

PY = (sys.version_info.major, sys.version_info.minor)
ABI = f"cp{PY[0]}{PY[1]}"


def pkg(*names: str) -> LockedPackage:
    files = tuple(DistFile(name=n, sha256=f"{i:064x}") for i, n in enumerate(names, 1))
    return LockedPackage(name="x", version="1.0", files=files)


def test_choose_file_prefers_the_most_specific_wheel() -> None:
    p = pkg("x-1.0.tar.gz", "x-1.0-py3-none-any.whl",
            f"x-1.0-{ABI}-{ABI}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "x-1.0-cp27-cp27m-win32.whl")
    chosen = choose_file(p, PY).name
    if sys.platform == "linux" and os.uname().machine == "x86_64":
        assert chosen.startswith(f"x-1.0-{ABI}-{ABI}-manylinux")
    else:
        assert chosen == "x-1.0-py3-none-any.whl"
    assert choose_file(pkg("x-1.0.tar.gz", "x-1.0-cp27-cp27m-win32.whl"), PY).name == (
        "x-1.0.tar.gz"
    )
    with pytest.raises(StoreError, match=r"no locked file of x==1.0 fits Python"):
        choose_file(pkg("x-1.0-cp27-cp27m-win32.whl"), PY)


def test_manifest_ignores_bytecode_caches(tmp_path: Path) -> None:
    (tmp_path / "site" / "m" / "__pycache__").mkdir(parents=True)
    (tmp_path / "site" / "m" / "__init__.py").write_text("x = 1\n")
    (tmp_path / "site" / "m" / "__pycache__" / "m.pyc").write_bytes(b"junk")
    (tmp_path / "ENTRY.json").write_text("{}")
    assert list(manifest(tmp_path)) == ["site/m/__init__.py"]


@pytest.mark.parametrize("filename", [
    "x-1.0-py3-none-any.whl",
    "x-1.0-py2.py3-none-any.whl",
    "x-1.0-1build-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "X_Y-2.0-CP311-ABI3-Win_AMD64.whl",
])
def test_wheel_tags_are_packagings(filename: str) -> None:
    from packaging.utils import parse_wheel_filename

    assert wheel_tags(filename) == sorted(str(t) for t in parse_wheel_filename(filename)[3])


@pytest.mark.parametrize("text", [
    "m/__init__.py,sha256=abc,12\nm-1.0.dist-info/RECORD,,\n",
    "m/__init__.py,sha256=abc,12\n\nbin/tool,,\n",  # a blank line
    '"m/a,b.py",sha256=abc,3\n',  # a quoted field with a comma
    "m/__init__.py,sha256=abc,12\r\nm/x.py,,\r\n",
    "",
])
def test_record_rows_read_as_csv_does(text: str) -> None:
    import csv
    import io

    assert record_rows(text) == [r for r in csv.reader(io.StringIO(text, newline="")) if r]


def test_scripts_point_at_python_on_path(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("#!/some/where/bin/python3.12\nimport sys\n")
    poly = tmp_path / "poly"
    poly.write_text("#!/bin/sh\n'''exec' '/very/long/python' \"$0\" \"$@\"\n' '''\nimport sys\n")
    other = tmp_path / "other"
    other.write_text("#!/bin/bash\necho hi\n")
    for path in (plain, poly, other):
        _fix_script(path)
    assert plain.read_text() == "#!/usr/bin/env python\nimport sys\n"
    assert poly.read_text() == "#!/usr/bin/env python\nimport sys\n"
    assert other.read_text() == "#!/bin/bash\necho hi\n"


def test_shim_runs_the_interpreter(tmp_path: Path) -> None:
    weird = tmp_path / "dir with 'quotes' $x"
    weird.mkdir()
    shim = python_shim_dir(weird, Path(sys.executable), "{}.{}".format(*PY))
    out = subprocess.run([str(shim / "python"), "-c", "import sys; print(sys.executable)"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == sys.executable
    assert sorted(p.name for p in shim.iterdir()) == sorted(
        ["python", "python3", "python{}.{}".format(*PY)]
    )


@pytest.mark.timeout(60)
def test_stale_builds_are_cleaned_live_ones_kept(envknit_home: Path) -> None:
    # a live builder in another process holds its build directory
    code = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from envknit.store._locking import build_dir
        with build_dir(Path(sys.argv[1])) as d:
            (d / "marker").write_text("x")
            print(d, flush=True)
            sys.stdin.read()
    """)
    child = subprocess.Popen([sys.executable, "-c", code, str(envknit_home)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        live = Path(child.stdout.readline().strip())
        stale = tmp_root(envknit_home) / "deadbeef"
        (stale / "site").mkdir(parents=True)  # what a SIGKILLed install leaves
        assert clean_stale_builds(envknit_home) == [stale]
        assert live.is_dir() and not stale.exists()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
        assert child.stdout is not None
        child.stdout.close()
    assert not live.exists()  # the builder removed its own directory on exit
    with build_dir(envknit_home) as mine:
        assert clean_stale_builds(envknit_home) == []
        assert mine.is_dir()


def test_a_build_directory_is_removed_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    # what a finished build leaves (empty folders, uv's .lock), and links to what is not ours
    build = tmp_path / "build"
    (build / "target").mkdir(parents=True)
    (build / "entries").mkdir()
    (build / "target" / ".lock").write_text("")
    (build / "target" / "link").symlink_to(outside, target_is_directory=True)
    (build / "link").symlink_to(outside, target_is_directory=True)
    _rmtree(build)
    assert not build.exists() and (outside / "keep.txt").read_text() == "keep"
    # deeper trees (a failed build) go to shutil.rmtree
    deep = tmp_path / "deep"
    (deep / "target" / "pkg" / "sub").mkdir(parents=True)
    (deep / "target" / "pkg" / "sub" / "m.py").write_text("")
    (deep / "target" / "pkg" / "link").symlink_to(outside, target_is_directory=True)
    _rmtree(deep)
    assert not deep.exists() and (outside / "keep.txt").read_text() == "keep"
