"""The worker child's entry point: runs ``_child.py`` from its bytecode cache (stdlib only).

Started as ``python -I -S .../_boot.py READ_FD WRITE_FD``. A script named on the command line is
compiled from source on every start (a few milliseconds for ``_child.py``, a fifth of a bare
interpreter's start-up); a module loaded from its file uses (and writes) the bytecode cache. So
this script stays tiny and loads the child as a module, under a private name: the child's folder
is not put on ``sys.path``, where envknit's own modules would shadow the environment's packages.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import SourceFileLoader

    __loader__: SourceFileLoader

if __name__ == "__main__":
    # The loader that ran this script (a SourceFileLoader) loads the child too: no importlib.
    _path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child.py")
    _loader = type(__loader__)("_envknit_worker_child", _path)
    _child = type(sys)("_envknit_worker_child")
    _child.__file__ = _path
    _child.__loader__ = _loader
    sys.modules["_envknit_worker_child"] = _child
    _loader.exec_module(_child)
    sys.exit(_child.main(sys.argv[1:]))
