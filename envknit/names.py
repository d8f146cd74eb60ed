"""Validation and normalisation of package names, versions, environment names and file names.

Everything that ends up in a path or a command line passes through here first, so hostile input
(``../../etc``, ``/abs``, ``a;rm -rf ~``, embedded newlines) is refused before it is used.
"""

from __future__ import annotations

import re
import sys

from .errors import InvalidNameError

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_VERSION_LENGTH",
    "canonical_name",
    "normalize_name",
    "normalize_version",
    "python_tuple",
    "validate_env_name",
    "validate_filename",
    "validate_python_version",
    "validate_sha256",
]

# PEP 503 normalisation and the PEP 508 name rule, as packaging.utils.canonicalize_name has
# them: that module imports packaging.tags (logging, platform, sysconfig: ~8 ms) on every path
# that normalises a name, configure_from_lock's included.
_SEPARATORS = re.compile(r"[-_.]+")
_VALID_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)
_ENV_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_PY_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*\.(whl|tar\.gz|zip|tar\.bz2)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# a version already in packaging's normal form (str(Version(v)) == v: no epoch, no local part,
# no leading zero): returned as is, so that paths that only meet such versions (envknit lock)
# need not import packaging.version (its pattern and typing: ~3 ms)
_N = "(?:0|[1-9][0-9]*)"
_NORMAL_VERSION = re.compile(rf"{_N}(?:\.{_N})*(?:(?:a|b|rc){_N})?(?:\.post{_N})?(?:\.dev{_N})?")

# Neither PEP 508 nor packaging nor PyPI caps a name's length; file systems do: a wheel's file
# name (name-version-tags.whl), its .dist-info directory and the store's <name>/<version>
# directories are each one path component, at most 255 bytes on ext4, APFS, NTFS... With a
# name of 128 and a version of 100 characters, "name-version.dist-info" and a wheel name with
# common tags still fit. The longest names on PyPI are well under 100 characters.
MAX_NAME_LENGTH = 128
MAX_VERSION_LENGTH = 100
MAX_FILENAME_BYTES = 255


def canonical_name(name: str) -> str:
    """The PEP 503 form of a distribution name (``Foo.Bar_baz`` -> ``foo-bar-baz``), unchecked."""
    return _SEPARATORS.sub("-", name).lower()


def normalize_name(name: object) -> str:
    """Return the canonical (PEP 503) form of a distribution name, refusing unsafe input."""
    if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            "package name", name, f"longer than {MAX_NAME_LENGTH} characters"
        )
    if isinstance(name, str) and _VALID_NAME.fullmatch(name):
        return canonical_name(name)
    raise InvalidNameError(
        "package name", name, "names are letters, digits, '.', '_' and '-' (PEP 508)"
    )


def normalize_version(version: object) -> str:
    """Return the normalised form of a PEP 440 version, refusing anything else."""
    if isinstance(version, str) and len(version) > MAX_VERSION_LENGTH:
        raise InvalidNameError(
            "version", version, f"longer than {MAX_VERSION_LENGTH} characters"
        )
    if not isinstance(version, str) or "\n" in version or "/" in version or "\\" in version:
        raise InvalidNameError("version", version, "not a PEP 440 version")
    if _NORMAL_VERSION.fullmatch(version):
        return version
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(version))
    except InvalidVersion:
        raise InvalidNameError("version", version, "not a PEP 440 version") from None


def validate_env_name(name: object) -> str:
    """Return ``name`` if it is a safe environment name (letters, digits, '_' and '-')."""
    if not isinstance(name, str) or not _ENV_RE.match(name):
        raise InvalidNameError(
            "environment name",
            name,
            "use 1-64 letters, digits, '_' or '-', starting with a letter or digit",
        )
    return name


def validate_python_version(value: object) -> str:
    """Return ``value`` if it looks like ``3.12`` or ``3.12.1``."""
    if not isinstance(value, str) or not _PY_RE.match(value):
        raise InvalidNameError("python_version", value, "expected a version like '3.12'")
    return value


def validate_filename(value: object) -> str:
    """Return ``value`` if it is a bare distribution file name (no directories)."""
    if (
        not isinstance(value, str)
        or len(value.encode("utf-8", "replace")) > MAX_FILENAME_BYTES
        or not _FILE_RE.match(value)
        or ".." in value
    ):
        raise InvalidNameError(
            "distribution file name", value,
            f"expected a bare wheel or sdist file name of at most {MAX_FILENAME_BYTES} bytes",
        )
    return value


def validate_sha256(value: object) -> str:
    """Return ``value`` (lower-case hex) if it is a sha256 digest."""
    if not isinstance(value, str) or not _SHA256_RE.match(value):
        raise InvalidNameError("sha256", value, "expected 64 lower-case hex digits")
    return value


def python_tuple(version: str | None) -> tuple[int, int]:
    """``"3.12"`` / ``"3.12.1"`` -> ``(3, 12)``; None -> the running interpreter."""
    if not version:
        return (sys.version_info.major, sys.version_info.minor)
    major, minor = version.split(".")[:2]
    return (int(major), int(minor))
