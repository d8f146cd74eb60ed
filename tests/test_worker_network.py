"""Real numpy 1.26.4 and numpy 2.x side by side from one host, through 3.12 workers (needs PyPI).

The host may be any supported Python: the lock targets 3.12, so the workers run a 3.12.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import envknit
from envknit.errors import InterpreterNotFoundError
from envknit.lock import DistFile, LockedPackage
from envknit.pythons import find_python
from envknit.store.layout import ENTRY_FILE, ENTRY_FORMAT, entry_dir

from ._builders import write_lock


def _have_python(version: str) -> bool:
    try:
        find_python(version)
    except InterpreterNotFoundError:
        return False
    return True


NUMPY_OLD = "1.26.4"
NUMPY_NEW = "2.1.3"

pytestmark = [
    pytest.mark.network,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not _have_python("3.12"),
        reason="numpy 1.26.4 ships wheels up to CPython 3.12 and no 3.12 was found here",
    ),
]


def _download(version: str, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps",
         f"numpy=={version}", "--python-version", "3.12", "-d", str(dest)],
        check=True, timeout=240,
    )
    return next(dest.glob(f"numpy-{version}-*.whl"))


def _install(home: Path, wheel: Path) -> LockedPackage:
    """Unpack ``wheel`` into a complete store entry, as ``envknit install`` would."""
    data = wheel.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    name, version, *tag_parts = wheel.stem.split("-")
    tags = ["-".join(tag_parts)]
    root = entry_dir("numpy", version, sha, home)
    site = root / "site"
    manifest = {}
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
        for info in zf.infolist():
            if not info.is_dir():
                manifest[f"site/{info.filename}"] = hashlib.sha256(zf.read(info)).hexdigest()
    meta = {
        "format": ENTRY_FORMAT, "name": name, "version": version, "sha256": sha,
        "filename": wheel.name, "tags": tags, "python": "3.12", "files": manifest,
    }
    (root / ENTRY_FILE).write_text(json.dumps(meta))
    files = (DistFile(name=wheel.name, sha256=sha),)
    return LockedPackage(name="numpy", version=version, files=files)


def test_numpy_1_and_2_side_by_side(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    old = _install(envknit_home, _download(NUMPY_OLD, wheels))
    new = _install(envknit_home, _download(NUMPY_NEW, wheels))
    monkeypatch.chdir(tmp_path)
    write_lock(
        tmp_path / "envknit.lock.yaml", {"np1": [old], "np2": [new]}, python_version="3.12"
    )
    # Other test modules import the test venv's numpy at collection; what counts is that
    # nothing below imports it.
    had_numpy = "numpy" in sys.modules
    with envknit.worker("numpy", NUMPY_OLD) as np1, envknit.worker("numpy", NUMPY_NEW) as np2:
        assert np1.__version__ == NUMPY_OLD
        assert np2.__version__ == NUMPY_NEW
        assert np1.array([1, 2, 3]).tolist() == [1, 2, 3]
        assert np2.arange(3).tolist() == [0, 1, 2]
        b = np2.arange(6).reshape(2, 3)  # the example of docs/workers.md
        assert (b.shape, int(b.sum()), (b * 2).tolist()) == ((2, 3), 15, [[0, 2, 4], [6, 8, 10]])
        a = np1.array([[1.0, 2.0], [3.0, 4.0]])
        assert a.sum() == 10.0
        assert a.shape == (2, 2)
        assert a.T.tolist() == [[1.0, 3.0], [2.0, 4.0]]
        assert np1.matmul(a, a).tolist() == [[7.0, 10.0], [15.0, 22.0]]
        # numpy 2 removed np.float_; numpy 1.26 still has it: each worker has its own numpy.
        assert np1.float_(1.5) == 1.5
        with pytest.raises(AttributeError):
            np2.float_  # noqa: B018 - the attribute access is the test
        with pytest.raises(ValueError) as info:
            np2.array([1, 2]).reshape(3)
        assert "cannot reshape" in str(info.value)
    assert ("numpy" in sys.modules) == had_numpy  # the host never imported either version
