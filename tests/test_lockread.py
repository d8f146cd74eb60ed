"""envknit._lockread: the lock's own layout read without PyYAML, as PyYAML reads it, or None."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from envknit._lockread import parse_lock_text
from envknit._lockyaml import dump_block
from envknit.errors import LockError
from envknit.lock import DistFile, Lock, LockedEnvironment, LockedPackage, load_lock, save_lock
from tests.test_lockyaml import TRICKY, _lock, _tree


def _agrees(text: str) -> Any:
    """parse_lock_text(text): None, or exactly what yaml.safe_load reads (which must work)."""
    ours = parse_lock_text(text)
    if ours is not None:
        assert ours == yaml.safe_load(text), text
        # the same types all the way down (True is not 1, '1.0' is not 1.0)
        assert repr(ours) == repr(yaml.safe_load(text)), text
    return ours


@pytest.mark.parametrize("requirement", ["attrs==23.1.0", "attrs>=23; python_version < '3.13'"])
def test_locks_envknit_writes_are_read_without_pyyaml(tmp_path: Path, requirement: str) -> None:
    lock = _lock(requirement)
    text = lock.dumps()
    if dump_block(lock.to_dict()) is not None:  # the writer's own layout: always ours
        assert _agrees(text) == lock.to_dict()
    save_lock(lock, tmp_path / "envknit.lock.yaml")
    assert load_lock(tmp_path / "envknit.lock.yaml") == lock


def test_a_real_sized_lock_is_read_without_pyyaml() -> None:
    packages = tuple(
        LockedPackage(name=f"pkg{i}", version=f"{i}.{i % 7}.0", dev=i % 5 == 0,
                      dependencies=tuple(f"pkg{j}" for j in range(i + 1, min(i + 4, 300))),
                      files=(DistFile(name=f"pkg{i}-{i}.{i % 7}.0-py3-none-any.whl",
                                      sha256=f"{i:064x}"),))
        for i in range(300)
    )
    env = LockedEnvironment(name="default", python_version="3.13", packages=packages,
                            requirements=("pkg0==0.0.0",), config_hash="0" * 64)
    lock = Lock(environments={"default": env}, resolver_version="0.13.9")
    assert _agrees(lock.dumps()) == lock.to_dict()


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(alphabet="abcdefxyzEN0123456789._+=<>!~-:", max_size=12),
                       _tree, min_size=1, max_size=4))
def test_whatever_the_writer_writes_reads_back(data: dict[str, Any]) -> None:
    text = dump_block(data)
    if text is not None:
        got = _agrees(text)
        assert got is None or got == data


@pytest.mark.parametrize("value", TRICKY)
def test_scalars_that_look_like_other_types_never_misread(value: str) -> None:
    for text in (f"k: {value}\n", f"k: '{value}'\n", f"k:\n- {value}\n", f"{value}: v\n",
                 f"k:\n- a: {value}\n  b: '{value}'\n", f"k: '{value}\n"):
        try:
            yaml.safe_load(text)
        except yaml.YAMLError:
            assert parse_lock_text(text) is None, text
            continue
        _agrees(text)


# every character that means something to YAML, and some that it treats specially
_NOISE = st.sampled_from([*" -:#'\"&*!|>%@`{}[],?\n\t\r~=<.0aZ_",
                          "\x85", "\u2028", "\u2029", "\x01", "\x7f", "\ufeff", "é", "- ",
                          ": ", "  ", "\n  ", "\n- ", "---\n", "...\n", "null", "yes", "1.0"])


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_edited_locks_are_read_as_pyyaml_reads_them_or_left_to_it(data: st.DataObject) -> None:
    text = _lock("attrs==23.1.0").dumps()
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 3))
        text = text[:at] + data.draw(_NOISE) + text[at + cut:]
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        assert parse_lock_text(text) is None, text
        return
    got = parse_lock_text(text)
    if got is not None:
        assert repr(got) == repr(expected), text


@pytest.mark.parametrize("text", [
    "",  # empty
    "k: v",  # no final line feed
    "- 1\n",  # not a mapping
    "k: v\n\nj: w\n",  # a blank line
    "k: v\r\n",
    "k:\tv\n",
    "\ufeffk: v\n",
    "# c\x85k: v\nj: w\n",  # U+0085 ends a comment line for YAML
    "# c\x01\nk: v\n",  # PyYAML refuses control characters
    "k: v\nk: w\n",  # a duplicate key (PyYAML keeps the last)
    "k:\n",  # null
    "k: v\n  more\n",  # a plain scalar continued
    "k:\n- a\n  b\n",
    "k: &a v\nj: *a\n",
    "k: !!binary aGk=\n",
    "k: {a: b}\n",
    "k: [a]\n",
    "k: 'it''s'\n",
    "k: 1.0\n", "k: 1\n", "k: 0x1f\n", "k: 2024-01-01\n", "k: yes\n", "k: null\n", "k: 1_0\n",
    "---\nk: v\n", "k: v\n...\n", "%YAML 1.1\n---\nk: v\n",
    "k:\n  - a\n",  # a sequence indented under its key: valid, not the writer's layout
    "k:\n    j: v\n",  # four spaces
    "1.0: v\n", "true: v\n",
    "k" * 101 + ": v\n",
    "k: " + "v" * 201 + "\n",
])
def test_anything_else_is_left_to_pyyaml(text: str) -> None:
    assert parse_lock_text(text) is None


def test_deep_nesting_is_left_to_the_bounded_loader() -> None:
    text = "".join(" " * (2 * i) + f"k{i}:\n" for i in range(40)) + " " * 80 + "v: w\n"
    assert parse_lock_text(text) is None
    shallow = "".join(" " * (2 * i) + f"k{i}:\n" for i in range(8)) + " " * 16 + "v: w\n"
    assert _agrees(shallow) is not None


def test_hostile_locks_keep_their_errors(tmp_path: Path) -> None:
    path = tmp_path / "envknit.lock.yaml"
    bomb = "a: &a ['lol','lol']\nb: &b [*a,*a]\nschema_version: '1.0'\nenvironments: {}\n"
    for text, message in (
        (bomb, "anchors"),
        ("[" * 900 + "]" * 900, "nested more than"),
        ("schema_version: '2.0'\nenvironments: {}\n", "schema"),
        ("schema_version: '1.0'\nenvironments:\n  d:\n    python_version: x\n", "python_version"),
        ("schema_version: '1.0'\nenvironments:\n  a..b:\n    python_version: '3.12'\n",
         "environment name"),
    ):
        path.write_text(text)
        with pytest.raises(LockError, match=message):
            load_lock(path)


def test_install_reads_envknits_own_lock_without_pyyaml(tmp_path: Path) -> None:
    lock = _lock("attrs==23.1.0")
    save_lock(lock, tmp_path / "envknit.lock.yaml")
    code = ("import sys\nfrom envknit.lock import load_lock\n"
            "lock = load_lock(sys.argv[1])\n"
            "assert 'yaml' not in sys.modules, sorted(sys.modules)\n"
            "print(sorted(lock.environments))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "envknit.lock.yaml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['2024', 'default']"
