"""envknit.locking: from uv's resolution to a locked environment (graph and dev flags)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from envknit import _uv, locking
from envknit.config import EnvironmentConfig
from envknit.lock import Lock

SHA = "ab" * 32


def _resolved(name: str, parents: Sequence[str] = (), main: bool = False) -> _uv.ResolvedPackage:
    return _uv.ResolvedPackage(
        name=name, version="1.0", files={f"{name}-1.0-py3-none-any.whl": SHA},
        required_by=frozenset(parents), main_requirement=main,
    )


@pytest.fixture
def fake_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    # app needs lib; the dev tool needs lib and helper: only helper and tool are dev-only
    resolution = [
        _resolved("app", main=True),
        _resolved("helper", ["tool"]),
        _resolved("lib", ["app", "tool"]),
        _resolved("tool"),
    ]

    def compile_environment(*_args: object, **_kwargs: object) -> list[_uv.ResolvedPackage]:
        return resolution

    monkeypatch.setattr(_uv, "compile_environment", compile_environment)
    monkeypatch.setattr(_uv, "uv_version", lambda cache_dir=None: "0.13.9")
    monkeypatch.setattr(locking, "find_python", lambda _version: Path("/usr/bin/python3"))


def test_dependencies_and_dev_only_packages_come_from_the_graph(fake_uv: None) -> None:
    env = EnvironmentConfig(name="default", python_version="3.12",
                            packages=("app",), dev_packages=("tool",))
    locked = locking.lock_environment(env)
    by_name = {p.name: p for p in locked.packages}
    assert {n: p.dev for n, p in by_name.items()} == {
        "app": False, "helper": True, "lib": False, "tool": True,
    }
    assert by_name["tool"].dependencies == ("helper", "lib")
    assert by_name["app"].dependencies == ("lib",)
    assert locked.requirements == ("app", "tool") and locked.python_version == "3.12"


def test_lock_environments_keeps_the_other_environments_of_the_base(fake_uv: None) -> None:
    one = EnvironmentConfig(name="one", python_version="3.12", packages=("app",))
    two = EnvironmentConfig(name="two", python_version="3.12", packages=("app",))
    base = locking.lock_environments([one])
    said: list[str] = []
    lock = locking.lock_environments([two], base=base, progress=said.append)
    assert sorted(lock.environments) == ["one", "two"] and said == ["resolving two ..."]
    assert lock.resolver_version == "0.13.9" and isinstance(lock, Lock)
