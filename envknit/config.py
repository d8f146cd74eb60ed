"""The ``envknit.yaml`` model: environments, their requirements, and finding the file."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._findconfig import CONFIG_FILENAME, find_config
from .errors import ConfigError, InvalidNameError, UnknownEnvironmentError, quoted
from .names import (
    normalize_name,
    normalize_version,
    validate_env_name,
    validate_python_version,
)

TYPE_CHECKING = False  # typing (~2 ms) for the type checker only: install imports find_config
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CONFIG_FILENAME",
    "Config",
    "EnvironmentConfig",
    "config_hash",
    "find_config",
    "load_config",
    "parse_requirement",
    "requirement_name",
]

# a requirement is a name (at most 128 characters), extras, specifiers and a marker: 1,000
# characters is far more than any real one and keeps the parser's work bounded
MAX_REQUIREMENT_LENGTH = 1000
_SIMPLE_REQUIREMENT = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:==([0-9][0-9A-Za-z.!+_-]*))?")


def parse_requirement(value: object, where: str = "requirement") -> str:
    """A PEP 508 requirement (string or ``{name, version, extras}``) as a checked string.

    Direct references (``name @ url``) and anything with control characters are refused.
    """
    if isinstance(value, Mapping):
        name = value.get("name")
        version = value.get("version")
        extras = value.get("extras", [])
        if not isinstance(name, str):
            raise ConfigError("a mapping requirement needs a 'name' string", field=where)
        if extras is None:
            extras = []
        if not isinstance(extras, list) or not all(isinstance(e, str) for e in extras):
            raise ConfigError("'extras' must be a list of strings", field=where)
        if isinstance(version, float) or (
            isinstance(version, int) and not isinstance(version, bool) and version.bit_length() < 64
        ):
            version = repr(version)  # an unquoted 2 or 2.0
        if version is not None and not isinstance(version, str):
            raise ConfigError(
                f"'version' must be a string, not a {type(version).__name__}", field=where
            )
        text = name + (f"[{','.join(extras)}]" if extras else "")
        if version is not None:
            text += version if version[:1] in "=<>!~" else f"=={version}"
        value = text
    if not isinstance(value, str):
        raise ConfigError(
            f"expected a requirement string or mapping, got {type(value).__name__}", field=where
        )
    if len(value) > MAX_REQUIREMENT_LENGTH:
        raise ConfigError(
            f"requirement {quoted(value)} is longer than {MAX_REQUIREMENT_LENGTH} characters",
            field=where,
        )
    if not value.isprintable():
        raise ConfigError(f"requirement {quoted(value)} contains control characters", field=where)
    simple = _SIMPLE_REQUIREMENT.fullmatch(value)
    if simple is not None:
        # ``name`` and ``name==version`` (most requirements) are written back unchanged by
        # packaging's parser; its import (markers, specifiers: ~15 ms of regular expressions)
        # is left to the other forms and to versions that need its verdict
        version = simple.group(2)
        try:
            if version is not None:
                normalize_version(version)
            normalize_name(simple.group(1))
        except InvalidNameError:
            pass  # the full parser below says what is wrong
        else:
            return value
    # imported here: commands that only read the lock should not pay for the parser
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        # packaging's message ends with the requirement and a caret under the fault, on two
        # more lines: keep its first line, which says what was expected
        reason = str(exc).split("\n", 1)[0]
        raise ConfigError(f"invalid requirement {quoted(value)}: {reason}", field=where) from None
    if req.url:
        raise ConfigError(
            f"requirement {quoted(value)}: direct references (name @ url) are not supported; "
            "point uv at a folder of wheels with UV_FIND_LINKS instead",
            field=where,
        )
    try:
        normalize_name(req.name)
    except InvalidNameError as exc:
        raise ConfigError(str(exc), field=where) from None
    return str(req)


def requirement_name(requirement: str) -> str:
    """The canonical distribution name of a (valid) requirement string."""
    simple = _SIMPLE_REQUIREMENT.fullmatch(requirement)
    if simple is not None:  # as in parse_requirement: no packaging parser for the plain forms
        return normalize_name(simple.group(1))
    from packaging.requirements import Requirement

    return normalize_name(Requirement(requirement).name)


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvironmentConfig:
    """One environment of ``envknit.yaml``."""

    name: str
    python_version: str | None = None
    packages: tuple[str, ...] = ()
    dev_packages: tuple[str, ...] = ()
    node_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.python_version:
            data["python_version"] = self.python_version
        if self.node_version:
            data["node_version"] = self.node_version
        data["packages"] = list(self.packages)
        data["dev_packages"] = list(self.dev_packages)
        return data


def config_hash(env: EnvironmentConfig) -> str:
    """A hash of what resolving ``env`` depends on; the lock records it to detect staleness.

    Order and spelling do not matter: requirements are normalised and sorted.
    """
    canonical = {
        "python_version": env.python_version or "",
        "packages": sorted(env.packages),
        "dev_packages": sorted(env.dev_packages),
    }
    if env.node_version:  # only when set: locks of environments without Node stay fresh
        canonical["node_version"] = env.node_version
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """The whole ``envknit.yaml``; ``path`` is where it was read from."""

    path: Path
    environments: Mapping[str, EnvironmentConfig] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The project directory (the one holding ``envknit.yaml``)."""
        return self.path.parent

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            raise UnknownEnvironmentError(
                name, sorted(self.environments), source=str(self.path)
            ) from None

    @classmethod
    def from_dict(cls, data: object, path: Path) -> Config:
        where = str(path)
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError("the top level must be a mapping", path=where)
        envs_raw = data.get("environments")
        if envs_raw is None:
            envs_raw = {}
        if not isinstance(envs_raw, Mapping):
            raise ConfigError(
                "expected a mapping of environments", path=where, field="environments"
            )
        envs: dict[str, EnvironmentConfig] = {}
        for name, body in envs_raw.items():
            try:
                validate_env_name(name)
            except InvalidNameError as exc:
                raise ConfigError(str(exc), path=where, field="environments") from None
            field_ = f"environments.{name}"
            envs[name] = _environment(name, body, where, field_)
        return cls(path=path, environments=envs)


def _environment(name: str, body: object, where: str, field_: str) -> EnvironmentConfig:
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise ConfigError("expected a mapping", path=where, field=field_)
    unknown = sorted(
        quoted(k)
        for k in set(body) - {"python_version", "node_version", "packages", "dev_packages"}
    )
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown[:5])}; "
            "allowed: python_version, node_version, packages, dev_packages",
            path=where,
            field=field_,
        )
    py = body.get("python_version")
    if py is not None:
        if isinstance(py, float):  # an unquoted 3.12 in YAML is a float
            text = repr(py)
            _, dot, fraction = text.partition(".")
            if dot and fraction.isdigit() and len(fraction) == 1 and int(fraction) < 7:
                # 3.10 reads as 3.1: refuse rather than target the wrong Python
                raise ConfigError(
                    f"YAML read the unquoted number as {text}; quote the version, "
                    f'e.g. python_version: "{text}0"',
                    path=where,
                    field=f"{field_}.python_version",
                )
            py = text
        try:
            py = validate_python_version(py)
        except InvalidNameError as exc:
            raise ConfigError(str(exc), path=where, field=f"{field_}.python_version") from None
    node = _node_version(body.get("node_version"), where, f"{field_}.node_version")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("packages", "dev_packages"):
        raw = body.get(key) or []
        if not isinstance(raw, list):
            raise ConfigError("expected a list", path=where, field=f"{field_}.{key}")
        reqs = []
        seen: dict[str, int] = {}
        for i, item in enumerate(raw):
            try:
                req = parse_requirement(item, f"{field_}.{key}[{i}]")
            except ConfigError as exc:
                raise ConfigError(str(exc), path=where) from None
            canonical = requirement_name(req)
            if canonical in seen:
                raise ConfigError(
                    f"{canonical!r} is listed twice (items {seen[canonical]} and {i})",
                    path=where,
                    field=f"{field_}.{key}",
                )
            seen[canonical] = i
            reqs.append(req)
        lists[key] = tuple(reqs)
    return EnvironmentConfig(
        name=name, python_version=py, packages=lists["packages"],
        dev_packages=lists["dev_packages"], node_version=node,
    )


def _node_version(value: object, where: str, field_: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f'expected a version string such as "20", got {value!r}',
                          path=where, field=field_)
    from .nodes import validate_node_version

    try:
        return validate_node_version(str(value))
    except ValueError as exc:
        raise ConfigError(str(exc), path=where, field=field_) from None


def load_config(
    path: str | os.PathLike[str] | None = None, *, cache_dir: Path | None = None
) -> Config:
    """Read and validate ``envknit.yaml`` (found from the cwd when ``path`` is None).

    ``cache_dir`` (the CLI's ``$ENVKNIT_HOME/cache``): keep the validated environments there
    (``_configcache``), so that reading the file again unchanged needs no YAML parser and no
    validation.
    """
    from ._yamlfile import read_yaml

    p = Path(path) if path is not None else find_config()
    if cache_dir is None:
        data = read_yaml(p, ConfigError, what="file", missing_hint="run 'envknit init'")
        return Config.from_dict(data, p)
    from . import _configcache

    source = _configcache.read_source(str(p))
    cached = _configcache.load(str(cache_dir), str(p), source) if source is not None else None
    if cached is not None:
        return Config(path=p, environments={
            name: EnvironmentConfig(name=name, python_version=python, packages=main,
                                    dev_packages=dev, node_version=node)
            for name, python, node, main, dev, _digest in cached
        })
    data = read_yaml(p, ConfigError, what="file", missing_hint="run 'envknit init'")
    config = Config.from_dict(data, p)
    # kept only if the file did not change while it was read (the cache pairs bytes and data)
    if source is not None and _configcache.read_source(str(p)) == source:
        text = _configcache.dumps(str(p), source, [
            (e.name, e.python_version, e.node_version, e.packages, e.dev_packages,
             config_hash(e))
            for e in config.environments.values()
        ])
        memo = _configcache.cache_file(str(cache_dir), str(p))
        if text is not None:
            from ._atomic import atomic_write_text

            try:
                os.makedirs(os.path.dirname(memo), exist_ok=True)
                atomic_write_text(memo, text)
            except (OSError, UnicodeEncodeError):
                pass  # not kept (a read-only home, a path that is not UTF-8): parsed next time
    return config
