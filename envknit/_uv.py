"""The only module that spawns uv: resolving an environment and installing single files.

uv comes from the ``uv`` PyPI package (a dependency). Its own environment variables
(``UV_INDEX_URL``, ``UV_FIND_LINKS``, ``UV_OFFLINE``, ``UV_CACHE_DIR``...) pass through (a
relative ``UV_FIND_LINKS`` folder is made absolute: uv may run elsewhere); ``UvOptions`` adds
what the command line says (``--find-links``, ``--no-index``, ``--offline``, ``--no-build``).
uv is always told never to download a Python.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import IntegrityError, ResolverError

TYPE_CHECKING = False  # typing (~2 ms) for the type checker only: a cold install loads this
if TYPE_CHECKING:
    from typing import TextIO

__all__ = [
    "ResolvedPackage",
    "UvOptions",
    "clean_cache",
    "compile_environment",
    "install_pinned",
    "uv_bin",
    "uv_environ",
    "uv_version",
]
_MAIN_INPUT = "main.in"  # the requirements file of an environment's ``packages``
# uv 0.13's hint when --no-build leaves a package without a usable file
_NO_BUILD_RE = re.compile(r"Wheels are required for `([^`]+)` because building from source")


@dataclass(frozen=True, kw_only=True, slots=True)
class UvOptions:
    """What the command line adds to uv's own settings: where files come from, and builds.

    ``find_links`` are absolute folders (or URLs); ``no_index`` keeps uv to them, ``offline``
    keeps it off the network (its cache and local folders only), ``no_build`` refuses to build
    an sdist.
    """

    find_links: tuple[str, ...] = ()
    no_index: bool = False
    offline: bool = False
    no_build: bool = False

    def args(self) -> list[str]:
        out: list[str] = []
        for link in self.find_links:
            out += ["--find-links", link]
        out += [flag for flag, on in (("--no-index", self.no_index), ("--offline", self.offline),
                                      ("--no-build", self.no_build)) if on]
        return out


@lru_cache(maxsize=1)
def uv_bin() -> str:
    """The path of the uv executable shipped by the ``uv`` package."""
    if sys.platform != "win32" and sys.prefix != sys.base_prefix:
        # in a virtual environment the scripts folder is <prefix>/bin, the first place
        # uv.find_uv_bin() looks; importing the uv package costs sysconfig (~2 ms)
        exe = os.path.join(sys.prefix, "bin", "uv")
        if os.path.isfile(exe):
            return exe
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
    if env.get("UV_FIND_LINKS"):
        # uv resolves in a temporary folder: './wheels' must mean the user's folder
        env["UV_FIND_LINKS"] = ",".join(
            link if "://" in link or not link.strip() else os.path.abspath(link.strip())
            for link in env["UV_FIND_LINKS"].split(",")
        )
    env.update(extra or {})
    return env


def _run(
    args: Sequence[str],
    what: str,
    cwd: Path | None = None,
    *,
    show: tuple[str, TextIO] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run uv; ``show`` = (label, stream): show that ``label`` runs until uv is done."""
    cmd = [uv_bin(), *args]
    try:
        if show is None:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=uv_environ(), cwd=cwd, check=False
            )
        else:
            from ._progress import wait_with_progress

            with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=uv_environ(), cwd=cwd) as child:
                out, err = wait_with_progress(child, show[0], stream=show[1])
            proc = subprocess.CompletedProcess(cmd, child.returncode, out, err)
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


def _start(args: Sequence[str], cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start uv without waiting: the caller ``_finish``-es (or ``_stop``-s) it."""
    cmd = [uv_bin(), *args]
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=uv_environ(), cwd=cwd)
    except OSError as exc:
        raise ResolverError(f"cannot run uv ({cmd[0]}): {exc.strerror}") from None


def _finish(proc: subprocess.Popen[str], what: str) -> str:
    """Wait for ``proc``; its stdout, or the error its output explains (as ``_run``)."""
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        detail = (stderr or stdout).strip()
        raise ResolverError(f"{what} failed (uv exit status {proc.returncode}):\n{detail}")
    return stdout


def _stop(proc: subprocess.Popen[str]) -> None:
    """Kill a uv whose answer is no longer wanted, and reap it."""
    proc.kill()
    proc.communicate()


_VERSIONS: dict[str, str] = {}  # uv binary (path, size, mtime) -> its version, this process


def uv_version(cache_dir: Path | None = None) -> str:
    """uv's version, e.g. ``"0.13.9"``; remembered in ``cache_dir`` (a folder) if given.

    Asking uv costs a process (~6 ms of CPU, a third of a small ``uv pip compile``) on every
    ``envknit lock``; the answer is kept per uv binary, keyed on its path, size and
    modification time, so that another or an upgraded uv is asked again.
    """
    exe = uv_bin()
    try:
        st = os.stat(exe)
    except OSError:
        key = ""  # uv is not there: _run below says so
    else:
        key = f"{exe}\t{st.st_size}\t{st.st_mtime_ns}"
    if key in _VERSIONS:
        return _VERSIONS[key]
    memo = cache_dir / "uv-version" if cache_dir is not None and key else None
    if memo is not None:
        try:
            stored_key, _, stored = memo.read_text(encoding="utf-8").partition("\n")
        except (OSError, UnicodeDecodeError):
            stored_key = stored = ""
        if stored_key == key and stored.strip():
            _VERSIONS[key] = stored.strip()
            return _VERSIONS[key]
    out = _run(["--version"], "uv --version").stdout.split()
    version = out[1] if len(out) > 1 else "unknown"
    if key:
        _VERSIONS[key] = version
    if memo is not None:
        from ._atomic import atomic_write_text

        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(memo, f"{key}\n{version}\n")
        except OSError:
            pass  # not remembered: the next lock asks uv again
    return version


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolvedPackage:
    """One package of a resolution: its pin, accepted files (name -> sha256) and parents.

    ``main_requirement``: the environment's ``packages`` (not only ``dev_packages``) ask for
    it by name.
    """

    name: str
    version: str
    files: Mapping[str, str]
    required_by: frozenset[str]
    main_requirement: bool


@contextmanager
def _scratch_folder() -> Iterator[Path]:
    """A new private folder for uv's inputs, removed afterwards.

    Made under ``$TMPDIR`` (or /tmp) directly: ``tempfile`` imports shutil, which loads the
    zlib, bz2 and lzma modules (~3 ms of a lock); tempfile only when that folder fails.
    """
    base = os.environ.get("TMPDIR") or "/tmp"
    folder = Path(base, f"envknit-lock-{os.urandom(8).hex()}")
    try:
        folder.mkdir(mode=0o700)
    except OSError:
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="envknit-lock-"))
    try:
        yield folder
    finally:
        try:
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()
        except OSError:  # something else in there (uv never writes there): remove it all
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def compile_environment(
    packages: Sequence[str],
    dev_packages: Sequence[str],
    *,
    python: Path,
    python_version: str,
    options: UvOptions | None = None,
) -> list[ResolvedPackage]:
    """Resolve ``packages`` + ``dev_packages`` for ``python_version`` with hashes, via uv.

    Two ``uv pip compile`` runs of the same inputs, started together: one in requirements.txt
    form (the closure, hashes and the "via" annotations that give the dependency graph; uv
    0.13's pylock.toml records no dependencies), one in ``pylock.toml`` form (the file name of
    every hash; its requirements.txt form names no file). Both resolve alike from the same
    index and cache; should the index change between them (a pin without a file whose hash
    it lists), the pylock.toml run is repeated for the pins alone, as a third run.
    ``_uv_output`` parses both forms.
    """
    options = options or UvOptions()
    with _scratch_folder() as folder:
        (folder / _MAIN_INPUT).write_text("".join(f"{r}\n" for r in packages), encoding="utf-8")
        (folder / "dev.in").write_text("".join(f"{r}\n" for r in dev_packages), encoding="utf-8")
        common = [
            "--python", str(python), "--python-version", python_version,
            "--generate-hashes", "--no-header", "--quiet", *options.args(),
        ]
        what = f"resolving for Python {python_version}"
        graph = _start(
            ["pip", "compile", *common, "--annotation-style", "split", _MAIN_INPUT, "dev.in"],
            folder,
        )
        try:
            named = _start(
                ["pip", "compile", *common, "--format", "pylock.toml", _MAIN_INPUT, "dev.in"],
                folder,
            )
        except BaseException:  # whatever stopped us (an error, ^C): no uv is left running
            _stop(graph)
            raise
        try:
            # imported while uv resolves (tomllib, the parsers: a few ms off the wall time)
            from ._uv_output import parse_pylock, parse_requirements_txt
        except BaseException:  # likewise (^C)
            _stop(graph)
            _stop(named)
            raise
        try:
            out = _finish(graph, what)
        except BaseException as exc:  # likewise
            _stop(named)
            needs_build = (
                _NO_BUILD_RE.search(str(exc))
                if options.no_build and isinstance(exc, ResolverError) else None
            )
            if needs_build is None:
                raise
            raise ResolverError(
                f"no wheel for {needs_build[1]} fits Python {python_version} on this platform "
                "and --no-build refuses to build it from source: lock without --no-build (the "
                f"lock then says what 'envknit install' will build), or require a version of "
                f"{needs_build[1]} that has wheels"
            ) from None
        named_out = _finish(named, what)
        pins = parse_requirements_txt(out)
        if not pins:
            return []
        files = parse_pylock(named_out)
        if any(not set(files.get(n, {}).values()) & p.hashes for n, p in pins.items()):
            (folder / "pins.in").write_text(
                "".join(f"{p.name}=={p.version}\n" for _, p in sorted(pins.items())),
                encoding="utf-8",
            )
            files = parse_pylock(_run(
                ["pip", "compile", *common, "--no-deps", "--format", "pylock.toml", "pins.in"],
                what, cwd=folder,
            ).stdout)
    result = []
    for name, pin in sorted(pins.items()):
        # pylock.toml lists the files usable for this target (the sdist and the wheels that
        # fit); requirements.txt lists the hashes of every file. Lock the usable ones.
        usable = {f: h for f, h in files.get(name, {}).items() if h in pin.hashes}
        if not usable:
            raise ResolverError(
                f"uv gave no usable file (with a name and a hash) for {name}=={pin.version}; "
                "cannot write a complete lock"
            )
        result.append(
            ResolvedPackage(
                name=name,
                version=pin.version,
                files=usable,
                required_by=pin.required_by,
                main_requirement=_MAIN_INPUT in pin.direct_from,
            )
        )
    return result


def install_pinned(
    pins: Sequence[tuple[str, str, str]],
    *,
    python: Path,
    target: Path,
    options: UvOptions | None = None,
    builds: Sequence[str] = (),
    show: TextIO | None = None,
) -> float:
    """Install exactly the files ``(name, version, sha256)`` into ``target`` in one uv run.

    ``--no-deps`` and ``--require-hashes``: uv refuses any other file and any dependency. uv
    installs the files in parallel. ``--link-mode copy``: the store must not share inodes with
    uv's cache (uv's default hard links, and ``clone``, which falls back to hard links on ext4),
    or whatever edits one (a CA-injection step appending to certifi's ``cacert.pem``) edits
    the other. It overrides a ``UV_LINK_MODE`` of the user's. ``builds`` names the pins that
    come from an sdist; while uv runs, ``show`` (a stream) then shows that they are being
    built, with the elapsed time. Returns how long uv ran, in seconds.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    reqs = target.parent / f"{target.name}.requirements.txt"
    reqs.write_text(
        "".join(f"{name}=={version} --hash=sha256:{sha}\n" for name, version, sha in pins),
        encoding="utf-8",
    )
    what = "installing " + ", ".join(f"{name}=={version}" for name, version, _ in pins)
    options = options or UvOptions()
    label = f"building {', '.join(builds)} from source"
    start = time.monotonic()
    try:
        _run(
            ["pip", "install", "--no-deps", "--require-hashes", "--quiet", "--link-mode", "copy",
             *options.args(),
             "--python", str(python), "--target", str(target), "-r", str(reqs)],
            what,
            show=(label, show) if builds and show is not None else None,
        )
    finally:
        reqs.unlink(missing_ok=True)
    return time.monotonic() - start


def clean_cache(names: Sequence[str]) -> None:
    """Remove the distributions ``names`` from uv's cache (the next install fetches them)."""
    _run(["cache", "clean", *names], "cleaning uv's cache of " + ", ".join(names))
