"""A worker child's start: it runs from _boot.py and sets up sys.path as site would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envknit._worker import _pool

pytestmark = pytest.mark.timeout(120)


def _environment(tmp_path: Path) -> list[str]:
    """Four entries; the first ships a .pth naming an extra folder and the second entry again,
    and the third is named twice."""
    entries = [tmp_path / name for name in ("a", "b", "c")]
    extra = tmp_path / "extra"
    for folder in (*entries, extra):
        folder.mkdir()
    (entries[0] / "zz.pth").write_text(f"{extra}\n{entries[1]}\n# a comment\n")
    return [str(entries[0]), str(entries[1]), str(entries[2]), str(entries[2])]


def test_the_workers_path_is_what_site_addsitedir_makes(tmp_path: Path) -> None:
    paths = _environment(tmp_path)
    code = (
        "import json, site, sys\n"
        "for d in json.loads(sys.argv[1]):\n"
        "    site.addsitedir(d)\n"
        "print(json.dumps(sys.path))\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, json.dumps(paths)],
                          capture_output=True, text=True, timeout=60, check=True)
    expected = json.loads(proc.stdout)
    worker = _pool.Worker(_pool.WorkerSpec(python=sys.executable, paths=tuple(paths), label="t"))
    try:
        got = worker.request("eval_json", {"code": "import sys\nresult = sys.path"}, timeout=60)
        name = worker.request(
            "eval_json", {"code": "import sys\nresult = sys.modules['__main__'].__file__"},
            timeout=60,
        )
    finally:
        worker.close()
    assert got == expected
    assert [p for p in got if p.startswith(str(tmp_path))] == [
        str(tmp_path / "a"), str(tmp_path / "extra"), str(tmp_path / "b"), str(tmp_path / "c"),
    ]
    assert Path(name).name == "_boot.py"  # which loads _child.py from its bytecode cache
