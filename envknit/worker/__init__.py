"""Subprocess workers: pool, wire protocol, proxies, and the stdlib-only child module."""

from __future__ import annotations

from typing import Any

__all__ = ["shutdown_workers", "worker"]


def worker(*args: Any, **kwargs: Any) -> Any:  # placeholder until the worker issue lands
    raise NotImplementedError


def shutdown_workers() -> None:
    raise NotImplementedError
