"""Runs in a THROWAWAY process: imports packages in an isolated sub-interpreter, prints the result.

Standard library only; started by path as ``python -I -S _probe.py`` by the extension guard in
``_child.py`` the first time a sub-interpreter meets a compiled module of a store entry whose
verdict is unknown. The request arrives as JSON on stdin::

    {"envknit_dir": ..., "paths": [env site dirs], "site": one entry's site dir,
     "modules": [module names to import]}

The probe prepares its main interpreter exactly like a host (``_safety.prepare_host``), creates
an isolated sub-interpreter through envknit's own driver and child module (so the import runs
the same way it would in the host), imports each module there, then destroys the interpreter and
exits. Progress lines ``<MARK>{"loading": name}`` are written to stdout (fd 1) before each
compiled module of ``site`` is loaded, so a crash can be pinned on the module being loaded; the
last line is ``<MARK>{"done": true, "modules": {...}, "imports": {...}}``. If this process dies
(a signal, a non-zero exit), the caller records the package as crashing: only this process is
lost.
"""

from __future__ import annotations

import json
import os
import sys
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MARK", "main"]

# Starts every line meant for the caller; anything else on stdout (a package that prints) is
# ignored. ASCII record separator: not something a package prints by accident.
MARK = "\x1eenvknit-probe "


def _load_envknit_modules(envknit_dir: str) -> Any:
    """Import envknit's stdlib-only sub-interpreter modules without the package ``__init__``.

    ``envknit/__init__.py`` pulls in PyYAML and packaging, which an ``-I -S`` process cannot
    see; the modules the probe needs (errors, the adapters, the driver, the host preparation)
    use the standard library only, so empty parent packages pointing at their directories are
    enough.
    """
    for name, path in (("envknit", envknit_dir),
                       ("envknit._subinterp", os.path.join(envknit_dir, "_subinterp"))):
        package = types.ModuleType(name)
        package.__path__ = [path]
        sys.modules[name] = package
    from envknit._subinterp import _adapter, _safety, _thread

    return _adapter, _safety, _thread


def main() -> int:
    request: dict[str, Any] = json.loads(sys.stdin.read())
    adapter_mod, safety, thread_mod = _load_envknit_modules(request["envknit_dir"])
    safety.prepare_host()
    driver = thread_mod.Driver(
        adapter_mod.get_adapter(),
        {"stdlib": safety.stdlib_dirs(), "refused": safety.refused_from_the_start(),
         "probe_site": request["site"]},
        "probe",
    )
    imports: dict[str, str] = {}
    try:
        answer = driver.request({"kind": "configure", "paths": request["paths"]})
        if not answer["ok"]:
            raise RuntimeError(f"{answer['type']}: {answer['message']}")
        for name in request["modules"]:
            answer = driver.request({"kind": "import", "name": name})
            imports[name] = "ok" if answer["ok"] else f"{answer['type']}: {answer['message']}"
        report = driver.request({"kind": "probe_report"})
        modules = report["result"] if report["ok"] else {}
    finally:
        driver.close()
    sys.stdout.write(MARK + json.dumps({"done": True, "modules": modules, "imports": imports})
                     + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
