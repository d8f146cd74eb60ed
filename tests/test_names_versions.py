"""envknit.names.normalize_version: the same answer as packaging, with or without its import."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from packaging.version import InvalidVersion, Version

from envknit.errors import InvalidNameError
from envknit.names import normalize_version


def _packaging(text: str) -> str | None:
    try:
        return str(Version(text))
    except InvalidVersion:
        return None


@pytest.mark.parametrize("text", [
    "1.0", "0", "01.0", "1.0.0", "2.28.2", "1.0a1", "1.0A1", "1.0alpha1", "1.0a01", "1.0rc1",
    "1.0c1", "1.0.post1", "1.0-1", "1.0.dev0", "1.0a1.post2.dev3", "1!2.0", "0!1.0",
    "1.0+local", "1.0+Local.1", "v1.0", " 1.0", "1.0.", "1..0", "1.*", "rc1", "1.0a", "",
])
def test_versions_are_normalised_as_packaging_does(text: str) -> None:
    expected = _packaging(text)
    if expected is None:
        with pytest.raises(InvalidNameError):
            normalize_version(text)
    else:
        assert normalize_version(text) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789.abcrpostdev!+-_", max_size=14))
def test_any_version_text_is_normalised_as_packaging_does(text: str) -> None:
    expected = _packaging(text)
    if expected is None:
        with pytest.raises(InvalidNameError):
            normalize_version(text)
    else:
        assert normalize_version(text) == expected
