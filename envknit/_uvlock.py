"""uv's compiles for a lock, started at once without ``subprocess``; finding uv, its version.

``envknit lock`` is mostly waiting for uv: this module starts every environment's two
``uv pip compile`` runs as early as it can and imports nothing beyond ``os`` and ``select``
until they are done, so that the rest of a lock (parsers, the writer) loads while uv resolves.
Processes start with ``os.posix_spawn`` (``subprocess`` and what it loads cost ~5 ms of a lock
that uv answers in ~20), with stdout and stderr on pipes read by one ``poll`` loop; uv runs in
its scratch folder through its own ``--directory`` (posix_spawn has no ``cwd``). A failure, an
exception or ^C kills and reaps every uv still running: none is left behind, no zombie.
"""

from __future__ import annotations

import os
import select
import sys

from .errors import ResolverError

TYPE_CHECKING = False  # typing and collections.abc (~4 ms) only for the type checker
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._filecache import Entries
    from ._lockdata import Resolved

__all__ = [
    "MAX_AT_ONCE",
    "Job",
    "abandon",
    "Process",
    "communicate",
    "finish",
    "remember",
    "find_uv",
    "start",
    "stop",
    "uv_environ",
    "uv_version",
]

MAIN_INPUT = "main.in"  # the requirements file of an environment's ``packages``
MAX_AT_ONCE = 8  # environments resolved at once (two uv processes each)
_NO_BUILD = "Wheels are required for `"  # uv 0.13's hint when --no-build leaves no file
_NO_BUILD_END = "` because building from source"


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


# -- uv's path and version, remembered in $ENVKNIT_HOME/cache/uv-version ----------------------
# line 1: the binary (path, size, mtime); line 2: its version; line 3: what finding it depends
# on (_finder_key): the same answer is found again without importing the uv package
# (sysconfig: ~4 ms) when uv is not in a virtual environment's bin folder

_FOUND: dict[str, tuple[str, str]] = {}  # this process: finder key -> (uv's path, version)
_LOCATED: dict[str, str] = {}  # this process: finder key -> uv's path (version not known)


def _finder_key() -> str:
    """What ``uv.find_uv_bin()`` depends on: the interpreter's prefixes (its scripts folders)
    and import path (where the uv package is; but its first entry, the script's folder or the
    working directory), the user's base. Not ``sys.executable``, which is spelled as the
    interpreter was started (``../venv/bin/python``)."""
    return "\0".join([sys.prefix, sys.base_prefix, os.environ.get("PYTHONUSERBASE", ""),
                      *sys.path[1:]])


def _binary_key(exe: str) -> str:
    try:
        st = os.stat(exe)
    except OSError:
        return ""  # uv is not there: running it says so
    return f"{exe}\t{st.st_size}\t{st.st_mtime_ns}"


def _read_memo(cache_dir: str | None) -> list[str]:
    if cache_dir is None:
        return []
    try:
        with open(os.path.join(cache_dir, "uv-version"), encoding="utf-8") as fh:
            return fh.read().split("\n")
    except (OSError, ValueError):  # ValueError: not UTF-8 (not ours)
        return []


def _locate() -> str:
    """The uv executable shipped by the ``uv`` package (as ``uv.find_uv_bin()`` finds it)."""
    if sys.platform != "win32" and sys.prefix != sys.base_prefix:
        # in a virtual environment the scripts folder is <prefix>/bin, the first place
        # uv.find_uv_bin() looks
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


def find_uv(cache_dir: str | None = None) -> str:
    """uv's path; with ``cache_dir``, remembered there beside its version."""
    finder = _finder_key()
    if finder in _FOUND:
        return _FOUND[finder][0]
    memo = _read_memo(cache_dir)
    if len(memo) >= 3 and memo[2] == finder and memo[1].strip():
        exe = memo[0].split("\t")[0]
        if memo[0] and _binary_key(exe) == memo[0]:
            _FOUND[finder] = (exe, memo[1].strip())
            return exe
    exe = _LOCATED.get(finder) or _LOCATED.setdefault(finder, _locate())
    if memo and memo[0] and memo[0] == _binary_key(exe) and len(memo) > 1 and memo[1].strip():
        _FOUND[finder] = (exe, memo[1].strip())
        _write_memo(cache_dir, exe, memo[1].strip())  # found again: remember how
    return exe


def _write_memo(cache_dir: str | None, exe: str, version: str) -> None:
    key = _binary_key(exe)
    if cache_dir is None or not key:
        return
    from ._atomic import atomic_write_text

    try:
        os.makedirs(cache_dir, exist_ok=True)
        atomic_write_text(os.path.join(cache_dir, "uv-version"),
                          f"{key}\n{version}\n{_finder_key()}\n")
    except OSError:
        pass  # not remembered: the next lock asks uv again


def uv_version(cache_dir: str | None = None) -> str:
    """uv's version, e.g. ``"0.13.9"``; remembered in ``cache_dir`` (a folder) if given.

    Asking uv costs a process (~6 ms of CPU, a third of a small ``uv pip compile``) on every
    ``envknit lock``; the answer is kept per uv binary, keyed on its path, size and
    modification time, so that another or an upgraded uv is asked again.
    """
    exe = find_uv(cache_dir)
    found = _FOUND.get(_finder_key())
    if found is not None and found[0] == exe:
        return found[1]
    proc = spawn([exe, "--version"], uv_environ())
    communicate([proc])
    if proc.status != 0:
        raise ResolverError(f"uv --version failed (uv exit status {proc.status}):\n"
                            f"{(proc.stderr or proc.stdout).strip()}")
    out = proc.stdout.split()
    version = out[1] if len(out) > 1 else "unknown"
    if _binary_key(exe):
        _FOUND[_finder_key()] = (exe, version)
    _write_memo(cache_dir, exe, version)
    return version


# -- processes --------------------------------------------------------------------------------

class Process:
    """A uv process started by :func:`spawn`: its output once :func:`communicate` returns."""

    __slots__ = ("_chunks", "_fds", "argv", "pid", "status", "stderr", "stdout")

    def __init__(self, argv: list[str], pid: int, fds: list[int]) -> None:
        self.argv = argv
        self.pid = pid
        self.status: int | None = None  # the exit status once reaped (-N: killed by signal N)
        self.stdout = ""
        self.stderr = ""
        self._fds = fds  # stdout's and stderr's read ends, while open
        self._chunks: dict[int, list[bytes]] = {fd: [] for fd in fds}


def _high(fd: int) -> int:
    """``fd`` itself, or a copy of it numbered 3 or more (0-2 are the child's own streams)."""
    if fd > 2:
        return fd
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return high


def spawn(argv: list[str], env: Mapping[str, str]) -> Process:
    """Start ``argv`` with stdout and stderr on pipes; ResolverError if it cannot start.

    The pipes are the only descriptors it inherits: Python opens every other one
    close-on-exec (PEP 446). SIGPIPE is not reset to its default (subprocess would): uv's
    Rust runtime sets it up itself.
    """
    ends: list[int] = []
    try:
        for _ in range(2):
            ends += os.pipe()
            ends[-2:] = [_high(ends[-2]), _high(ends[-1])]
        out_r, out_w, err_r, err_w = ends
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)])
    except BaseException as exc:  # no descriptor is left open, whatever failed
        for fd in ends:
            os.close(fd)
        if isinstance(exc, OSError):
            raise ResolverError(f"cannot run uv ({argv[0]}): {exc.strerror}") from None
        raise
    os.close(out_w)
    os.close(err_w)
    return Process(argv, pid, [out_r, err_r])


def _reap(proc: Process) -> None:
    if proc.status is None:
        _, status = os.waitpid(proc.pid, 0)
        proc.status = os.waitstatus_to_exitcode(status)


def communicate(procs: Sequence[Process]) -> None:
    """Read every process's output until it ends, then reap them all (``stop`` on failure)."""
    try:
        owner: dict[int, Process] = {}
        poller = select.poll()
        for proc in procs:
            for fd in proc._fds:
                owner[fd] = proc
                poller.register(fd, select.POLLIN)
        while owner:
            for fd, _event in poller.poll():
                data = os.read(fd, 65536)
                proc = owner[fd]
                if data:
                    proc._chunks[fd].append(data)
                    continue
                poller.unregister(fd)
                del owner[fd]
                proc._fds.remove(fd)
                os.close(fd)
        for proc in procs:
            out_fd, err_fd = proc._chunks
            proc.stdout = b"".join(proc._chunks[out_fd]).decode("utf-8", "replace")
            proc.stderr = b"".join(proc._chunks[err_fd]).decode("utf-8", "replace")
            _reap(proc)
    except BaseException:  # whatever stopped us (an error, ^C): no uv is left running
        stop(procs)
        raise


def stop(procs: Sequence[Process]) -> None:
    """Kill the processes not reaped yet, close their pipes and reap them."""
    import signal  # here: enum, which it loads, is not needed on the usual path
    from contextlib import suppress

    for proc in procs:
        for fd in proc._fds:
            os.close(fd)
        proc._fds.clear()
        if proc.status is None:
            with suppress(ProcessLookupError):  # it has exited; _reap takes its status
                os.kill(proc.pid, signal.SIGKILL)
            _reap(proc)


# -- one lock's compiles ------------------------------------------------------------------------

class Job:
    """One environment's resolution: its inputs, then its two uv processes and result."""

    __slots__ = (
        "cached",
        "dev_packages",
        "error",
        "files",
        "folder",
        "graph",
        "name",
        "named",
        "packages",
        "python",
        "python_version",
        "result",
    )

    def __init__(self, name: str, packages: Sequence[str], dev_packages: Sequence[str],
                 python: str, python_version: str) -> None:
        self.name = name
        self.packages = packages
        self.dev_packages = dev_packages
        self.python = python
        self.python_version = python_version
        self.folder = ""
        self.graph: Process | None = None
        self.named: Process | None = None
        self.error: BaseException | None = None  # set before start: the job is not run
        self.result: list[Resolved] = []
        self.cached: Entries | None = None  # the target's kept files: no pylock compile
        self.files: Entries = {}  # this resolution's pins and usable files, to be kept


def _scratch_folder() -> str:
    """A new private folder for uv's inputs (``tempfile`` loads shutil, zlib, bz2, lzma)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    folder = os.path.join(base, f"envknit-lock-{os.urandom(8).hex()}")
    try:
        os.mkdir(folder, 0o700)
    except OSError:
        import tempfile

        folder = tempfile.mkdtemp(prefix="envknit-lock-")
    return folder


def _remove(folder: str) -> None:
    if not folder:
        return
    try:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)
    except OSError:  # something else in there (uv never writes there): remove it all
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _common(job: Job, uv: str, options: Sequence[str]) -> list[str]:
    return [uv, "--directory", job.folder, "pip", "compile", "--python", job.python,
            "--python-version", job.python_version, "--generate-hashes", "--no-header",
            "--quiet", *options]


def _launch(job: Job, uv: str, options: Sequence[str], env: Mapping[str, str]) -> None:
    try:
        job.folder = _scratch_folder()
        for fname, reqs in ((MAIN_INPUT, job.packages), ("dev.in", job.dev_packages)):
            with open(os.path.join(job.folder, fname), "w", encoding="utf-8") as fh:
                fh.write("".join(f"{r}\n" for r in reqs))
        common = _common(job, uv, options)
        job.graph = spawn([*common, "--annotation-style", "split", MAIN_INPUT, "dev.in"], env)
        if job.cached is None:  # the usable files are not known: ask uv for them at once
            job.named = spawn([*common, "--format", "pylock.toml", MAIN_INPUT, "dev.in"], env)
    except BaseException:
        abandon([job])
        raise


def abandon(jobs: Sequence[Job]) -> None:
    """Stop the jobs' processes (kill, reap) and remove their folders."""
    for job in jobs:
        stop([p for p in (job.graph, job.named) if p is not None])
        _remove(job.folder)
        job.folder = ""


class Started:
    """The jobs of :func:`start`, some running: :func:`finish` waits for them all."""

    __slots__ = ("cache_dir", "env", "jobs", "keys", "no_build", "options", "uv")

    def __init__(self, jobs: list[Job], uv: str, options: list[str], env: dict[str, str],
                 no_build: bool) -> None:
        self.cache_dir: str | None = None
        self.keys: dict[int, str] = {}  # id(job) -> its target's key (files kept per target)
        self.jobs = jobs
        self.uv = uv
        self.options = options
        self.env = env
        self.no_build = no_build


def _known_version(uv: str) -> str | None:
    """uv's version if known without running it (remembered beside its path)."""
    found = _FOUND.get(_finder_key())
    return found[1] if found is not None and found[0] == uv else None


def _load_kept(started: Started, runnable: Sequence[Job]) -> None:
    """Each job's target key and, if that target's files are kept, the kept files."""
    if started.cache_dir is None:
        return
    version = _known_version(started.uv)
    if version is None:
        return  # asked after the lock (uv_version): the next lock knows it
    from ._filecache import load, target_key

    loaded: dict[str, Entries | None] = {}
    for job in runnable:
        key = target_key(version, job.python, job.python_version, started.options,
                         started.env)
        if key is None:
            continue
        started.keys[id(job)] = key
        if key not in loaded:
            loaded[key] = load(started.cache_dir, key)
        job.cached = loaded[key]


def start(jobs: list[Job], uv: str, options: Sequence[str], *, no_build: bool = False,
          env: dict[str, str] | None = None, cache_dir: str | None = None) -> Started:
    """Start the first :data:`MAX_AT_ONCE` jobs' compiles (jobs with an ``error`` are skipped).

    ``options``: uv's own options for every compile (``--find-links DIR``, ``--no-build``...).
    ``cache_dir``: where each target's usable files are kept (``_filecache``); a job whose
    target has them runs only the requirements.txt compile.
    """
    started = Started(jobs, uv, list(options), env if env is not None else uv_environ(),
                      no_build)
    started.cache_dir = cache_dir
    runnable = [j for j in jobs if j.error is None]
    _load_kept(started, runnable)
    try:
        for job in runnable[:MAX_AT_ONCE]:
            _launch(job, uv, started.options, started.env)
    except BaseException:
        abandon(runnable)
        raise
    return started


def finish(started: Started) -> None:
    """Wait for every job and set its ``result`` or ``error`` (a ResolverError naming the
    environment); the remaining jobs run :data:`MAX_AT_ONCE` at a time."""
    runnable = [j for j in started.jobs if j.error is None]
    try:
        for at in range(0, len(runnable), MAX_AT_ONCE):
            batch = runnable[at:at + MAX_AT_ONCE]
            if at:
                for job in batch:
                    _launch(job, started.uv, started.options, started.env)
            communicate([p for j in batch for p in (j.graph, j.named) if p is not None])
            for job in batch:
                try:
                    job.result = _resolution(job, started)
                except ResolverError as exc:
                    job.error = ResolverError(f"{job.name}: {exc}")
                finally:
                    _remove(job.folder)
                    job.folder = ""
    except BaseException:
        abandon(runnable)
        raise


def _failure(proc: Process, job: Job) -> ResolverError:
    detail = (proc.stderr or proc.stdout).strip()
    return ResolverError(f"resolving for Python {job.python_version} failed "
                         f"(uv exit status {proc.status}):\n{detail}")


def _resolution(job: Job, started: Started) -> list[Resolved]:
    """The job's packages from its two outputs (a third run if the index moved between)."""
    graph, named = job.graph, job.named
    assert graph is not None
    if graph.status != 0:
        at = graph.stderr.find(_NO_BUILD)
        end = graph.stderr.find(_NO_BUILD_END, at)
        if started.no_build and at >= 0 and end > at:
            what = graph.stderr[at + len(_NO_BUILD):end]
            raise ResolverError(
                f"no wheel for {what} fits Python {job.python_version} on this platform and "
                "--no-build refuses to build it from source: lock without --no-build (the "
                f"lock then says what 'envknit install' will build), or require a version of "
                f"{what} that has wheels"
            )
        raise _failure(graph, job)
    if named is not None and named.status != 0:
        raise _failure(named, job)
    from ._uv_output import parse_pylock, parse_requirements_txt

    pins = parse_requirements_txt(graph.stdout)
    if not pins:
        return []
    files: dict[str, dict[str, str]] = {}
    if named is not None:
        files = parse_pylock(named.stdout)
    elif job.cached is not None:
        for name, pin in pins.items():
            kept = job.cached.get(f"{name}=={pin.version}")
            if kept is not None and kept[0] == pin.hashes:  # the very same files
                files[name] = kept[1]
    missing = {n: p for n, p in pins.items() if not set(files.get(n, {}).values()) & p.hashes}
    if missing:
        if named is not None:
            missing = pins  # as it always was: every pin's files from one more run
        # not kept (a new version, a file added or removed), or the index changed between
        # the two runs: the files of these very pins
        with open(os.path.join(job.folder, "pins.in"), "w", encoding="utf-8") as fh:
            fh.write("".join(f"{p.name}=={p.version}\n" for _, p in sorted(missing.items())))
        third = spawn([*_common(job, started.uv, started.options), "--no-deps", "--format",
                       "pylock.toml", "pins.in"], started.env)
        communicate([third])
        if third.status != 0:
            raise _failure(third, job)
        files.update(parse_pylock(third.stdout))  # (all of them when named ran)
    result: list[Resolved] = []
    for name, pin in sorted(pins.items()):
        # pylock.toml lists the files usable for this target (the sdist and the wheels that
        # fit); requirements.txt lists the hashes of every file. Lock the usable ones.
        usable = {f: h for f, h in files.get(name, {}).items() if h in pin.hashes}
        if not usable:
            raise ResolverError(
                f"uv gave no usable file (with a name and a hash) for {name}=={pin.version}; "
                "cannot write a complete lock"
            )
        result.append((name, pin.version, usable, pin.required_by,
                       MAIN_INPUT in pin.direct_from))
        job.files[f"{name}=={pin.version}"] = (pin.hashes, usable)
    return result


def remember(started: Started) -> None:
    """Keep every resolved job's pins and usable files for its target (after a lock is
    written); a home that cannot be written keeps nothing, silently."""
    if started.cache_dir is None:
        return
    version = _known_version(started.uv)
    by_key: dict[str, list[Job]] = {}
    for job in started.jobs:
        key = started.keys.get(id(job))
        if key is None and version is not None and job.error is None and job.python:
            from ._filecache import target_key

            key = target_key(version, job.python, job.python_version, started.options,
                             started.env)
        if key is not None and job.error is None:
            by_key.setdefault(key, []).append(job)
    for key, jobs in by_key.items():
        fresh: Entries = {}
        for job in jobs:
            fresh.update(job.files)
        kept = jobs[0].cached or {}
        if all(kept.get(pin) == entry for pin, entry in fresh.items()):
            continue  # nothing new: the file stays as it is
        from ._atomic import atomic_write_text
        from ._filecache import MAX_ENTRIES, cache_file, dumps

        entries = dict(fresh)
        for pin, entry in kept.items():  # then the others, newest first, up to the cap
            if len(entries) >= MAX_ENTRIES:
                break
            entries.setdefault(pin, entry)
        path = cache_file(started.cache_dir, key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write_text(path, dumps(key, entries), durable=False)
        except OSError:
            pass  # not kept (a read-only home): the next lock asks uv for the files again
