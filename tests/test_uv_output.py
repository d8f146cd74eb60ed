"""Parsing uv's own output, recorded from a real run (tests/data/uv-<version>/)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from envknit._uv_output import parse_pylock, parse_requirements_txt
from envknit.errors import InvalidNameError, ResolverError

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


def _same(fast: object, slow: object, value: object) -> None:
    """``fast(value)`` gives what ``slow(value)`` gives, or raises what it raises."""
    try:
        expected = slow(value)  # type: ignore[operator]
    except InvalidNameError as exc:
        with pytest.raises(InvalidNameError) as got:
            fast(value)  # type: ignore[operator]
        assert str(got.value) == str(exc)
        return
    assert fast(value) == expected  # type: ignore[operator]


# non-ASCII letters that [A-Z] matches under re.IGNORECASE, an Arabic-Indic digit
_NAMEISH = st.text(alphabet="aZ09._-+!=~ \n\u0131\u017f\u212a\u00e9\u0663/", max_size=12)


@settings(max_examples=600, deadline=None)
@given(_NAMEISH)
def test_names_without_regular_expressions_are_names_py(value: str) -> None:
    from envknit import _uv_output as out, names

    _same(out._name, names.normalize_name, value)
    _same(out._version, names.normalize_version, value)
    _same(out._filename, names.validate_filename, value)
    for suffix in (".whl", ".tar.gz", ".zip", ".tar.bz2", ".gz"):
        _same(out._filename, names.validate_filename, value + suffix)
    _same(out._name, names.normalize_name, value * 20)  # past the length limit
    _same(out._version, names.normalize_version, "1." + "0." * 60 + "1")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdefABx\n", min_size=62, max_size=66))
def test_digests_without_regular_expressions_are_names_py(value: str) -> None:
    from envknit import _uv_output as out, names

    _same(out._sha256, names.validate_sha256, value)
    _same(out._sha256, names.validate_sha256, 7)


def _tomllib_view(data: object) -> object:
    """What envknit reads of a TOML value: strings, tables, arrays (bare values alike)."""
    from envknit._uv_output import _OTHER

    if isinstance(data, dict):
        return {k: _tomllib_view(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_tomllib_view(v) for v in data]
    return data if isinstance(data, str) else _OTHER


def _toml_loads(text: str) -> object:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib.loads(text)


@pytest.mark.parametrize("name", ["pylock.toml", "pylock-wheels.toml"])
def test_uvs_own_lines_are_read_as_tomllib_reads_them(name: str) -> None:
    from envknit._uv_output import read_uv_lines

    text = (RECORDED / name).read_text(encoding="utf-8")
    data = read_uv_lines(text)
    assert data is not None  # uv's layout: no TOML parser needed
    assert _tomllib_view(data) == _tomllib_view(_toml_loads(text))


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_any_edit_of_uvs_lines_is_read_as_tomllib_reads_it_or_left_to_it(
    data: st.DataObject,
) -> None:
    from envknit._uv_output import read_uv_lines

    text = (RECORDED / data.draw(st.sampled_from(["pylock.toml", "pylock-wheels.toml"])))\
        .read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 3))
        new = data.draw(st.sampled_from(
            ['"', "\\", "'", "#", " ", "\n", "{", "}", "[", "]", ",", "=", ".", "a", "1",
             "[[packages]]\n", 'name = "x"\n', "x = 1\n", "\t", "T", "-", "}]", "\r"]))
        text = text[:at] + new + text[at + cut:]
    read = read_uv_lines(text)
    if read is None:
        return  # left to tomllib
    assert _tomllib_view(read) == _tomllib_view(_toml_loads(text))


@settings(max_examples=2000, deadline=None)
@given(st.from_regex(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,3})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?)?|[0-9]{1,4}|true|false|[0-9:T.Z+-]{1,22}", fullmatch=True))
def test_a_bare_value_is_taken_only_where_tomllib_takes_it(token: str) -> None:
    from envknit._uv_output import _bare

    if _bare(token):
        _toml_loads(f"x = {token}\n")  # raises if tomllib refuses it
