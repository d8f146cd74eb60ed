"""uv is configured only with variables it reads, and offline runs do not ask the index.

uv silently ignores an environment variable it does not know; a bench or test that sets one
believes something that is not true (``UV_NO_`` + ``INDEX`` never existed, and every "offline"
run asked the index for each name). The names used anywhere in the project are checked against
the ones uv documents (``[env: UV_...]`` in ``uv help``), plus a short allowlist of documented
variables that have no command-line flag.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from envknit._uv import uv_bin
from tests._builders import build_wheel, package_files
from tests._loopback import counting_index

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("bench", "tests", "scripts", "docs", "envknit", "README.md")
# Documented in uv's environment-variable reference but attached to no command-line flag, so
# `uv help` does not list them. Each is also checked to occur in the uv binary.
NO_FLAG = frozenset({
    "UV_HTTP_RETRIES",
    "UV_HTTP_TIMEOUT",
    "UV_PYTHON_INSTALL_DIR",
    "UV_PYTHON_DOWNLOADS",
    "UV_TOOL_BIN_DIR",
    "UV_TOOL_DIR",
})
_HELP_TOPICS = (
    (), ("pip", "compile"), ("pip", "install"), ("pip", "sync"), ("venv",), ("run",),
    ("python", "find"),
)
_NAME = re.compile(r"\bUV_[A-Z0-9_]*[A-Z0-9]\b")


def _documented() -> set[str]:
    names: set[str] = set()
    for topic in _HELP_TOPICS:
        text = subprocess.run([uv_bin(), "help", *topic], capture_output=True, text=True,
                              check=True, timeout=30).stdout
        # "[env: UV_...=]", "[env: UV_...]", wrapped over two lines, '[env: "UV_...=never"]'
        names.update(re.findall(r"\[env:\s*\"?(UV_[A-Z0-9_]+)[=\]]", text))
    return names


def _used() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for top in SCANNED:
        base = ROOT / top
        files = [base] if base.is_file() else sorted(
            p for p in base.rglob("*") if p.suffix in (".py", ".md", ".toml", ".txt", ".cfg")
        )
        for path in files:
            for name in set(_NAME.findall(path.read_text(encoding="utf-8"))):
                used.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return used


def test_every_uv_variable_we_set_is_one_uv_reads() -> None:
    documented = _documented()
    assert {"UV_OFFLINE", "UV_FIND_LINKS", "UV_CACHE_DIR", "UV_INDEX_URL"} <= documented
    binary = Path(uv_bin()).read_bytes()
    for name in NO_FLAG:
        assert name.encode() in binary, f"{name} is no longer in uv: drop it from the allowlist"
    unknown = {n: where for n, where in _used().items() if n not in documented | NO_FLAG}
    assert not unknown, f"uv reads no such variable: {unknown}"


def test_the_scan_catches_a_variable_uv_does_not_read() -> None:
    # the negative control: the name the old benches used is neither in uv's help nor in uv
    ghost = "UV_NO_" + "INDEX"
    assert ghost not in _documented() | NO_FLAG
    assert ghost.encode() not in Path(uv_bin()).read_bytes()


@pytest.mark.timeout(120)
def test_offline_uv_does_not_ask_the_index(tmp_path: Path) -> None:
    """The offline set-up of the benches and tests: the index (a loopback counter) stays silent."""
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "beta", "1.0", package_files("beta", "1.0"))
    build_wheel(wheels, "alpha", "1.0", package_files("alpha", "1.0"), requires=["beta==1.0"])
    (tmp_path / "req.in").write_text("alpha\n")
    compile_cmd = [uv_bin(), "pip", "compile", "-q", "--generate-hashes", str(tmp_path / "req.in")]
    with counting_index() as (index_url, asked):
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "UV_NO_CONFIG": "1",
            "UV_CACHE_DIR": str(tmp_path / "cache"),
            "UV_FIND_LINKS": str(wheels),
            "UV_DEFAULT_INDEX": index_url,
            "UV_HTTP_RETRIES": "0",
        }
        offline = subprocess.run(compile_cmd, env={**env, "UV_OFFLINE": "1"}, capture_output=True,
                                 text=True, timeout=60, check=False)
        assert offline.returncode == 0, offline.stderr
        assert "alpha==1.0" in offline.stdout and "beta==1.0" in offline.stdout
        assert asked == []
        # the control: the same run without UV_OFFLINE does ask the index, and the counter sees it
        subprocess.run(compile_cmd, env=env, capture_output=True, timeout=60, check=False)
        assert any("/simple/alpha/" in path for path in asked), asked
