"""What a target's pylock.toml compile said (each pin's usable files), kept per target.

``envknit lock`` asks uv twice per environment: requirements.txt (the pins, the hashes of
every file of each pinned version, the graph) and pylock.toml (only to learn which of those
files are usable for the target, and their names). The second answer depends only on the
target (uv's version, the interpreter, ``--python-version``, uv's options) and on the pin's
files: a pin whose requirements.txt hash set is exactly the one seen before has the same
usable files. So they are kept under ``$ENVKNIT_HOME/cache/files/``, one text file per target:

    line 1: the format; line 2: the target key (NUL-separated); then one line per pin,
    ``name==version<TAB>hash,hash...<TAB>file=hash,file=hash...``; last line: ``end``.

Anything unexpected in the file is a miss (the lock then runs both compiles, as without it).
"""

from __future__ import annotations

import os
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    # "name==version" -> (every file's sha256, {usable file name: sha256})
    Entries = dict[str, tuple[frozenset[str], dict[str, str]]]

__all__ = ["MAX_ENTRIES", "cache_file", "dumps", "load", "target_key"]

_FORMAT = "envknit-files 1"
MAX_ENTRIES = 4096  # a target's pins kept at most (this lock's first, then the newest others)
_HEX = frozenset("0123456789abcdef")
_SAFE = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._+!-")


def target_key(uv_version: str, python: str, python_version: str, options: Sequence[str],
               env: Mapping[str, str]) -> str | None:
    """What uv's answer for one target depends on besides the requirements, or None when it
    cannot be told (the interpreter is not there). ``env``: uv's environment (its ``UV_*``
    variables are options too, e.g. ``UV_FIND_LINKS``)."""
    real = os.path.realpath(python)
    try:
        st = os.stat(real)
    except OSError:
        return None
    uv_vars = sorted(f"{k}={v}" for k, v in env.items()
                     if k.startswith("UV_") and k != "UV_CACHE_DIR")
    fields = [uv_version, real, str(st.st_size), str(st.st_mtime_ns), python_version,
              *options, "--", *uv_vars, "--", *_uv_configs(env)]
    key = "\0".join(fields)
    return None if "\n" in key else key


def _uv_configs(env: Mapping[str, str]) -> list[str]:
    """uv's user and system configuration files (``uv.toml``), each as path, size and
    modification time, or the path alone when it is not there: their options are uv's too."""
    home = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    dirs = (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
    out = []
    for folder in (home, *dirs, "/etc"):
        path = os.path.join(folder, "uv", "uv.toml")
        try:
            st = os.stat(path)
        except OSError:
            out.append(path)
            continue
        out.append(f"{path}\t{st.st_size}\t{st.st_mtime_ns}")
    return out


def cache_file(cache_dir: str, key: str) -> str:
    """Where the files of the target ``key`` are kept."""
    digest = zlib.crc32(key.encode("utf-8", "surrogateescape"))
    return os.path.join(cache_dir, "files", f"{digest:08x}.txt")


def _sha(value: str) -> str:
    if len(value) != 64 or not set(value) <= _HEX:
        raise ValueError(value)
    return value


def load(cache_dir: str, key: str) -> Entries | None:
    """The pins kept for the target ``key``, or None (no file, another target, not ours)."""
    try:
        with open(cache_file(cache_dir, key), encoding="utf-8", newline="") as fh:
            lines = fh.read().split("\n")
        if len(lines) < 4 or lines[0] != _FORMAT or lines[1] != key or lines[-2:] != ["end", ""]:
            return None
        entries: Entries = {}
        for line in lines[2:-2]:
            pin, every, usable = line.split("\t")
            name, _, version = pin.partition("==")
            if not (name and version and set(pin) <= _SAFE | {"="}) or pin in entries:
                return None
            hashes = frozenset(_sha(h) for h in every.split(","))
            files: dict[str, str] = {}
            for item in usable.split(","):
                fname, _, sha = item.partition("=")
                if not fname or not set(fname) <= _SAFE or fname in files:
                    return None
                files[fname] = _sha(sha)
            if not set(files.values()) <= hashes:
                return None
            entries[pin] = (hashes, files)
    except (OSError, ValueError):  # not there, not UTF-8, a line of another shape: a miss
        return None
    return entries


def dumps(key: str, entries: Entries) -> str:
    """The cache file's text for ``entries`` (the caller writes it to :func:`cache_file`)."""
    lines = [_FORMAT, key]
    for pin, (hashes, files) in entries.items():
        if not (hashes and files and set(pin) <= _SAFE | {"="}
                and all(set(f) <= _SAFE for f in files)):
            continue  # load would refuse the whole file: this pin is asked for again
        lines.append(f"{pin}\t{','.join(sorted(hashes))}\t"
                     + ",".join(f"{f}={h}" for f, h in sorted(files.items())))
    return "\n".join([*lines, "end", ""])
