"""The only module that spawns uv: resolving an environment and installing single files.

uv comes from the ``uv`` PyPI package (a dependency). Its own environment variables
(``UV_INDEX_URL``, ``UV_FIND_LINKS``, ``UV_NO_INDEX``, ``UV_OFFLINE``, ``UV_CACHE_DIR``...)
pass through unchanged; uv is always told never to download a Python.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import IntegrityError, ResolverError
from .names import normalize_name, normalize_version, validate_filename, validate_sha256

__all__ = [
    "ResolvedPackage",
    "compile_environment",
    "install_pinned",
    "uv_bin",
    "uv_environ",
    "uv_version",
]

_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+?)(?:\s*;.*?)?\s*\\?$")
_HASH_RE = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_VIA_RE = re.compile(r"^#\s+(?:via\s+)?(.+?)\s*$")
_PYLOCK_PKG_RE = re.compile(r"^\[\[packages\]\]\s*$", re.MULTILINE)
_PYLOCK_FIELD_RE = re.compile(r'^(name|version)\s*=\s*"([^"]*)"', re.MULTILINE)
_PYLOCK_FILE_RE = re.compile(
    r'url\s*=\s*"([^"]+)"[^{}]*?hashes\s*=\s*\{\s*sha256\s*=\s*"([0-9a-f]{64})"\s*\}'
)


@lru_cache(maxsize=1)
def uv_bin() -> str:
    """The path of the uv executable shipped by the ``uv`` package."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError) as exc:
        raise ResolverError(
            f"uv was not found ({exc}); reinstall envknit (it depends on the 'uv' package)"
        ) from None


def uv_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment uv runs with: ours (UV_* pass through), never downloading a Python."""
    env = dict(os.environ)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.pop("VIRTUAL_ENV", None)  # --python / --target choose the interpreter, not the shell
    env.update(extra or {})
    return env


def _run(
    args: Sequence[str], what: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [uv_bin(), *args]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=uv_environ(), cwd=cwd, check=False
        )
    except OSError as exc:
        raise ResolverError(f"cannot run uv ({cmd[0]}): {exc.strerror}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        if "hash mismatch" in detail.lower() or "hashes do not match" in detail.lower():
            raise IntegrityError(
                f"{what}: a downloaded file does not match the hash in the lock; the file on "
                f"the index changed or the lock was edited (re-run 'envknit lock' if you trust "
                f"the index).\nuv said:\n{detail}"
            )
        raise ResolverError(f"{what} failed (uv exit status {proc.returncode}):\n{detail}")
    return proc


@lru_cache(maxsize=1)
def uv_version() -> str:
    """uv's version, e.g. ``"0.13.9"``."""
    out = _run(["--version"], "uv --version").stdout.split()
    return out[1] if len(out) > 1 else "unknown"


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolvedPackage:
    """One package of a resolution: its pin, accepted files (name -> sha256) and parents."""

    name: str
    version: str
    files: Mapping[str, str]
    required_by: frozenset[str]
    direct_from: frozenset[str]


def _parse_requirements_txt(text: str) -> dict[str, tuple[str, list[str], set[str], set[str]]]:
    """``uv pip compile`` output -> name -> (version, hashes, parents, input files)."""
    result: dict[str, tuple[str, list[str], set[str], set[str]]] = {}
    current: str | None = None
    in_via = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _PIN_RE.match(line)
        if m and not raw.startswith((" ", "\t")):
            current = normalize_name(m[1])
            result[current] = (normalize_version(m[2]), [], set(), set())
            in_via = False
            continue
        if current is None:
            continue
        for h in _HASH_RE.findall(line):
            result[current][1].append(h)
        if line.startswith("#"):
            body = line[1:].strip()
            if body.startswith("via"):
                in_via = True
                body = body[3:].strip()
            if not in_via or not body:
                continue
            if body.startswith("-r "):
                result[current][3].add(Path(body[3:].strip()).name)
            elif not body.startswith("-"):
                result[current][2].add(normalize_name(body.split()[0]))
    return result


def _parse_pylock(text: str) -> dict[str, dict[str, str]]:
    """uv's ``pylock.toml`` -> name -> {file name: sha256} (only the fields envknit needs)."""
    found: dict[str, dict[str, str]] = {}
    for block in _PYLOCK_PKG_RE.split(text)[1:]:
        fields = dict(_PYLOCK_FIELD_RE.findall(block))
        if "name" not in fields:
            continue
        files: dict[str, str] = {}
        for url, sha in _PYLOCK_FILE_RE.findall(block):
            fname = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
            files[validate_filename(fname)] = validate_sha256(sha)
        found[normalize_name(fields["name"])] = files
    return found


def compile_environment(
    packages: Sequence[str],
    dev_packages: Sequence[str],
    *,
    python: Path,
    python_version: str,
) -> list[ResolvedPackage]:
    """Resolve ``packages`` + ``dev_packages`` for ``python_version`` with hashes, via uv.

    Two ``uv pip compile`` runs: one in requirements.txt form (the closure, hashes and the
    "via" annotations that give the dependency graph), one of the resulting pins in
    ``pylock.toml`` form (the file name of every hash). The second is served from uv's cache.
    """
    import tempfile  # here: install and run, which do not resolve, skip its imports

    with tempfile.TemporaryDirectory(prefix="envknit-lock-") as tmp:
        folder = Path(tmp)
        (folder / "main.in").write_text("".join(f"{r}\n" for r in packages), encoding="utf-8")
        (folder / "dev.in").write_text("".join(f"{r}\n" for r in dev_packages), encoding="utf-8")
        common = [
            "--python", str(python), "--python-version", python_version,
            "--generate-hashes", "--no-header", "--quiet",
        ]
        what = f"resolving for Python {python_version}"
        out = _run(
            ["pip", "compile", *common, "--annotation-style", "split", "main.in", "dev.in"],
            what, cwd=folder,
        ).stdout
        pins = _parse_requirements_txt(out)
        if not pins:
            return []
        (folder / "pins.in").write_text(
            "".join(f"{n}=={v[0]}\n" for n, v in sorted(pins.items())), encoding="utf-8"
        )
        _run(
            ["pip", "compile", *common, "--no-deps", "--format", "pylock.toml",
             "pins.in", "-o", "pylock.toml"],
            what, cwd=folder,
        )
        files = _parse_pylock((folder / "pylock.toml").read_text(encoding="utf-8"))
    result = []
    for name, (version, hashes, parents, inputs) in sorted(pins.items()):
        # pylock.toml lists the files usable for this target (the sdist and the wheels that
        # fit); requirements.txt lists the hashes of every file. Lock the usable ones.
        usable = {f: h for f, h in files.get(name, {}).items() if h in set(hashes)}
        if not usable:
            raise ResolverError(
                f"uv gave no usable file (with a name and a hash) for {name}=={version}; "
                "cannot write a complete lock"
            )
        result.append(
            ResolvedPackage(
                name=name,
                version=version,
                files=usable,
                required_by=frozenset(parents),
                direct_from=frozenset(inputs),
            )
        )
    return result


def install_pinned(
    pins: Sequence[tuple[str, str, str]], *, python: Path, target: Path
) -> None:
    """Install exactly the files ``(name, version, sha256)`` into ``target`` in one uv run.

    ``--no-deps`` and ``--require-hashes``: uv refuses any other file and any dependency. uv
    installs the files in parallel.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    reqs = target.parent / f"{target.name}.requirements.txt"
    reqs.write_text(
        "".join(f"{name}=={version} --hash=sha256:{sha}\n" for name, version, sha in pins),
        encoding="utf-8",
    )
    what = "installing " + ", ".join(f"{name}=={version}" for name, version, _ in pins)
    try:
        _run(
            ["pip", "install", "--no-deps", "--require-hashes", "--quiet",
             "--python", str(python), "--target", str(target), "-r", str(reqs)],
            what,
        )
    finally:
        reqs.unlink(missing_ok=True)
