"""Clean baselines for the start-up and CLI benches: a plain venv, real offline uv, paired timing.

A baseline measured in the development venv is not a baseline: its editable install puts a
``.pth`` import finder on every start-up (37 ms instead of 17 ms for ``python -c pass``). So
every start-up and CLI figure runs in a virtual environment built here, inside the bench run,
from the *base* interpreter (``python -m venv --without-pip``: no ``_virtualenv.pth`` either)
with envknit installed from this checkout as a normal, non-editable package by
``uv pip install`` (that set-up step may use the usual uv cache and index; nothing timed does).
:func:`clean_env` refuses an environment that has any ``.pth`` file.

Offline means offline: ``UV_OFFLINE=1``, a private ``UV_CACHE_DIR``, ``UV_FIND_LINKS`` at the
bench's own wheels, ``UV_NO_CONFIG`` (no user ``uv.toml``), and the default index pointed at a
loopback index that counts requests (``tests/_loopback.py``): the bench asserts none came.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests._loopback import counting_index  # noqa: E402

__all__ = [
    "ROOT",
    "CleanEnv",
    "Row",
    "Samples",
    "add_source_option",
    "base_python",
    "clean_env",
    "counting_index",
    "must_run",
    "offline_env",
    "paired",
    "print_rows",
    "row",
    "timed",
]


def base_python() -> Path:
    """The interpreter the running venv was made from (no site-packages of ours on it)."""
    exe = Path(sys.base_prefix) / "bin" / "python{}.{}".format(*sys.version_info[:2])
    if not exe.exists():
        raise SystemExit(f"no base interpreter at {exe}")
    return exe


@dataclass(frozen=True, kw_only=True, slots=True)
class CleanEnv:
    """A venv with envknit installed normally: ``python``, its ``envknit`` and ``uv``."""

    root: Path
    python: Path
    envknit: Path
    uv: Path


def clean_env(dest: Path, source: Path = ROOT) -> CleanEnv:
    """Build ``dest``: a venv from the base interpreter, envknit (from the checkout ``source``,
    this one by default: another one gives the "before" figures) installed non-editable."""
    subprocess.run([str(base_python()), "-m", "venv", "--without-pip", str(dest)], check=True)
    # built from a copy: a build/ folder left in the checkout by an earlier build would put
    # its stale modules into the wheel (and the checkout is left as it was)
    copy = dest.parent / f"{dest.name}-source"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(
        ".git", ".venvs", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    py = dest / "bin" / "python"
    setup_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    uv_here = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    proc = subprocess.run(
        [uv_here, "pip", "install", "-q", "--compile-bytecode", "--python", str(py), str(copy)],
        env=setup_env, capture_output=True, text=True, check=False,
    )
    if proc.returncode:
        raise SystemExit(f"installing envknit into {dest} failed:\n{proc.stderr}")
    pth = sorted(str(p.relative_to(dest)) for p in dest.rglob("*.pth"))
    if pth:
        raise SystemExit(f"the clean venv has .pth files, so it is no baseline: {pth}")
    where = subprocess.run(
        [str(py), "-c", "import envknit; print(envknit.__file__)"],
        capture_output=True, text=True, check=True, cwd=dest,
    ).stdout.strip()
    if not where.startswith(str(dest)):
        raise SystemExit(f"the clean venv imports envknit from {where}, not from its own copy")
    return CleanEnv(root=dest, python=py, envknit=dest / "bin" / "envknit", uv=dest / "bin" / "uv")


def add_source_option(parser: argparse.ArgumentParser) -> None:
    """``--source CHECKOUT``: measure the envknit of another checkout (say, main before a
    change); the benches' own helpers still come from this one."""
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="envknit checkout to install into the clean venv (default: this)")


def offline_env(
    *, wheels: Path, cache: Path, index_url: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The process environment of every timed command: uv offline, on our wheels and cache."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "VIRTUAL_ENV", "PYTHON", "ENVKNIT_"))}
    env.update(
        UV_OFFLINE="1",
        UV_NO_CONFIG="1",
        UV_FIND_LINKS=str(wheels),
        UV_CACHE_DIR=str(cache),
        UV_DEFAULT_INDEX=index_url,
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_PROGRESS="1",
    )
    env.update(extra or {})
    return env


def must_run(cmd: Sequence[str | os.PathLike[str]], *, cwd: Path, env: Mapping[str, str]) -> str:
    """Run ``cmd``; stop the bench with its output if it fails. Returns its stdout."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=dict(env), capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                         f"{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def timed(func: Callable[[], object]) -> float:
    """Seconds ``func()`` took (wall clock)."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, kw_only=True, slots=True)
class Samples:
    """Seconds per case: wall clock, and the CPU time of the processes it ran (and waited for).

    On a loaded machine wall time mostly measures the other jobs; CPU time (user + system of
    the child processes) is what the command itself costs, so both are reported.
    """

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def paired(cases: Mapping[str, Callable[[], object]], rounds: int) -> Samples:
    """Time every case once per round, the order rotating, so that noise hits all alike."""
    names = list(cases)
    out = Samples(wall={name: [] for name in names}, cpu={name: [] for name in names})
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            cpu0 = _children_cpu()
            out.wall[name].append(timed(cases[name]))
            out.cpu[name].append(_children_cpu() - cpu0)
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One figure: ours against a baseline of the same run, with a goal on ratio or excess."""

    label: str
    ours: list[float]
    base: list[float]
    base_label: str
    max_ratio: float | None = None
    max_extra_ms: float | None = None
    ours_cpu: list[float] | None = None
    base_cpu: list[float] | None = None

    def text(self) -> str:
        a, b = statistics.median(self.ours) * 1000, statistics.median(self.base) * 1000
        diffs = [(x - y) * 1000 for x, y in zip(self.ours, self.base, strict=True)]
        line = (f"{self.label}: {a:.1f} ms vs {self.base_label} {b:.1f} ms = {a / b:.2f}x "
                f"(paired difference {statistics.median(diffs):+.1f} ms)")
        if self.ours_cpu and self.base_cpu:
            c, d = statistics.median(self.ours_cpu) * 1000, statistics.median(self.base_cpu) * 1000
            line += f"; CPU {c:.1f} vs {d:.1f} ms = {c / d:.2f}x" if d else ""
        if self.max_ratio is not None:
            ok = a / b <= self.max_ratio
            line += f" [goal <= {self.max_ratio}x: {'met' if ok else 'MISSED'}]"
        if self.max_extra_ms is not None:
            ok = a - b < self.max_extra_ms
            line += f" [goal < +{self.max_extra_ms:g} ms: {'met' if ok else 'MISSED'}]"
        return line


def row(
    samples: Samples, label: str, ours: str, base: str, base_label: str,
    *, max_ratio: float | None = None, max_extra_ms: float | None = None,
) -> Row:
    """The figure ``ours`` against ``base``, both cases of the same paired rounds."""
    return Row(label=label, ours=samples.wall[ours], base=samples.wall[base],
               base_label=base_label, max_ratio=max_ratio, max_extra_ms=max_extra_ms,
               ours_cpu=samples.cpu[ours], base_cpu=samples.cpu[base])


def print_rows(rows: Sequence[Row]) -> None:
    """Print each figure on its own line."""
    for row in rows:
        print(row.text(), flush=True)
