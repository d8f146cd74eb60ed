"""The worker's JSON (``_json`` set up by hand: no json package in the child) reads and writes
exactly what ``json`` does with the same settings, and the child's ``plain_json`` gives what the
lane's (json-based) one gives."""

from __future__ import annotations

import enum
import json
import math
import subprocess
import sys
from typing import Any

import pytest

from envknit import _lane
from envknit._worker import _child, _protocol as P

pytestmark = pytest.mark.timeout(120)


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    pass


VALUES: list[Any] = [
    None, True, False, 0, -1, 2**70, -(2**70), 1.5, -0.0, 1e308, 1e-320, "", "plain",
    "quote \" backslash \\ slash / tab \t newline \n nul \x00 del \x7f", "é ü 漢字 🐍",
    [], {}, [1, [2, [3, {"a": [None]}]]], {"k": {"nested": "v"}},
    {"$t": [1, 2]}, list(range(50)), {str(i): i for i in range(30)},
    (1, (2, 3)), {3: "int key", 2.5: "float key", True: "bool key", None: "none key"},
    Colour.RED, [Text("sub")], {"a": (Colour.RED, 1.0)},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_writes_and_reads_like_json(value: object) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert P.to_json(value) == expected
    assert P.from_json(expected) == json.loads(expected)
    assert P.loads(P.dumps(value)) == json.loads(expected)


def test_a_lone_surrogate_is_written_like_json_writes_it() -> None:
    # (a frame cannot carry it: UTF-8 has no surrogates, and dumps says NotPlain, as before)
    assert P.to_json("\ud800") == json.dumps("\ud800", ensure_ascii=False)
    with pytest.raises(P.NotPlain):
        P.dumps("\ud800")


def test_non_finite_floats_round_trip_as_json_writes_them() -> None:
    text = P.to_json([math.inf, -math.inf, math.nan])
    assert text == json.dumps([math.inf, -math.inf, math.nan], separators=(",", ":"))
    back = P.from_json(text)
    assert back[0] == math.inf and back[1] == -math.inf and math.isnan(back[2])


@pytest.mark.parametrize("text", ["", " ", "[1,", '{"a" 1}', "[1] 2", "nul", '"\\x"',
                                  "01", "[1,]", "{'a': 1}", '"tab\there"', "NaNa", "[1]]"])
def test_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        P.from_json(text)
    with pytest.raises(P.WireError, match="not valid JSON"):
        P.loads(text.encode())


def test_surrounding_whitespace_is_allowed_like_json() -> None:
    assert P.from_json(" \t\n[1, 2] \r\n") == json.loads(" \t\n[1, 2] \r\n") == [1, 2]


def test_what_json_cannot_write_is_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        P.to_json(loop)
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        P.to_json({1, 2})
    with pytest.raises(TypeError, match="keys must be"):
        P.to_json({(1, 2): 3})
    # a fresh encoder each call: no stale circular-reference marker after a failure halfway
    assert P.to_json([[1], [1]]) == "[[1],[1]]"


def test_default_and_object_hook_are_json_s() -> None:
    value = {"a": {1, 2}, "b": [{"c": 1}]}
    assert P.to_json(value, sorted) == json.dumps(value, default=sorted, separators=(",", ":"),
                                                  ensure_ascii=False)

    def hook(obj: dict[str, Any]) -> Any:
        return tuple(obj)

    text = '{"a": {"b": 1}, "c": [{"d": 2}]}'
    assert P.from_json(text, hook) == json.loads(text, object_hook=hook)


PLAIN: list[Any] = [
    None, 1, "s", (1, (2, "x")), {1: (2,), "k": [3.5]}, {True: 1, None: 2, 1.5: 3},
    Colour.RED, [Text("t")], [b"raw", bytearray(b"ba"), memoryview(b"mv")],
    {"nested": [(b"deep",)]}, [math.inf],
]


@pytest.mark.parametrize("value", PLAIN, ids=range(len(PLAIN)))
def test_the_childs_plain_json_matches_the_lanes(value: object) -> None:
    mine, theirs = _child._plain_json(value), _lane.plain_json(value)
    assert mine == theirs
    assert repr(mine) == repr(theirs)  # the same types all the way down


@pytest.mark.parametrize("value", [{(1, 2): 3}, object(), [{1, 2}]], ids=repr)
def test_the_childs_plain_json_refuses_what_the_lanes_refuses(value: object) -> None:
    with pytest.raises(TypeError):
        _lane.plain_json(value)
    with pytest.raises(TypeError, match="result must be JSON-compatible"):
        _child._plain_json(value)


def test_the_child_imports_no_json_package() -> None:
    code = (
        "import sys\n"
        "from importlib.util import module_from_spec, spec_from_file_location\n"
        "spec = spec_from_file_location('_p', sys.argv[1])\n"
        "module = module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "module.loads(module.dumps({'a': [1.5, 'x', None]}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('json', 're', 'enum')))\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, P.__file__],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
