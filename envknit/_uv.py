"""uv for the library: resolving an environment into the lock model, installing single files.

uv comes from the ``uv`` PyPI package (a dependency). Its own environment variables
(``UV_INDEX_URL``, ``UV_FIND_LINKS``, ``UV_OFFLINE``, ``UV_CACHE_DIR``...) pass through (a
relative ``UV_FIND_LINKS`` folder is made absolute: uv may run elsewhere); ``UvOptions`` adds
what the command line says (``--find-links``, ``--no-index``, ``--offline``, ``--no-build``).
uv is always told never to download a Python.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _uvlock
from ._uvlock import uv_environ
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


def uv_bin() -> str:
    """The path of the uv executable shipped by the ``uv`` package."""
    return _uvlock.find_uv()


def _run(args: Sequence[str], what: str, *, show: tuple[str, TextIO] | None = None) -> None:
    """Run uv; ``show`` = (label, stream): show that ``label`` runs until uv is done.

    Without ``show``, uv starts through ``_uvlock.spawn`` (``os.posix_spawn``, one ``poll``
    loop): ``subprocess`` and what it loads (threading, signal, selectors: ~5 ms of a cold
    install) load only to show a build's progress.
    """
    cmd = [uv_bin(), *args]
    if show is None:
        proc = _uvlock.spawn(cmd, uv_environ())
        _uvlock.communicate([proc])
        status, out, err = proc.status, proc.stdout, proc.stderr
    else:
        import subprocess

        from ._progress import wait_with_progress

        try:
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=uv_environ()) as child:
                out, err = wait_with_progress(child, show[0], stream=show[1])
        except OSError as exc:
            raise ResolverError(f"cannot run uv ({cmd[0]}): {exc.strerror}") from None
        status = child.returncode
    if status != 0:
        detail = (err or out).strip()
        if "hash mismatch" in detail.lower() or "hashes do not match" in detail.lower():
            raise IntegrityError(
                f"{what}: a downloaded file does not match the hash in the lock; the file on "
                f"the index changed or the lock was edited (re-run 'envknit lock' if you trust "
                f"the index).\nuv said:\n{detail}"
            )
        raise ResolverError(f"{what} failed (uv exit status {status}):\n{detail}")


def uv_version(cache_dir: Path | None = None) -> str:
    """uv's version, e.g. ``"0.13.9"``; remembered in ``cache_dir`` (a folder) if given
    (``_uvlock.uv_version``: per uv binary, so that another or an upgraded uv is asked)."""
    return _uvlock.uv_version(str(cache_dir) if cache_dir is not None else None)


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
    ``_uv_output`` parses both forms; ``_uvlock`` runs them (for several environments at once).
    """
    options = options or UvOptions()
    job = _uvlock.Job("", packages, dev_packages, str(python), python_version)
    _uvlock.finish(_uvlock.start([job], uv_bin(), options.args(), no_build=options.no_build))
    if job.error is not None:
        # the message without the environment's name (job names are the caller's)
        raise ResolverError(str(job.error).removeprefix(": ")) from None
    return [
        ResolvedPackage(name=name, version=version, files=files, required_by=parents,
                        main_requirement=main)
        for name, version, files, parents, main in job.result
    ]


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
