"""Property-based tests of the envknit.yaml and lock readers: accept, or one EnvknitError.

Generated data (any YAML value, and values shaped like the real files with wrong leaves) and
mutated bytes of real files go through the same readers the CLI uses. Whatever the input,
the reader returns a model or raises an ``EnvknitError`` whose message is one line of bounded
length; never another exception type.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from envknit.config import Config, load_config
from envknit.errors import EnvknitError
from envknit.lock import DistFile, Lock, LockedEnvironment, LockedPackage, load_lock

pytestmark = pytest.mark.timeout(300)

_SETTINGS = settings(
    max_examples=120,
    deadline=timedelta(seconds=2),
    database=None,  # write nothing into the work tree
    suppress_health_check=[HealthCheck.too_slow],
)

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.dates(),
    st.builds(pow, st.just(10), st.just(5000)),  # more digits than str() takes
    st.text(max_size=40), st.sampled_from(["3.12", "1.0", "alpha", "../x", "a\nb", "a" * 300]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), inner, max_size=4),
    ),
    max_leaves=25,
)

_SHA = "a" * 64


def _real_lock() -> Lock:
    pkgs = tuple(
        LockedPackage(
            name=name, version="1.0", dependencies=deps,
            files=(DistFile(name=f"{name}-1.0-py3-none-any.whl", sha256=_SHA),),
        )
        for name, deps in (("alpha", ("beta",)), ("beta", ()))
    )
    env = LockedEnvironment(name="default", python_version="3.12", packages=pkgs)
    return Lock(environments={"default": env}, resolver_version="0.13.9")


_LOCK_TEXT = _real_lock().dumps().encode()
_CONFIG_TEXT = (
    b"environments:\n  default:\n    python_version: '3.12'\n    packages:\n"
    b"      - alpha==1.0\n      - {name: beta, version: '2.0', extras: [x]}\n"
    b"    dev_packages: [pytest>=8]\n  other: {}\n"
)


def _lock_shaped() -> st.SearchStrategy[Any]:
    package = st.fixed_dictionaries(
        {"name": st.one_of(st.just("alpha"), _values), "version": st.one_of(st.just("1.0"),
                                                                            _values)},
        optional={"dev": _values, "dependencies": _values,
                  "files": st.one_of(st.just([{"name": "a-1.0.tar.gz", "sha256": _SHA}]),
                                     _values)},
    )
    env = st.fixed_dictionaries(
        {"python_version": st.one_of(st.just("3.12"), st.floats(), _values)},
        optional={"packages": st.one_of(st.lists(package, max_size=3), _values),
                  "requirements": _values, "config_hash": _values},
    )
    return st.fixed_dictionaries(
        {"schema_version": st.one_of(st.just("1.0"), _values),
         "environments": st.one_of(st.dictionaries(st.text(max_size=10), env, max_size=3),
                                   _values)},
        optional={"resolver": _values},
    )


def _config_shaped() -> st.SearchStrategy[Any]:
    requirement = st.one_of(
        st.sampled_from(["alpha", "alpha==1.0", "a b", "x @ https://e/x.whl", "a[b]>=1;"]),
        st.text(max_size=30),
        st.fixed_dictionaries({"name": _values}, optional={"version": _values,
                                                           "extras": _values}),
    )
    env = st.fixed_dictionaries(
        {}, optional={"python_version": st.one_of(st.floats(), st.integers(), _values),
                      "packages": st.one_of(st.lists(requirement, max_size=3), _values),
                      "dev_packages": _values},
    )
    return st.fixed_dictionaries(
        {"environments": st.one_of(st.dictionaries(_values.filter(_hashable), env, max_size=3),
                                   _values)}
    )


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _check(error: EnvknitError) -> None:
    text = str(error)
    assert "\n" not in text, text
    assert len(text) < 2000, len(text)


def _read(data: bytes, which: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / which
        path.write_bytes(data)
        try:
            if which == "envknit.yaml":
                load_config(path)
            else:
                load_lock(path)
        except EnvknitError as exc:
            _check(exc)


@_SETTINGS
@given(data=st.one_of(_values, _lock_shaped()))
def test_lock_from_any_data(data: object) -> None:
    try:
        Lock.from_dict(data)
    except EnvknitError as exc:
        _check(exc)


@_SETTINGS
@given(data=st.one_of(_values, _config_shaped()))
def test_config_from_any_data(data: object) -> None:
    try:
        Config.from_dict(data, Path("envknit.yaml"))
    except EnvknitError as exc:
        _check(exc)


@_SETTINGS
@given(data=st.one_of(_lock_shaped(), _config_shaped()), which=st.sampled_from(
    ["envknit.yaml", "envknit.lock.yaml"]))
def test_files_of_any_dumped_data(data: object, which: str) -> None:
    try:
        text = yaml.safe_dump(data)
    except ValueError:  # an int too long for str(): the mutation tests write those as text
        assume(False)
    _read(text.encode(), which)


def _mutated(original: bytes) -> st.SearchStrategy[bytes]:
    """``original`` with a few bytes replaced, inserted or deleted, or cut short."""
    edit = st.tuples(st.integers(0, len(original)), st.sampled_from(["set", "insert", "delete"]),
                     st.binary(min_size=1, max_size=4))

    def apply(edits: list[tuple[int, str, bytes]], cut: int | None) -> bytes:
        data = bytearray(original)
        for where, kind, blob in edits:
            pos = min(where, len(data))
            if kind == "set":
                data[pos:pos + len(blob)] = blob
            elif kind == "insert":
                data[pos:pos] = blob
            else:
                del data[pos:pos + len(blob)]
        return bytes(data[:cut] if cut is not None else data)

    return st.builds(apply, st.lists(edit, min_size=1, max_size=6),
                     st.one_of(st.none(), st.integers(0, len(original))))


_YAML_TOKENS = [
    b"9" * 5000, b"2001-13-45", b"0x" + b"f" * 5000, b"&a ", b"*a", b"!!binary ",
    b"!!python/name:os.system ", b"[", b"{", b"? ", b"\t", b"\x00", b"\xff", b"---\n",
    b"%YAML 1.1\n",
]


@_SETTINGS
@given(data=st.one_of(_mutated(_LOCK_TEXT),
                      st.builds(lambda t, i: _LOCK_TEXT[:i] + t + _LOCK_TEXT[i:],
                                st.sampled_from(_YAML_TOKENS),
                                st.integers(0, len(_LOCK_TEXT)))))
def test_mutated_lock_files(data: bytes) -> None:
    _read(data, "envknit.lock.yaml")


@_SETTINGS
@given(data=st.one_of(_mutated(_CONFIG_TEXT),
                      st.builds(lambda t, i: _CONFIG_TEXT[:i] + t + _CONFIG_TEXT[i:],
                                st.sampled_from(_YAML_TOKENS),
                                st.integers(0, len(_CONFIG_TEXT)))))
def test_mutated_config_files(data: bytes) -> None:
    _read(data, "envknit.yaml")


def test_the_unmutated_files_are_accepted() -> None:
    # the generators start from files the readers accept
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "envknit.lock.yaml").write_bytes(_LOCK_TEXT)
        (Path(tmp) / "envknit.yaml").write_bytes(_CONFIG_TEXT)
        assert load_lock(Path(tmp) / "envknit.lock.yaml") == _real_lock()
        assert sorted(load_config(Path(tmp) / "envknit.yaml").environments) == ["default",
                                                                                 "other"]
