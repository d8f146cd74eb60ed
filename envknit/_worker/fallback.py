"""A sub-interpreter's ``eval_json`` / ``call`` run in a worker when a C extension can't load."""

from __future__ import annotations

import os
from typing import Any

from ._locate import spec_for_environment
from ._pool import get_worker

__all__ = ["call", "eval_json"]


def eval_json(
    lock_path: str | os.PathLike[str],
    env_name: str,
    code: str,
    inputs: dict[str, Any],
    timeout: float | None,
) -> Any:
    """Run ``code`` with ``inputs`` bound as variables in a worker for the environment.

    Returns the JSON value the code assigned to ``result`` (None if it assigned nothing); a
    non-JSON result is a remote ``TypeError``. Remote errors raise ``WorkerRemoteError``.
    """
    pooled = get_worker(spec_for_environment(lock_path, env_name))
    return pooled.request("eval_json", {"code": code}, timeout=timeout, values={"inputs": inputs})


def call(  # noqa: PLR0917 - the positional signature is the contract with SubInterpreterEnv
    lock_path: str | os.PathLike[str],
    env_name: str,
    target: str,
    args: list[Any],
    kwargs: dict[str, Any],
    timeout: float | None,
) -> Any:
    """Call ``"package.module:function"`` with JSON ``args``/``kwargs`` in a worker; JSON result."""
    pooled = get_worker(spec_for_environment(lock_path, env_name))
    return pooled.request(
        "call_target",
        {"target": target},
        timeout=timeout,
        values={"args": list(args), "kwargs": dict(kwargs)},
    )

