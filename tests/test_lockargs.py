"""envknit.cli._lockargs: lock's and install's usual command lines read as argparse reads
them, the others left to it."""

from __future__ import annotations

import pytest

from envknit.cli._lockargs import install_args, lock_args
from envknit.cli._parser import build_parser

READ = [
    [], ["--env", "new"], ["--offline"], ["--no-index", "--find-links", "w", "--no-build"],
    ["--find-links", "a", "--find-links", "b", "--env", "x", "--env", "y"],
    ["--offline", "--offline"],
]
LEFT = [
    ["--help"], ["-h"], ["--env"], ["--env", "--offline"], ["--env=x"], ["--off"], ["x"],
    ["--find-links"], ["--find-links", "-w"], ["--", "x"], ["--env", ""], ["--verbose"],
]


@pytest.mark.parametrize("argv", READ)
def test_usual_lines_are_read_as_argparse_reads_them(argv: list[str]) -> None:
    ours = lock_args(argv)
    theirs, rest = build_parser().parse_known_args(["lock", *argv])
    assert ours is not None and rest == []
    assert vars(ours) == vars(theirs)


@pytest.mark.parametrize("argv", LEFT)
def test_other_lines_are_left_to_argparse(argv: list[str]) -> None:
    assert lock_args(argv) is None


@pytest.mark.parametrize("argv", [*READ, ["--no-dev"], ["--env", "x", "--no-dev", "--offline"]])
def test_usual_install_lines_are_read_as_argparse_reads_them(argv: list[str]) -> None:
    ours = install_args(argv)
    theirs, rest = build_parser().parse_known_args(["install", *argv])
    assert ours is not None and rest == []
    assert vars(ours) == vars(theirs)


@pytest.mark.parametrize("argv", [*LEFT, ["--no-dev", "x"], ["--dev"]])
def test_other_install_lines_are_left_to_argparse(argv: list[str]) -> None:
    assert install_args(argv) is None
