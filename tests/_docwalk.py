"""Walk a Markdown page's fenced examples: its shell lines and Python blocks, in page order.

A page's examples are its documentation contract, so the walker reads what they promise:

- in a ``sh`` block, a line ``envknit run ... -- CMD   # VALUE`` promises that ``CMD`` prints
  ``VALUE`` (a single word: a trailing comment with spaces is prose, not output);
- in a ``python`` block, ``print(...)  # VALUE`` and a comment line right after a ``print``
  promise the printed line, in order;
- a ``yaml`` block shows a file the commands before it produced.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests._builders import build_wheel, package_files
from tests._cli_helpers import uv_env

__all__ = [
    "GETTING_STARTED",
    "README",
    "SETUP_PREFIXES",
    "Block",
    "ShellLine",
    "build_doc_wheels",
    "doc_env",
    "expected_prints",
    "fenced_blocks",
    "run_python",
    "run_shell",
    "shell_lines",
    "walk",
]

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"

_FENCE_RE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Block:
    """One fenced block: its language, text and 1-based line in the page."""

    lang: str
    text: str
    line: int
    where: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ShellLine:
    """One command of a ``sh`` block, and the output it promises (``envknit run`` only)."""

    command: str
    expected: str | None
    where: str


def fenced_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order."""
    blocks: list[Block] = []
    lang: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE_RE.match(line)
        if lang is None and match:
            lang, start, body = match[1], number + 1, []
        elif lang is not None and line.strip() == "```":
            blocks.append(Block(lang=lang, text="\n".join(body) + "\n", line=start,
                                where=f"{page.name}:{start}"))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{page.name}: unclosed fence at line {start - 1}"
    return blocks


def _split_comment(line: str) -> tuple[str, str | None]:
    """``(command, comment)``: the comment starts at a ``#`` after a space, outside quotes."""
    quote: str | None = None
    for i, char in enumerate(line):
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), None


def shell_lines(block: Block) -> list[ShellLine]:
    """The commands of a ``sh`` block (blank and comment-only lines dropped)."""
    assert block.lang == "sh", block.where
    result = []
    for offset, raw in enumerate(block.text.splitlines()):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        command, comment = _split_comment(raw)
        expected = None
        if command.startswith("envknit run") and comment and " " not in comment:
            expected = comment
        result.append(ShellLine(command=command, expected=expected,
                                where=f"{block.where.split(':')[0]}:{block.line + offset}"))
    return result


def expected_prints(block: Block) -> list[str]:
    """The lines a ``python`` block promises to print, in order."""
    assert block.lang == "python", block.where
    expected: list[str] = []
    after_print = False
    for raw in block.text.splitlines():
        line = raw.strip()
        if line.startswith("print(") and "  # " in line:
            expected.append(line.split("  # ", 1)[1].strip())
            after_print = False
        elif line.startswith("print("):
            after_print = True
        elif after_print and line.startswith("# "):
            expected.append(line[2:].strip())
            after_print = False
        else:
            after_print = False
    return expected


def run_shell(
    line: ShellLine, *, cwd: Path, env: Mapping[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run one documented command with bash; assert it succeeds and prints what it promises."""
    proc = subprocess.run(
        ["bash", "-c", line.command], cwd=cwd, env=dict(env), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    assert proc.returncode == 0, (
        f"{line.where}: `{line.command}` -> exit status {proc.returncode}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    if line.expected is not None:
        assert proc.stdout.strip() == line.expected, (
            f"{line.where}: `{line.command}` printed {proc.stdout.strip()!r}, "
            f"the page says {line.expected!r}"
        )
    return proc


def run_python(
    block: Block, python: Path | str, *, cwd: Path, env: Mapping[str, str],
    timeout: float = 240, args: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run a ``python`` block as a script; assert it succeeds and prints what it promises."""
    script = cwd / f"_doc_{block.line}.py"
    script.write_text(block.text, encoding="utf-8")
    proc = subprocess.run(
        [str(python), str(script), *args], cwd=cwd, env=dict(env), capture_output=True,
        text=True, timeout=timeout, check=False,
    )
    assert proc.returncode == 0, (
        f"{block.where}: the block failed (exit status {proc.returncode})\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    promised = expected_prints(block)
    assert proc.stdout.splitlines() == promised, (
        f"{block.where}: the block printed {proc.stdout.splitlines()!r}, "
        f"the page says {promised!r}"
    )
    return proc


# Lines that set up envknit itself rather than use it: walked elsewhere (test_install.py) or
# the developer's set-up commands (run by CI as .ci/run).
SETUP_PREFIXES = ("python3 scripts/dev.py", "pip install", "uv tool install", "pipx install")

_FAKE_PYTEST = "def main():\n    print('1 passed')\n"


def build_doc_wheels(dest: Path) -> Path:
    """The packages the pages name, as tiny wheels: attrs, requests, and a pytest console script."""
    for dist, version in (("attrs", "23.1.0"), ("attrs", "24.2.0"),
                          ("requests", "2.28.2"), ("requests", "2.31.0")):
        build_wheel(dest, dist, version, package_files(dist, version))
    pytest_files = {
        **package_files("pytest", "8.0.0", {"cli.py": _FAKE_PYTEST}),
        "pytest-8.0.0.dist-info/entry_points.txt": "[console_scripts]\npytest = pytest.cli:main\n",
    }
    build_wheel(dest, "pytest", "8.0.0", pytest_files)
    return dest


def doc_env(wheels: Path, tmp_path: Path, home: Path, bindir: Path) -> dict[str, str]:
    """Offline uv on ``wheels``, this test's store and cache, ``bindir``'s envknit first."""
    env = uv_env(wheels, tmp_path / "uv-cache", {"ENVKNIT_HOME": str(home)})
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    return env


def walk(
    page: Path, *, python: Path | str, cwd: Path, env: dict[str, str],
    skip: tuple[str, ...] = SETUP_PREFIXES,
) -> list[str]:
    """Run ``page``'s examples in order; return what ran (``where`` of each command/block)."""
    ran: list[str] = []
    for block in fenced_blocks(page):
        if block.lang == "sh":
            for line in shell_lines(block):
                if line.command.startswith(skip):
                    continue
                run_shell(line, cwd=cwd, env=env)
                ran.append(line.where)
        elif block.lang == "python":
            if "SubInterpreterEnv" in block.text and sys.version_info < (3, 12):
                continue  # Gen 2 needs CPython 3.12+: the page says so in the block
            run_python(block, python, cwd=cwd, env=env)
            ran.append(block.where)
        elif block.lang == "yaml":
            assert_yaml_matches(block, cwd / "envknit.yaml")
            ran.append(block.where)
    return ran


def _without_python_version(data: object) -> object:
    """The config with each ``python_version`` value blanked (the page shows one Python)."""
    assert isinstance(data, dict)
    envs = {
        name: {k: ("X.Y" if k == "python_version" else v) for k, v in env.items()}
        for name, env in data["environments"].items()
    }
    return {**data, "environments": envs}


def assert_yaml_matches(block: Block, path: Path) -> None:
    shown = yaml.safe_load(block.text)
    actual = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _without_python_version(actual) == _without_python_version(shown), (
        f"{block.where}: the page shows\n{block.text}\nthe commands before it wrote\n"
        f"{path.read_text(encoding='utf-8')}"
    )
