"""A resolution as the lock's data (what the lock model's ``to_dict`` gives), without the model.

``envknit lock`` writes the lock from uv's answer directly: building the model
(``envknit.lock``: dataclasses, which load inspect, ~12 ms) only to turn it into these
mappings again is most of a lock's own work. :func:`packages` is the dependency graph and dev
flags both ways share (``envknit.locking`` builds the model from it);
tests/test_lockdata.py checks these mappings against the model's ``to_dict``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    # one package of a resolution (envknit._uvlock): name, version, {file name: sha256},
    # parents, and whether the environment's ``packages`` (not only ``dev_packages``) name it
    Resolved = tuple[str, str, dict[str, str], frozenset[str], bool]
    # name, version, dev, dependencies (sorted), files: (file name, sha256) sorted by name
    Package = tuple[str, str, bool, tuple[str, ...], tuple[tuple[str, str], ...]]

__all__ = ["SCHEMA_VERSION", "environment_data", "lock_data", "packages"]

SCHEMA_VERSION = "1.0"  # envknit.lock.SCHEMA_VERSION (tests/test_lockdata.py)


def packages(resolved: Sequence[Resolved]) -> list[Package]:
    """Each package's dependencies (its children in uv's graph) and whether it is dev-only:
    not reachable from the environment's ``packages`` (only from ``dev_packages``)."""
    children: dict[str, set[str]] = {r[0]: set() for r in resolved}
    for name, _version, _files, parents, _main in resolved:
        for parent in parents:
            if parent in children:
                children[parent].add(name)
    reachable: set[str] = set()
    stack = [r[0] for r in resolved if r[4]]
    while stack:
        name = stack.pop()
        if name not in reachable:
            reachable.add(name)
            stack.extend(children.get(name, ()))
    return [
        (name, version, name not in reachable, tuple(sorted(children[name])),
         tuple(sorted(files.items())))
        for name, version, files, _parents, _main in resolved
    ]


def environment_data(*, python_version: str, node_version: str | None, config_hash: str,
                     requirements: Sequence[str],
                     resolved: Sequence[Resolved]) -> dict[str, object]:
    """``LockedEnvironment.to_dict()`` of the environment locked from ``resolved``."""
    data: dict[str, object] = {"python_version": python_version}
    if node_version:
        data["node_version"] = node_version
    data["config_hash"] = config_hash
    data["requirements"] = list(requirements)
    data["packages"] = [
        {"name": name, "version": version, "dev": dev, "dependencies": list(deps),
         "files": [{"name": f, "sha256": h} for f, h in files]}
        for name, version, dev, deps, files in sorted(packages(resolved))
    ]
    return data


def lock_data(environments: Mapping[str, object], resolver_version: str) -> dict[str, object]:
    """``Lock.to_dict()`` of a lock of ``environments`` (their data, by name)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "resolver": {"name": "uv", "version": resolver_version},
        "environments": {name: environments[name] for name in sorted(environments)},
    }
