"""What several commands share: the project (config + lock) and choosing environments."""

from __future__ import annotations

from pathlib import Path

from ..errors import EnvknitError
from ..lock import LOCK_FILENAME, Lock, LockedEnvironment, load_lock

TYPE_CHECKING = False  # typing: for the type checker only
if TYPE_CHECKING:
    import argparse

    from .._uv import UvOptions
    from ..config import Config

__all__ = ["Project", "load_project", "uv_options"]


class Project:
    """The project around the cwd: ``envknit.yaml`` (read on first use) and its lock."""

    __slots__ = ("_config", "config_path", "lock_path")

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.lock_path = config_path.parent / LOCK_FILENAME
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        # imported here: install/run/verify need only the lock, and the requirement parser
        # is a noticeable part of the CLI's start-up
        if self._config is None:
            from ..config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def lock(self) -> Lock:
        return load_lock(self.lock_path)

    def locked_environments(self, env: str | None) -> list[LockedEnvironment]:
        lock = self.lock()
        if env is not None:
            return [lock.environment(env)]
        return [lock.environments[name] for name in sorted(lock.environments)]


def load_project() -> Project:
    """The project whose ``envknit.yaml`` is in the cwd or the nearest parent."""
    from .._findconfig import find_config  # not envknit.config (dataclasses, its parsers)

    return Project(find_config())


def uv_options(args: argparse.Namespace) -> UvOptions:
    """``--find-links DIR`` (made absolute: uv runs elsewhere), ``--no-index``, ``--offline``,
    ``--no-build`` as uv options; a folder that does not exist is an error."""
    from .._uv import UvOptions

    links = []
    for link in args.find_links or ():
        if "://" in link:
            links.append(link)
            continue
        path = Path(link).expanduser()
        if not path.is_dir():
            raise EnvknitError(f"--find-links {link!r}: no such directory")
        links.append(str(path.resolve()))
    return UvOptions(find_links=tuple(links), no_index=args.no_index, offline=args.offline,
                     no_build=args.no_build)
