"""What several commands share: the project (config + lock) and choosing environments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config, load_config
from ..errors import LockError
from ..lock import LOCK_FILENAME, Lock, LockedEnvironment, load_lock

__all__ = ["Project", "load_project"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Project:
    config: Config
    lock_path: Path

    def lock(self) -> Lock:
        if not self.lock_path.exists():
            raise LockError(
                "lock file not found; run 'envknit lock' first", path=str(self.lock_path)
            )
        return load_lock(self.lock_path)

    def locked_environments(self, env: str | None) -> list[LockedEnvironment]:
        lock = self.lock()
        if env is not None:
            return [lock.environment(env)]
        return [lock.environments[name] for name in sorted(lock.environments)]


def load_project() -> Project:
    config = load_config()
    return Project(config=config, lock_path=config.root / LOCK_FILENAME)
