"""Parsing uv's own output, recorded from a real run (tests/data/uv-<version>/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from envknit._uv_output import parse_pylock, parse_requirements_txt
from envknit.errors import ResolverError

RECORDED = Path(__file__).parent / "data" / "uv-0.13.9"


def test_requirements_txt_gives_pins_hashes_parents_and_input_files() -> None:
    pins = parse_requirements_txt((RECORDED / "compile-split.txt").read_text(encoding="utf-8"))
    assert {name: pin.version for name, pin in pins.items()} == {
        "iniconfig": "2.3.1", "packaging": "26.4", "pluggy": "1.7.0",
        "pygments": "2.21.0", "pytest": "9.2.0", "six": "1.17.0",
    }
    assert pins["pytest"].direct_from == {"main.in"} and not pins["pytest"].required_by
    # a multi-line "via": one input file and one parent
    assert pins["pygments"].direct_from == {"dev.in"}
    assert pins["pygments"].required_by == {"pytest"}
    assert pins["iniconfig"].required_by == {"pytest"} and not pins["iniconfig"].direct_from
    assert pins["six"].hashes == {
        "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
        "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81",
    }


def test_pylock_gives_each_file_name_with_its_hash() -> None:
    files = parse_pylock((RECORDED / "pylock.toml").read_text(encoding="utf-8"))
    assert sorted(files) == ["iniconfig", "packaging", "pluggy", "pygments", "pytest", "six"]
    assert files["six"] == {
        "six-1.17.0.tar.gz": "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81",
        "six-1.17.0-py2.py3-none-any.whl":
            "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
    }


def test_both_recorded_outputs_agree_on_every_hash() -> None:
    pins = parse_requirements_txt((RECORDED / "compile-split.txt").read_text(encoding="utf-8"))
    files = parse_pylock((RECORDED / "pylock.toml").read_text(encoding="utf-8"))
    for name, pin in pins.items():
        assert set(files[name].values()) == pin.hashes


def test_a_constraint_file_is_not_a_parent() -> None:
    text = "a==1.0\n    # via\n    #   -c constraints.txt\n    #   b\n"
    assert parse_requirements_txt(text)["a"].required_by == {"b"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a>=1.0\n", "which is not a pin"),
        ("a==1.0 --index-url=https://x\n", "does not know"),
        ("a b==1\n", "cannot read"),
    ],
)
def test_requirements_txt_envknit_cannot_read_is_refused(text: str, message: str) -> None:
    with pytest.raises(ResolverError, match=message):
        parse_requirements_txt(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('lock-version = "2.0"\npackages = []\n', "lock-version '2.0'"),
        ('lock-version = "1.0"\n', r"pylock\.packages: expected list"),
        ('lock-version = "1.0"\n[[packages]]\nname = "a"\n'
         'wheels = [{ url = "a-1-py3-none-any.whl" }]\n',
         r"packages\[0\]\.wheels\[0\]\.hashes"),
        ("lock-version = [\n", "cannot read"),
    ],
)
def test_pylock_envknit_cannot_read_is_refused(text: str, message: str) -> None:
    with pytest.raises(ResolverError, match=message):
        parse_pylock(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="htpsfile:/%20.-_?#@[]ab~", max_size=30))
def test_a_file_name_is_urllibs(location: str) -> None:
    from urllib.parse import unquote, urlsplit

    from envknit._uv_output import _file_name

    try:
        expected = unquote(urlsplit(location).path.rsplit("/", 1)[-1])
    except ValueError:
        with pytest.raises(ValueError):
            _file_name(location)
        return
    assert _file_name(location) == expected


@pytest.mark.parametrize("location", [
    "https://files.example/p/ab/x-1.0-py3-none-any.whl", "file:///tmp/w/x-1.0.tar.gz",
    "/abs/x.whl", "https://host", "https://h/", "//host", "a:b", "x%2By.whl", "h/x.whl?q#f",
])
def test_file_names_of_usual_locations(location: str) -> None:
    from urllib.parse import unquote, urlsplit

    from envknit._uv_output import _file_name

    assert _file_name(location) == unquote(urlsplit(location).path.rsplit("/", 1)[-1])


def test_plain_pins_read_without_packaging_are_as_packaging_reads_them() -> None:
    sha = "a" * 64
    pins = parse_requirements_txt(f"Foo_Bar==01.0.0A1 \\\n    --hash=sha256:{sha}\n")
    assert pins["foo-bar"].version == "1.0.0a1" and pins["foo-bar"].hashes == {sha}
    for line in ("foo==1.0 ; python_version < '4'", "foo[x]==1.0", "foo == 1.0"):
        assert parse_requirements_txt(f"{line} --hash=sha256:{sha}\n")["foo"].version == "1.0"
    with pytest.raises(ResolverError, match="not a pin"):
        parse_requirements_txt(f"foo===1.0 --hash=sha256:{sha}\n")
