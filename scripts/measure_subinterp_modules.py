#!/usr/bin/env python3
"""Measure which modules import in an isolated envknit sub-interpreter (the docs' table).

    python scripts/measure_subinterp_modules.py [--path DIR] [--markdown]

Each module is imported in a fresh process, inside a fresh ``SubInterpreterEnv`` (with
envknit's host preparation), so a module that crashes the process is recorded as such
instead of ending the run. ``--path DIR`` adds a folder of third-party packages (for example
one filled by ``uv pip install --target DIR numpy pyyaml ...``) to the interpreter's sys.path.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STDLIB = [
    "_asyncio", "_bz2", "_contextvars", "_csv", "_ctypes", "_curses", "_datetime", "_decimal",
    "_elementtree", "_hashlib", "_json", "_lsprof", "_lzma", "_multiprocessing", "_pickle",
    "_posixsubprocess", "_queue", "_random", "_socket", "_sqlite3", "_ssl", "_statistics",
    "_struct", "_testcapi", "_testinternalcapi", "_testmultiphase", "_testsinglephase",
    "_tkinter", "_uuid", "_zoneinfo", "array", "binascii", "ctypes", "datetime", "decimal",
    "fcntl", "grp", "math", "mmap", "pyexpat", "readline", "resource", "select", "sqlite3",
    "termios", "unicodedata", "xml.etree.ElementTree", "xxlimited", "xxlimited_35", "zlib",
    "zoneinfo",
]
THIRD_PARTY = [
    "numpy", "yaml", "yaml._yaml", "msgpack", "msgpack._cmsgpack", "orjson", "pydantic_core",
    "charset_normalizer", "markupsafe", "markupsafe._speedups", "attrs", "six", "idna",
]

# What runs in the fresh process: one module, one interpreter, one JSON line out.
_PROBE = """
import json, sys, envknit
name, extra = sys.argv[1], sys.argv[2]
with envknit.SubInterpreterEnv("probe") as interp:
    if extra:
        interp.eval_json("import sys\\nsys.path.insert(0, d)", d=extra)
    try:
        ok = interp.try_import(name)
        detail = "" if ok else "C extension refused in sub-interpreters"
        status = "ok" if ok else "refused"
        if ok and name == "yaml":
            detail = "CLoader=" + str(interp.eval_json(
                "import yaml\\nresult = getattr(yaml, 'CLoader', None) is not None"))
        if ok and name == "msgpack":
            detail = "Packer from " + interp.eval_json(
                "import msgpack\\nresult = msgpack.Packer.__module__")
    except ImportError as exc:
        status, detail = "missing", f"{type(exc).__name__}: {exc}"
    except envknit.SubInterpreterError as exc:
        status, detail = "error", f"{exc.remote_type}: {exc.remote_message}"[:160]
print(json.dumps({"status": status, "detail": detail}))
"""


def probe(name: str, extra: str) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, name, extra],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [""])[-1][:120]
        return {"status": "crash", "detail": f"process exit code {proc.returncode}: {last}"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", default="", help="folder of third-party packages")
    parser.add_argument("--markdown", action="store_true", help="print a table row per module")
    parser.add_argument("modules", nargs="*", help="default: the stdlib list (+ third party)")
    args = parser.parse_args(argv)
    names = args.modules or STDLIB + (THIRD_PARTY if args.path else [])
    version = "{}.{}.{}".format(*sys.version_info[:3])
    results = {}
    for name in names:
        results[name] = probe(name, args.path)
        res = results[name]
        if args.markdown:
            print(f"| `{name}` | {res['status']} | {res['detail']} |", flush=True)
        else:
            print(f"{version} {name:<28} {res['status']:<8} {res['detail']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
