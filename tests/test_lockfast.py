"""The routing table's fast miss path (envknit._lockfast) answers as the models do, or declines."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from envknit import _lockcache, _lockfast
from envknit.store.layout import iter_entries

from ._builders import make_store_entry, write_lock
from ._routing_fixtures import make_mylib_lock


def _slow(lock: Path, env: str | None, home: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """What ``_build`` answers through the lock model and store.layout alone."""
    def decline(*args: object) -> None:
        raise _lockfast.Decline

    with monkeypatch.context() as m:
        m.setattr(_lockcache, "_build_fast", decline)
        return _outcome(lock, env, home)


def _outcome(lock: Path, env: str | None, home: str) -> object:
    try:
        return _lockcache._build(os.path.realpath(lock), env, home)
    except Exception as exc:  # broad: compared as (type, message) with the models'
        return (type(exc), str(exc))


@pytest.fixture
def rich_lock(envknit_home: Path, tmp_path: Path) -> Path:
    """Two versions with dependencies, a compiled module, a dev package, a removed entry,
    a top-level .so module and a package whose import name differs from its name."""
    extras = [
        make_store_entry(envknit_home, "fastlib", "1.0",
                         {"fastlib/__init__.py": "", "fastlib/_speed.so": b"\0"}),
        make_store_entry(envknit_home, "tool-kit", "2.0.1", dev=True),
        make_store_entry(envknit_home, "gone", "1.0"),
        make_store_entry(envknit_home, "single", "0.3",
                         {"single.cpython-313-x86_64-linux-gnu.so": b"\0", "_single_impl.py": ""}),
        make_store_entry(envknit_home, "pyyaml", "6.0.2", {"yaml/__init__.py": "", "_yaml.py": ""},
                         dependencies=["single", "fastlib"]),
    ]
    path = make_mylib_lock(envknit_home, tmp_path, {"extra": extras})
    shutil.rmtree(next(e.path for e in iter_entries(envknit_home) if e.name == "gone"))
    return path


@pytest.mark.parametrize("env", [None, "extra", "old"])
def test_the_fast_path_answers_what_the_models_do(
    rich_lock: Path, envknit_home: Path, env: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _lockcache._home()
    fast = _lockcache._build_fast(os.path.realpath(rich_lock), env, home)  # does not decline
    slow = _slow(rich_lock, env, home, monkeypatch)
    assert fast == slow
    assert isinstance(slow, _lockcache.Table)
    assert _lockcache._dump([], {}, fast) == _lockcache._dump([], {}, slow)
    pkgs = {p.name: p for e in fast.environments for p in e.packages}
    if env in (None, "extra"):
        assert pkgs["fastlib"].extensions == ("fastlib/_speed.so",)
        assert pkgs["gone"].entry == ""
        assert pkgs["pyyaml"].import_names == ("_yaml", "yaml")


def test_compiled_entries_are_judged_by_packaging(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from packaging.tags import sys_tags

    here = str(next(iter(sys_tags())))  # the running Python's best tag
    compiled = make_store_entry(envknit_home, "native", "1.0", tag="cp39-cp39-linux_x86_64")
    later = make_store_entry(envknit_home, "later", "1.0", tag="py399-none-any")
    local = make_store_entry(envknit_home, "local", "1.0", tag=here)
    lock = write_lock(tmp_path / "envknit.lock.yaml", {"a": [compiled, later, local]},
                      python_version="3.99")
    home = _lockcache._home()
    with pytest.raises(_lockfast.Decline):  # without a judge for compiled tags
        _lockfast.entry_dir(os.path.join(home, "store"), "native", "1.0",
                            compiled.hashes, (3, 9))
    table = _lockcache._build_fast(os.path.realpath(lock), None, home)
    assert table == _slow(lock, None, home, monkeypatch)
    assert [(p.name, p.entry != "", p.foreign) for p in table.environments[0].packages] == [
        ("later", False, True), ("local", True, False), ("native", False, False)]


@pytest.mark.parametrize(("old", "new"), [
    ("name: mylib\n", "name: MyLib\n"),  # not canonical: the model normalises it
    ("name: mylib\n", "name: my--lib\n"),
    ("name: mylib\n", "name: -mylib\n"),
    ("version: 1.0.0\n", "version: 01.0.0\n"),  # normalised by packaging
    ("version: 1.0.0\n", "version: 1.0.0.post1\n"),
    ("version: 1.0.0\n", "version: 1.0.0+local\n"),
    ("version: 1.0.0\n", "version: nonsense\n"),
    ("python_version: '{py}'", "python_version: '4.0'"),
    ("python_version: '{py}'", "python_version: '3.123'"),
    ("schema_version: '1.0'", "schema_version: '2.0'"),
    ("schema_version: '1.0'", "schema_version: 'x'"),
    ("  old:\n", "  -old:\n"),
    ("  old:\n", "  o.ld:\n"),
    ("      dev: false\n", "      dev: 'no'\n"),
    ("      - helper\n", "      - Helper_\n"),
    ("    - name: mylib\n", "    - name: helper\n"),  # listed twice
    ("-py3-none-any.whl\n", "-py3-none-any.exe\n"),
    ("-py3-none-any.whl\n", "-py3-none-any..whl\n"),
    ("        sha256: ", "        sha256: A"),
    ("config_hash: ''", "config_hash: true"),
    ("requirements: []", "requirements: [x]"),  # flow content: PyYAML reads it
    ("\n", "\n\n"),  # a blank line: PyYAML reads it
])
def test_near_misses_get_the_models_answer(
    envknit_home: Path, tmp_path: Path, old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = make_mylib_lock(envknit_home, tmp_path, {})
    py = "{}.{}".format(*sys.version_info[:2])
    text = lock.read_text()
    old, new = old.replace("{py}", py), new.replace("{py}", py)
    assert old in text
    lock.write_text(text.replace(old, new, 1))
    home = _lockcache._home()
    for env in (None, "old", "nope"):
        assert _outcome(lock, env, home) == _slow(lock, env, home, monkeypatch)


def test_errors_are_the_models(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = make_mylib_lock(envknit_home, tmp_path, {})
    home = _lockcache._home()
    unknown = _outcome(lock, "nope", home)
    assert unknown == _slow(lock, "nope", home, monkeypatch)
    assert isinstance(unknown, tuple) and unknown[0].__name__ == "UnknownEnvironmentError"
    missing = tmp_path / "absent.lock.yaml"
    assert _outcome(missing, None, home) == _slow(missing, None, home, monkeypatch)
    lock.write_bytes(b"\0")
    assert _outcome(lock, None, home) == _slow(lock, None, home, monkeypatch)


def test_an_unusual_entry_is_left_to_the_store_layout(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = make_mylib_lock(envknit_home, tmp_path, {})
    entry = next(e for e in iter_entries(envknit_home) if e.name == "helper")
    manifest = (entry.path / "ENTRY.json").read_text()
    (entry.path / "ENTRY.json").write_text(manifest.replace('"name": "helper"', '"name": "Helper"'))
    home = _lockcache._home()
    with pytest.raises(_lockfast.Decline):
        _lockcache._build_fast(os.path.realpath(lock), None, home)
    assert _outcome(lock, None, home) == _slow(lock, None, home, monkeypatch)
    record = next((entry.site_dir).glob("*.dist-info")) / "RECORD"
    record.write_text('"helper/__init__.py",,\n')
    (entry.path / "ENTRY.json").write_text(manifest)
    with pytest.raises(_lockfast.Decline):
        _lockcache._build_fast(os.path.realpath(lock), None, home)
    assert _outcome(lock, None, home) == _slow(lock, None, home, monkeypatch)


@pytest.mark.parametrize("data", [
    {"format": 1, "name": "a", "tags": ["py3-none-any"], "files": {"site/a.py": "00"}},
    {"format": 1, "tags": [], "files": {}, "python": ""},
    {"format": 10, "tags": ["x", "y"], "files": {"site/a b.py": "1", "site/c": "2"}, "z": 0},
])
def test_plain_entry_json_reads_as_json_does(data: dict[str, object]) -> None:
    text = json.dumps(data, indent=1)
    assert _lockfast._plain_json(text) == json.loads(text) == data


@pytest.mark.parametrize("text", [
    '{\n "format": 1.0\n}', '{\n "format": true\n}', '{\n "format": 01\n}',
    '{\n "a": 1,\n "a": 2\n}', '{\n "a": 1,\n}', '{\n "a": 1\n "b": 2\n}',
    '{\n "a": "\\u00e9"\n}', '{\n "a": "\\"x"\n}', '{\n "a": [\n  1,\n ]\n}',
    '{\n "a": [\n  1\n  2\n ]\n}', '{\n "a": [\n  [\n   1\n  ]\n ]\n}', '{\n "a": {\n',
    '\ufeff{\n "a": 1\n}', '{\n "a": 1\n}\n', '{\n"a": 1\n}', '{\n "a":1\n}', '{}', '[]',
    '{\n "a": {\n  "b": 1,\n  "b": 2\n }\n}', '{\n "a": "\x01"\n}', '{\n "a": null\n}',
])
def test_other_entry_json_is_left_to_json(text: str) -> None:
    with pytest.raises(_lockfast.Decline):
        _lockfast._plain_json(text)


def test_entry_json_in_another_layout_is_read_by_json(
    envknit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = make_mylib_lock(envknit_home, tmp_path, {})
    for entry in iter_entries(envknit_home):
        meta = json.loads((entry.path / "ENTRY.json").read_text())
        (entry.path / "ENTRY.json").write_text(json.dumps(meta))  # one line, no indent
    broken = next(e for e in iter_entries(envknit_home) if e.name == "helper")
    (broken.path / "ENTRY.json").write_text("{")
    home = _lockcache._home()
    fast = _lockcache._build_fast(os.path.realpath(lock), None, home)
    assert fast == _slow(lock, None, home, monkeypatch)
    assert [p.entry != "" for e in fast.environments for p in e.packages].count(False) == 1
