"""Validation and normalisation of package names, versions, environment names and file names.

Everything that ends up in a path or a command line passes through here first, so hostile input
(``../../etc``, ``/abs``, ``a;rm -rf ~``, embedded newlines) is refused before it is used.
"""

from __future__ import annotations

import re
import sys

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .errors import InvalidNameError

__all__ = [
    "normalize_name",
    "normalize_version",
    "python_tuple",
    "validate_env_name",
    "validate_filename",
    "validate_python_version",
    "validate_sha256",
]

_ENV_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_PY_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*\.(whl|tar\.gz|zip|tar\.bz2)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def normalize_name(name: object) -> str:
    """Return the canonical (PEP 503) form of a distribution name, refusing unsafe input."""
    try:
        if isinstance(name, str):
            return str(canonicalize_name(name, validate=True))
    except InvalidName:
        pass  # refused below, with our message
    raise InvalidNameError(
        "package name", str(name), "names are letters, digits, '.', '_' and '-' (PEP 508)"
    )


def normalize_version(version: object) -> str:
    """Return the normalised form of a PEP 440 version, refusing anything else."""
    if not isinstance(version, str) or "\n" in version or "/" in version or "\\" in version:
        raise InvalidNameError("version", str(version), "not a PEP 440 version")
    try:
        return str(Version(version))
    except InvalidVersion:
        raise InvalidNameError("version", version, "not a PEP 440 version") from None


def validate_env_name(name: object) -> str:
    """Return ``name`` if it is a safe environment name (letters, digits, '_' and '-')."""
    if not isinstance(name, str) or not _ENV_RE.match(name):
        raise InvalidNameError(
            "environment name",
            str(name),
            "use 1-64 letters, digits, '_' or '-', starting with a letter or digit",
        )
    return name


def validate_python_version(value: object) -> str:
    """Return ``value`` if it looks like ``3.12`` or ``3.12.1``."""
    if not isinstance(value, str) or not _PY_RE.match(value):
        raise InvalidNameError("python_version", str(value), "expected a version like '3.12'")
    return value


def validate_filename(value: object) -> str:
    """Return ``value`` if it is a bare distribution file name (no directories)."""
    if not isinstance(value, str) or not _FILE_RE.match(value) or ".." in value:
        raise InvalidNameError(
            "distribution file name", str(value), "expected a bare wheel or sdist file name"
        )
    return value


def validate_sha256(value: object) -> str:
    """Return ``value`` (lower-case hex) if it is a sha256 digest."""
    if not isinstance(value, str) or not _SHA256_RE.match(value):
        raise InvalidNameError("sha256", str(value), "expected 64 lower-case hex digits")
    return value


def python_tuple(version: str | None) -> tuple[int, int]:
    """``"3.12"`` / ``"3.12.1"`` -> ``(3, 12)``; None -> the running interpreter."""
    if not version:
        return (sys.version_info.major, sys.version_info.minor)
    major, minor = version.split(".")[:2]
    return (int(major), int(minor))
