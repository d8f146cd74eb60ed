"""Projects that installed from the store register their lock here, so gc knows what is needed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .._atomic import atomic_write_text

__all__ = ["Registration", "projects_root", "register_project", "registered_projects"]


def projects_root(home: Path) -> Path:
    return home / "projects"


@dataclass(frozen=True, kw_only=True, slots=True)
class Registration:
    """One registered project: the file recording it and the lock it points at (or None)."""

    record: Path
    lock: Path | None


def register_project(lock_path: Path, home: Path) -> Path:
    """Record that the project whose lock is ``lock_path`` uses this store."""
    lock_path = lock_path.resolve()
    root = projects_root(home)
    root.mkdir(parents=True, exist_ok=True)
    record = root / f"{hashlib.sha256(str(lock_path).encode()).hexdigest()[:16]}.json"
    text = json.dumps({"lock": str(lock_path)}) + "\n"
    try:
        if record.read_text(encoding="utf-8") == text:
            return record
    except OSError:
        pass  # not registered yet
    # no fsync (as the store's entries): after a power cut a lost record only lets gc remove
    # what this project uses (the next install puts it back), and a torn one keeps everything
    atomic_write_text(record, text, durable=False)
    return record


def registered_projects(home: Path) -> list[Registration]:
    """Every registration; one that cannot be read has ``lock=None`` (gc then keeps all)."""
    root = projects_root(home)
    if not root.is_dir():
        return []
    found = []
    for record in sorted(root.glob("*.json")):
        lock: Path | None = None
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("lock"), str):
                lock = Path(data["lock"])
        except (OSError, ValueError):
            lock = None
        found.append(Registration(record=record, lock=lock))
    return found
