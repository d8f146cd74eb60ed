"""Where envknit's home and a project's ``envknit.yaml`` are, on plain strings.

``store.layout.envknit_home`` and ``config.find_config`` answer with ``Path`` objects; the
start-up paths (``envknit run``, ``envknit lock``, a cached ``configure_from_lock``) use these
instead, since importing pathlib costs them ~5 ms.
"""

from __future__ import annotations

import os

__all__ = ["find_config", "home"]


def home() -> str:
    """``store.layout.envknit_home()`` as a string."""
    env = os.environ.get("ENVKNIT_HOME")
    if env:
        return os.path.realpath(os.path.expanduser(env))
    return os.path.join(os.path.expanduser("~"), ".envknit")


def find_config() -> str | None:
    """The nearest ``envknit.yaml`` in the cwd or one of its parents (not resolved); None if
    there is none (``config.find_config`` says so in words)."""
    here = os.getcwd()
    while True:
        candidate = os.path.join(here, "envknit.yaml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent
