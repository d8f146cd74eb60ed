"""Sentences several parts of envknit say, kept in one place so they are worded the same."""

from __future__ import annotations

__all__ = ["no_config"]


def no_config(where: str) -> str:
    """No ``envknit.yaml`` in ``where`` (a resolved directory) or above it."""
    return f"no envknit.yaml in {where} or any parent directory; run 'envknit init' to create one"
