"""Gen 1 with real packages from PyPI: requests 2.28.2 and 2.31.0 side by side."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import envknit

PY = "{}.{}".format(*sys.version_info[:2])
CONFIG = f"""\
environments:
  old:
    python_version: "{PY}"
    packages: ["requests==2.28.2"]
  new:
    python_version: "{PY}"
    packages: ["requests==2.31.0"]
"""


@pytest.mark.network
@pytest.mark.timeout(900)
def test_requests_two_versions_with_their_own_urllib3(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "envknit.yaml").write_text(CONFIG)
    for command in ("lock", "install"):
        done = subprocess.run(
            [sys.executable, "-m", "envknit", command],
            capture_output=True, text=True, timeout=800, check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert envknit.configure_from_lock(tmp_path / "envknit.lock.yaml") >= 7
    with envknit.use("requests", "2.28.2") as old:
        import requests
        import urllib3

        assert requests is old and requests.__version__ == "2.28.2"
        assert urllib3.__version__.startswith("1.26.")  # requests 2.28 needs urllib3 < 1.27
        assert importlib.metadata.version("urllib3") == urllib3.__version__
    with envknit.use("requests", "2.31.0") as new:
        import urllib3 as urllib3_new

        assert new.__version__ == "2.31.0"
        assert urllib3_new.__version__.startswith("2.")
    # each requests keeps using its own urllib3, whatever block is active now
    with envknit.use("requests", "2.31.0"):
        assert old.adapters.PoolManager.__module__.startswith("_envknit_v.urllib3__1_26_")
    assert new.adapters.PoolManager.__module__.startswith("_envknit_v.urllib3__2_")
    assert old.Session is not new.Session
    request = old.Request("GET", "https://example.invalid/x", params={"q": "1"}).prepare()
    assert request.url == "https://example.invalid/x?q=1"
