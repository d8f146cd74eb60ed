"""envknit.yaml's validated environments, remembered per file under ``$ENVKNIT_HOME/cache``.

``envknit lock`` starts uv as soon as it knows what to resolve. Reading envknit.yaml costs
PyYAML's import (~10 ms: its reader's and resolver's regular expressions), and validating it
the requirement checks (re), the config model (dataclasses) and each environment's
``config_hash`` (json, hashlib). All of it is a pure function of the file's bytes and of
envknit's code, so the result is kept: per config file, its exact bytes, the envknit version
that read them (and packaging's, when a requirement needed its parser) and each environment's
name, Python, Node, requirements and config_hash. The same bytes read by the same versions
give the same environments without any of those imports. The cache is NUL-separated text
(json would load re and enum); anything else in the file, or another version, is a miss, and
the caller reads envknit.yaml as usual (same errors), then keeps it (:func:`dumps`).
"""

from __future__ import annotations

import os
import sys
import zlib

from ._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    # name, python_version, node_version, packages, dev_packages, config_hash
    CachedEnv = tuple[str, str | None, str | None, tuple[str, ...], tuple[str, ...], str]

__all__ = ["cache_file", "dumps", "load", "read_source"]

_FORMAT = "envknit-config 1"
MAX_SIZE = 64 * 1024 * 1024  # _yamlfile.MAX_SIZE: a larger file is read (and refused) there


def cache_file(cache_dir: str, config_path: str) -> str:
    """Where the environments of ``config_path`` are kept."""
    key = zlib.crc32(os.fsencode(config_path))
    return os.path.join(cache_dir, "config", f"{key:08x}.txt")


def read_source(config_path: str) -> bytes | None:
    """The file's bytes, or None when they cannot be read (the YAML reader says why)."""
    try:
        with open(config_path, "rb") as fh:
            raw = fh.read(MAX_SIZE + 1)
    except OSError:
        return None
    return raw if len(raw) <= MAX_SIZE else None


def _packaging_version() -> str:
    packaging = sys.modules.get("packaging")
    return str(getattr(packaging, "__version__", "")) if packaging is not None else ""


def load(cache_dir: str, config_path: str, source: bytes) -> list[CachedEnv] | None:
    """The environments saved for ``config_path`` when its bytes were ``source``, or None."""
    try:
        with open(cache_file(cache_dir, config_path), encoding="utf-8", newline="") as fh:
            fields = fh.read().split("\0")
        if (len(fields) < 6 or fields[0] != _FORMAT or fields[1] != __version__
                or fields[2] != config_path or fields[3] != source.decode("utf-8")):
            return None
        if fields[4]:  # a requirement needed packaging's parser: the same packaging, then
            import packaging

            if fields[4] != packaging.__version__:
                return None
        envs: list[CachedEnv] = []
        count, at = int(fields[5]), 6
        for _ in range(count):
            name, python, node, digest = fields[at:at + 4]
            n_main = int(fields[at + 4])
            main = tuple(fields[at + 5:at + 5 + n_main])
            at += 5 + n_main
            n_dev = int(fields[at])
            dev = tuple(fields[at + 1:at + 1 + n_dev])
            at += 1 + n_dev
            if len(main) != n_main or len(dev) != n_dev or len(digest) != 64:
                return None
            envs.append((name, python or None, node or None, main, dev, digest))
    except (OSError, ValueError, IndexError, ImportError):
        return None  # not there, not ours (anyone may edit the file), not UTF-8: a miss
    return envs if at == len(fields) else None


def dumps(config_path: str, source: bytes, envs: Sequence[CachedEnv]) -> str | None:
    """The cache file's text for ``envs`` read from ``source`` (the bytes of ``config_path``),
    or None when they cannot be kept (the caller writes it to :func:`cache_file`)."""
    fields = [_FORMAT, __version__, config_path, "", _packaging_version(), str(len(envs))]
    for name, python, node, main, dev, digest in envs:
        fields += [name, python or "", node or "", digest, str(len(main)), *main,
                   str(len(dev)), *dev]
    try:
        fields[3] = source.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the YAML reader refuses such a file anyway
    if any("\0" in f for f in fields):
        return None  # not representable (the YAML reader refuses NUL bytes too)
    return "\0".join(fields)
