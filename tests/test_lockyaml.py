"""envknit._lockyaml: the lock's YAML is PyYAML's, byte for byte, and reads back as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from envknit._lockyaml import dump_block
from envknit.lock import DistFile, Lock, LockedEnvironment, LockedPackage, load_lock, save_lock


def _pyyaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


# strings that look like other YAML types (PyYAML quotes them), or that are near misses
TRICKY = [
    "1.0", "3.13", "1", "0", "07", "08", "0x1f", "0b101", "1_000", "1e5", "1.0e+5", "1.5e-3",
    "12:30", "1:20.5", "2024-01-01", "2024-1-1t10:00:00", "yes", "No", "ON", "off", "true",
    "False", "null", "Null", "NULL", "n", "y", "Y", "e", "E", "nan", "inf", "0o7", "1__0",
    "1.0.0", "1.0a1", "1.0+local", "1!2.0", "2.0.post1", "a==1.0", "b>=1", "c~=1.0", "d!=2",
    "e<3", "f.g-h_i", "x" * 150, "1" * 64, "0" * 64, "9" + "e" * 63, "abc-1.0-py3-none-any.whl",
]


@pytest.mark.parametrize("value", TRICKY)
def test_a_scalar_is_written_as_pyyaml_writes_it(value: str) -> None:
    shapes = ({"k": value}, {"k": [value]}, {value: "v"}, {"k": [{"name": value, "x": [value]}]})
    for data in shapes:
        ours = dump_block(data)
        assert ours is None or ours == _pyyaml(data), data
    assert (dump_block({"k": value}) is None) == (":" in value)  # ':' is left to PyYAML


@pytest.mark.parametrize("value", ["a b", "a: b", "#x", "-x", "x'y", 'x"y', "é", "a,b", "[x]",
                                   "x; python_version < '3.12'", "", "x\ny", " x", "a#b"])
def test_other_strings_are_left_to_pyyaml(value: str) -> None:
    assert dump_block({"k": value}) is None
    assert dump_block({"k": [value]}) is None


def test_other_types_and_shapes_are_left_to_pyyaml() -> None:
    for data in ({}, {"k": 1}, {"k": None}, {"k": 1.5}, {"k": [[1]]}, {"k": [{}]}, {1: "v"},
                 {"k" * 101: "v"}):
        assert dump_block(data) is None


_text = st.text(alphabet="abcdefxyzEN0123456789._+=<>!~-:", min_size=0, max_size=12)
_leaf = st.one_of(_text, st.booleans())
_tree = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(_text, inner, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_text, _tree, min_size=1, max_size=4))
def test_any_tree_is_pyyaml_bytes_or_left_to_pyyaml(data: dict[str, Any]) -> None:
    ours = dump_block(data)
    if ours is not None:
        assert ours == _pyyaml(data)
        assert yaml.safe_load(ours) == data


def _lock(requirement: str) -> Lock:
    files = (DistFile(name="attrs-23.1.0-py3-none-any.whl", sha256="1" * 64),
             DistFile(name="attrs-23.1.0.tar.gz", sha256="ab" * 32))
    packages = (
        LockedPackage(name="attrs", version="23.1.0", files=files),
        LockedPackage(name="tool", version="1.0", dev=True, dependencies=("attrs",),
                      files=(DistFile(name="tool-1.0-py3-none-any.whl", sha256="cd" * 32),)),
    )
    envs = {
        "default": LockedEnvironment(name="default", python_version="3.12", packages=packages,
                                     requirements=(requirement, "tool"), config_hash="e" * 64),
        "2024": LockedEnvironment(name="2024", python_version="3.10", node_version="20"),
    }
    return Lock(environments=envs, resolver_version="0.13.9")


@pytest.mark.parametrize("requirement", ["attrs==23.1.0", "attrs>=23; python_version < '3.13'"])
def test_the_lock_file_is_pyyamls_and_loads_back(tmp_path: Path, requirement: str) -> None:
    lock = _lock(requirement)
    header = "# envknit.lock.yaml: written by 'envknit lock'; commit it, do not edit it.\n"
    assert lock.dumps() == header + _pyyaml(lock.to_dict())
    save_lock(lock, tmp_path / "envknit.lock.yaml")
    assert load_lock(tmp_path / "envknit.lock.yaml") == lock


# the regular expressions _lockyaml's string checks stand for (what it used before: PyYAML's
# implicit resolvers, yaml/resolver.py)
_SAFE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=<>!~-]{0,199}")
_NOT_STR_RE = re.compile(
    r"""^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    |[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN)
    |[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    |<<
    |~|null|Null|NULL|
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
     (?:[Tt]|[\ \t]+)[0-9][0-9]?
     :[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
     (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?
    |=)$""",
    re.X,
)
_SCALAR_CHARS = "0123456789_.eE+-xXbBoOnNyYtTfFlLuUsSaArR=<>!~:é \n"


@settings(max_examples=3000, deadline=None)
@given(st.one_of(
    st.text(alphabet=_SCALAR_CHARS, max_size=12),
    st.sampled_from(TRICKY),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9_]{1,3}\.[0-9_]{0,3}([eE][-+]?[0-9]{0,2})?"
                  r"|0[bx][0-9a-fA-F_]{0,3}|[0-9]{1,12}", fullmatch=True),
))
def test_the_string_checks_are_the_patterns_they_stand_for(value: str) -> None:
    from envknit._lockyaml import _not_str, _safe

    assert _safe(value) == bool(_SAFE_RE.fullmatch(value))
    if _safe(value):
        assert _not_str(value) == bool(_NOT_STR_RE.match(value)), value
        data = {"k": value}
        assert dump_block(data) == _pyyaml(data)


def test_a_very_long_safe_string_is_left_to_pyyaml() -> None:
    assert dump_block({"k": "a" * 200}) == _pyyaml({"k": "a" * 200})
    assert dump_block({"k": "a" * 201}) is None
