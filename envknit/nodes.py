"""Finding a Node.js for an environment's ``node_version``: fnm, nvm, mise, volta, then PATH.

Where each tool keeps its installs (Linux and macOS)::

    fnm    $FNM_DIR (else ~/.local/share/fnm, or the older ~/.fnm)
           then node-versions/v20.11.1/installation/bin/node
    nvm    $NVM_DIR (else ~/.nvm)/versions/node/v20.11.1/bin/node
    mise   $MISE_INSTALLS_DIR, else $MISE_DATA_DIR/installs, else ~/.local/share/mise/installs
           then node/20.11.1/bin/node
    volta  $VOLTA_HOME (else ~/.volta)/tools/image/node/20.11.1/bin/node

Versions are read from the folder names; a ``node`` on PATH is asked (``node --version``).
``"20"`` matches the newest 20.x.y found, ``"20.11"`` the newest 20.11.y, ``"20.11.1"`` only
itself. envknit never installs Node: a missing version is an error that says how to get it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import NodeNotFoundError

__all__ = ["NodeInstall", "find_node", "node_installs", "searched_places", "validate_node_version"]

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_REQUEST = re.compile(r"^\d+(\.\d+){0,2}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeInstall:
    """One Node.js found on this machine: its version, its ``node`` and who installed it."""

    version: str
    node: Path
    source: str

    @property
    def bin_dir(self) -> Path:
        """The folder to put first on PATH (it also holds npm and npx)."""
        return self.node.parent


def validate_node_version(value: str) -> str:
    """``"20"``, ``"20.11"`` or ``"20.11.1"`` (a leading ``v`` is dropped); ValueError else."""
    text = value.strip().removeprefix("v")
    if not _REQUEST.match(text):
        raise ValueError(f"invalid node_version {value!r}: expected e.g. \"20\" or \"20.11.1\"")
    return text


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _roots() -> Iterator[tuple[str, Path, str]]:
    """(tool, folder holding one folder per version, path from a version folder to node)."""
    fnm = os.environ.get("FNM_DIR")
    fnm_dirs = [Path(fnm)] if fnm else [_data_home() / "fnm", Path.home() / ".fnm"]
    for base in fnm_dirs:
        yield "fnm", base / "node-versions", "installation/bin/node"
    nvm = Path(os.environ.get("NVM_DIR") or Path.home() / ".nvm")
    yield "nvm", nvm / "versions" / "node", "bin/node"
    if installs := os.environ.get("MISE_INSTALLS_DIR"):
        mise = Path(installs)
    else:
        mise = Path(os.environ.get("MISE_DATA_DIR") or _data_home() / "mise") / "installs"
    yield "mise", mise / "node", "bin/node"
    volta = Path(os.environ.get("VOLTA_HOME") or Path.home() / ".volta")
    yield "volta", volta / "tools" / "image" / "node", "bin/node"


def _path_node() -> NodeInstall | None:
    exe = shutil.which("node")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None  # a broken node on PATH is simply not a candidate
    m = _VERSION.match(out)
    if m is None:
        return None
    return NodeInstall(version=".".join(m.groups()), node=Path(exe), source="PATH")


def node_installs(*, include_path: bool = True) -> list[NodeInstall]:
    """Every Node found: the version managers' installs, then the ``node`` on PATH."""
    found = []
    for tool, root, rel in _roots():
        try:
            children = sorted(root.iterdir())
        except OSError:
            continue
        for child in children:
            m = _VERSION.match(child.name)
            node = child / rel
            if m and os.access(node, os.X_OK):
                found.append(NodeInstall(version=".".join(m.groups()), node=node, source=tool))
    if include_path and (on_path := _path_node()) is not None:
        found.append(on_path)
    return found


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def searched_places() -> list[str]:
    """The folders looked in, for error messages."""
    return [str(root) for _, root, _ in _roots()] + ["PATH"]


def find_node(request: str, env: str = "default") -> NodeInstall:
    """The best Node matching ``request`` (newest version; a manager's install before PATH)."""
    wanted = _key(validate_node_version(request))
    matches = [n for n in node_installs() if _key(n.version)[: len(wanted)] == wanted]
    if not matches:
        raise NodeNotFoundError(request, env, searched_places())
    order = {"fnm": 0, "nvm": 1, "mise": 2, "volta": 3, "PATH": 4}
    return max(matches, key=lambda n: (_key(n.version), -order[n.source]))
