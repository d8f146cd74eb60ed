"""Gen 2 hard isolation: SubInterpreterEnv over one adapter per Python version."""

from __future__ import annotations

from typing import Any

__all__ = ["SubInterpreterEnv"]


class SubInterpreterEnv:  # placeholder until the Gen 2 issue lands
    __module__ = "envknit"

    def __init__(self, name: str = "default", **options: Any) -> None:
        raise NotImplementedError
