"""Arrays between one host and numpy 1.26.4 and numpy 2.x workers on the binary lane (PyPI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import envknit
from envknit import _lane

from ._builders import write_lock
from .test_worker_network import NUMPY_NEW, NUMPY_OLD, _download, _have_python, _install

try:  # imported at collection: numpy cannot be imported twice in one process
    import numpy as np
except ImportError:  # pragma: no cover - the test extra installs it
    np = None

pytestmark = [
    pytest.mark.network,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not _have_python("3.12"), reason="numpy 1.26.4 needs a CPython <= 3.12"),
    pytest.mark.skipif(np is None, reason="numpy is not installed in this venv"),
]


@pytest.fixture(autouse=True)
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    value = "ektest" + os.urandom(6).hex()
    monkeypatch.setenv("ENVKNIT_LANE_PREFIX", value)
    yield value
    envknit.shutdown_workers()
    assert [n for n in os.listdir(_lane.directory()) if n.startswith(value)] == []


def test_arrays_cross_between_numpy_1_and_2_workers_through_one_host(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert np is not None
    wheels = tmp_path / "wheels"
    old = _install(envknit_home, _download(NUMPY_OLD, wheels))
    new = _install(envknit_home, _download(NUMPY_NEW, wheels))
    monkeypatch.chdir(tmp_path)
    write_lock(
        tmp_path / "envknit.lock.yaml", {"np1": [old], "np2": [new]}, python_version="3.12"
    )
    base = np.arange(60000, dtype="<f8").reshape(200, 300) / 7
    samples = [
        base, base[::3, ::2], base.T, base[:0], np.float32(1.5) * np.ones((4, 5000), "<f4"),
        (np.arange(100000) % 251).astype("|u1"), np.array([np.nan, -0.0, np.inf] * 5000),
        np.arange(20000, dtype="<i8").astype("<M8[s]"), np.zeros((3, 0, 2), "<c16"),
    ]
    with envknit.worker("numpy", NUMPY_OLD) as np1, envknit.worker("numpy", NUMPY_NEW) as np2:
        assert (np1.__version__, np2.__version__) == (NUMPY_OLD, NUMPY_NEW)
        for value in samples:
            # host (numpy 2) -> numpy 1.26 -> host -> numpy 2.1 -> host, each by value
            in_old = np1.array(value)  # the argument arrives as numpy 1.26's own ndarray
            assert in_old.dtype.str == value.dtype.str and in_old.shape == value.shape
            back = np.asarray(in_old)
            in_new = np2.array(back)
            again = np.asarray(in_new)
            for got in (back, again):
                assert got.dtype == value.dtype and got.shape == value.shape
                assert got.tobytes() == np.ascontiguousarray(value).tobytes()
        # Computation on each side, results by value.
        total = np.asarray(np1.cumsum(base))
        assert np.array_equal(total, np.cumsum(base))
        assert np.asarray(np2.matmul(base[:3], base[:3].T)).shape == (3, 3)
