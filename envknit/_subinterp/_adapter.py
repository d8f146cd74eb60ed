"""The one version dispatch of Gen 2: the sub-interpreter adapter for the running Python."""

from __future__ import annotations

import functools
import sys

from ._contract import Adapter

__all__ = ["get_adapter"]


@functools.cache
def get_adapter() -> Adapter:
    """The adapter for the running Python (3.12+), per the contract in ``_contract.py``."""
    if sys.version_info >= (3, 14):
        from . import _py314

        return _py314.Py314Adapter()
    if sys.version_info >= (3, 13):
        from . import _py313

        return _py313.Py313Adapter()
    if sys.version_info >= (3, 12):
        from . import _py312

        return _py312.Py312Adapter()
    raise RuntimeError("sub-interpreters with their own GIL need CPython 3.12+")
