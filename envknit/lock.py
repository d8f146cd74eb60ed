"""The ``envknit.lock.yaml`` model: typed, validated, machine-independent, schema-gated.

Schema 1.x (see docs/lock-schema.md)::

    schema_version: "1.0"
    resolver: {name: uv, version: "0.13.9"}
    environments:
      default:
        python_version: "3.12"
        node_version: "20"          # only when envknit.yaml sets one
        config_hash: "<sha256 of the environment's entry in envknit.yaml>"
        requirements: ["attrs==23.1.0"]
        packages:
          - name: attrs
            version: "23.1.0"
            dev: false
            dependencies: []
            files:
              - {name: attrs-23.1.0-py3-none-any.whl, sha256: "<64 hex>"}

No absolute path appears in a lock: where a package lives is derived from the store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidNameError, LockError, LockSchemaError, UnknownEnvironmentError
from .names import (
    normalize_name,
    normalize_version,
    validate_env_name,
    validate_filename,
    validate_python_version,
    validate_sha256,
)

TYPE_CHECKING = False  # typing (~2 ms) for the type checker only: install reads locks
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

__all__ = [
    "LOCK_FILENAME",
    "SCHEMA_VERSION",
    "DistFile",
    "Lock",
    "LockedEnvironment",
    "LockedPackage",
    "load_lock",
    "save_lock",
]

LOCK_FILENAME = "envknit.lock.yaml"
SCHEMA_MAJOR = 1
SCHEMA_VERSION = "1.0"


def _require(data: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in data:
        raise LockError("missing required field", field=f"{where}{key}")
    value = data[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise LockError(f"expected {names}, got {type(value).__name__}", field=f"{where}{key}")
    return value


def _checked(where: str, func: Any, value: object) -> Any:
    try:
        return func(value)
    except InvalidNameError as exc:
        raise LockError(str(exc), field=where) from None


@dataclass(frozen=True, kw_only=True, slots=True)
class DistFile:
    """One distribution file (wheel or sdist) of a locked package."""

    name: str
    sha256: str

    @classmethod
    def from_dict(cls, data: object, where: str) -> DistFile:
        if not isinstance(data, Mapping):
            raise LockError("expected a mapping", field=where)
        return cls(
            name=_checked(f"{where}.name", validate_filename, data.get("name")),
            sha256=_checked(f"{where}.sha256", validate_sha256, data.get("sha256")),
        )

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256}


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedPackage:
    """A pinned distribution: canonical name, normalised version, files and dependencies."""

    name: str
    version: str
    dev: bool = False
    dependencies: tuple[str, ...] = ()
    files: tuple[DistFile, ...] = ()

    @property
    def hashes(self) -> frozenset[str]:
        """The sha256 digests of every distribution file the lock accepts for this package."""
        return frozenset(f.sha256 for f in self.files)

    @classmethod
    def from_dict(cls, data: object, where: str) -> LockedPackage:
        if not isinstance(data, Mapping):
            raise LockError("expected a mapping", field=where)
        name = _checked(f"{where}.name", normalize_name, data.get("name"))
        version = _checked(f"{where}.version", normalize_version, data.get("version"))
        dev = data.get("dev", False)
        if not isinstance(dev, bool):
            raise LockError("expected true or false", field=f"{where}.dev")
        deps_raw = data.get("dependencies", [])
        if not isinstance(deps_raw, list):
            raise LockError("expected a list", field=f"{where}.dependencies")
        deps = tuple(
            _checked(f"{where}.dependencies[{i}]", normalize_name, d)
            for i, d in enumerate(deps_raw)
        )
        files_raw = data.get("files")
        if not isinstance(files_raw, list):
            raise LockError("expected a list of files", field=f"{where}.files")
        if not files_raw:
            # without a hash, any installed file of this version would do: a package must name
            # the files (and their sha256) it may be installed from
            raise LockError(
                "a locked package must name at least one file with its sha256; "
                "re-create the lock with 'envknit lock'",
                field=f"{where}.files",
            )
        files = tuple(DistFile.from_dict(f, f"{where}.files[{i}]") for i, f in enumerate(files_raw))
        return cls(name=name, version=version, dev=dev, dependencies=deps, files=files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "dev": self.dev,
            "dependencies": sorted(self.dependencies),
            "files": [f.to_dict() for f in sorted(self.files, key=lambda f: f.name)],
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedEnvironment:
    """One environment of the lock: its target Python and its full pinned closure."""

    name: str
    python_version: str
    packages: tuple[LockedPackage, ...] = ()
    requirements: tuple[str, ...] = ()
    config_hash: str = ""
    node_version: str = ""

    def package(self, name: str) -> LockedPackage | None:
        """The locked package called ``name`` (any spelling), or None."""
        canonical = normalize_name(name)
        for pkg in self.packages:
            if pkg.name == canonical:
                return pkg
        return None

    def selected(self, *, include_dev: bool = True) -> tuple[LockedPackage, ...]:
        """The packages to install or put on a path, sorted by name (a deterministic order)."""
        chosen = (p for p in self.packages if include_dev or not p.dev)
        return tuple(sorted(chosen, key=lambda p: p.name))

    @classmethod
    def from_dict(cls, name: str, data: object, where: str) -> LockedEnvironment:
        if not isinstance(data, Mapping):
            raise LockError("expected a mapping", field=where)
        py = _checked(
            f"{where}.python_version",
            validate_python_version,
            _require(data, "python_version", f"{where}.", str),
        )
        pkgs_raw = data.get("packages", [])
        if not isinstance(pkgs_raw, list):
            raise LockError("expected a list", field=f"{where}.packages")
        pkgs = tuple(
            LockedPackage.from_dict(p, f"{where}.packages[{i}]") for i, p in enumerate(pkgs_raw)
        )
        seen: set[str] = set()
        for i, pkg in enumerate(pkgs):
            if pkg.name in seen:
                raise LockError(
                    f"package {pkg.name!r} is listed twice", field=f"{where}.packages[{i}].name"
                )
            seen.add(pkg.name)
        reqs_raw = data.get("requirements", [])
        if not isinstance(reqs_raw, list) or not all(isinstance(r, str) for r in reqs_raw):
            raise LockError("expected a list of strings", field=f"{where}.requirements")
        config_hash = data.get("config_hash", "")
        if not isinstance(config_hash, str):
            raise LockError("expected a string", field=f"{where}.config_hash")
        node = data.get("node_version", "")
        if not isinstance(node, str):
            raise LockError("expected a string", field=f"{where}.node_version")
        return cls(
            name=name,
            python_version=py,
            packages=pkgs,
            requirements=tuple(reqs_raw),
            config_hash=config_hash,
            node_version=node,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"python_version": self.python_version}
        if self.node_version:
            data["node_version"] = self.node_version
        data["config_hash"] = self.config_hash
        data["requirements"] = list(self.requirements)
        data["packages"] = [p.to_dict() for p in sorted(self.packages, key=lambda p: p.name)]
        return data


@dataclass(frozen=True, kw_only=True, slots=True)
class Lock:
    """The whole lock file."""

    environments: Mapping[str, LockedEnvironment] = field(default_factory=dict)
    resolver_version: str = ""
    schema_version: str = SCHEMA_VERSION

    def environment(self, name: str) -> LockedEnvironment:
        """The environment called ``name``; ``UnknownEnvironmentError`` names the ones there are."""
        try:
            return self.environments[name]
        except KeyError:
            raise UnknownEnvironmentError(name, sorted(self.environments)) from None

    def with_environments(self, envs: Iterable[LockedEnvironment]) -> Lock:
        """A copy with ``envs`` added or replaced (others kept)."""
        merged = dict(self.environments)
        for env in envs:
            merged[env.name] = env
        return Lock(
            environments=merged,
            resolver_version=self.resolver_version,
            schema_version=self.schema_version,
        )

    @classmethod
    def from_dict(cls, data: object, *, path: str | None = None) -> Lock:
        try:
            return cls._from_dict(data)
        except LockSchemaError as exc:
            if path is not None:
                raise LockSchemaError(exc.found, exc.supported, path=path) from None
            raise
        except LockError as exc:
            if path is not None and exc.path is None:
                raise LockError(str(exc), path=path) from None
            raise

    @classmethod
    def _from_dict(cls, data: object) -> Lock:
        if not isinstance(data, Mapping):
            raise LockError("the lock must be a mapping at the top level")
        version = data.get("schema_version")
        if isinstance(version, float) or (
            isinstance(version, int) and not isinstance(version, bool) and version.bit_length() < 64
        ):
            version = repr(version)  # an unquoted 1.0
        if not isinstance(version, str):
            raise LockError("missing or not a string", field="schema_version")
        major = version.split(".", 1)[0]
        if not major.isdigit():
            raise LockError(f"malformed version {version!r}", field="schema_version")
        if int(major) != SCHEMA_MAJOR:
            raise LockSchemaError(version, f"{SCHEMA_MAJOR}.x")
        resolver = data.get("resolver", {})
        if not isinstance(resolver, Mapping):
            raise LockError("expected a mapping", field="resolver")
        resolver_version = resolver.get("version", "")
        if not isinstance(resolver_version, str):
            raise LockError("expected a string", field="resolver.version")
        envs_raw = _require(data, "environments", "", Mapping)
        envs: dict[str, LockedEnvironment] = {}
        for name in envs_raw:
            _checked("environments", validate_env_name, name)
            where = f"environments.{name}"
            envs[name] = LockedEnvironment.from_dict(name, envs_raw[name], where)
        return cls(environments=envs, resolver_version=resolver_version, schema_version=version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "resolver": {"name": "uv", "version": self.resolver_version},
            "environments": {
                name: self.environments[name].to_dict() for name in sorted(self.environments)
            },
        }

    def dumps(self) -> str:
        """Deterministic YAML text of the lock."""
        from ._lockyaml import lock_text  # here: reading a lock needs no writer

        return lock_text(self.to_dict())  # PyYAML's bytes, without its import when it can


def load_lock(path: str | os.PathLike[str]) -> Lock:
    """Read and validate a lock file; errors name the file and the offending field.

    The layout ``envknit lock`` writes is read without PyYAML (``_lockread``); any other
    text, hand-edited or hostile, goes to the bounded PyYAML loader (``_yamlfile``).
    """
    from ._lockread import parse_lock_text
    from ._textfile import read_text

    p = Path(path)
    text = read_text(p, LockError, what="lock file", missing_hint="run 'envknit lock'")
    data = parse_lock_text(text)
    if data is None:
        from ._yamlfile import parse_yaml

        return Lock.from_dict(parse_yaml(text, p, LockError), path=str(p))
    return Lock.from_dict(data, path=str(p))


def save_lock(lock: Lock, path: str | os.PathLike[str]) -> None:
    """Write the lock atomically (the previous file stays intact if anything fails)."""
    from ._atomic import atomic_write_text

    atomic_write_text(path, lock.dumps())

