"""envknit._worker.fallback: eval_json and call for a whole environment (SubInterpreterEnv)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envknit._worker import fallback
from envknit.errors import EnvknitTimeoutError, UnknownEnvironmentError, WorkerRemoteError

from ._worker_fixtures import make_demo

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def lock(envknit_home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "envknit.lock.yaml"
    make_demo(envknit_home, path)
    return path


def test_eval_json_binds_inputs_and_returns_result(lock: Path) -> None:
    code = "import demo, array\nresult = {'v': demo.__version__, 'sum': sum(array.array('i', xs))}"
    assert fallback.eval_json(lock, "default", code, {"xs": [1, 2, 3]}, None) == {
        "v": "1.0",
        "sum": 6,
    }
    assert fallback.eval_json(lock, "default", "x = 1", {}, None) is None


def test_eval_json_result_is_plain_json(lock: Path) -> None:
    assert fallback.eval_json(lock, "default", "result = (1, 2)", {}, None) == [1, 2]
    with pytest.raises(TypeError, match="JSON-compatible") as info:
        fallback.eval_json(lock, "default", "result = object()", {}, None)
    assert isinstance(info.value, WorkerRemoteError)


def test_call_runs_a_target_function(lock: Path) -> None:
    assert fallback.call(lock, "default", "demo.core:echo", [{"a": 1}], {}, None) == {"a": 1}
    assert fallback.call(lock, "default", "demo:Box.__name__.upper", [], {}, None) == "BOX"


def test_remote_errors_keep_type_and_traceback(lock: Path) -> None:
    with pytest.raises(ZeroDivisionError) as info:
        fallback.eval_json(lock, "default", "result = 1 / zero", {"zero": 0}, None)
    assert isinstance(info.value, WorkerRemoteError)
    assert info.value.remote_type == "ZeroDivisionError"
    # the remote traceback starts at the caller's code, not in envknit's runner
    assert info.value.remote_traceback.split('  File "', 2)[1].startswith("<envknit eval_json>")
    assert "_runner.py" not in info.value.remote_traceback
    with pytest.raises(ValueError, match=r"package\.module:function"):
        fallback.call(lock, "default", "no_colon", [], {}, None)
    with pytest.raises(ModuleNotFoundError):
        fallback.call(lock, "default", "not_there:f", [], {}, None)
    with pytest.raises(KeyError) as called:
        fallback.call(lock, "default", "demo.core:fail", ["KeyError", "k"], {}, None)
    assert isinstance(called.value, WorkerRemoteError)
    # the remote traceback starts at the called function, not in envknit's runner
    first = called.value.remote_traceback.split('  File "', 2)[1]
    assert first.split('"')[0].endswith("demo/core.py")
    assert "_runner.py" not in called.value.remote_traceback


def test_timeout_and_unknown_environment(lock: Path) -> None:
    with pytest.raises(EnvknitTimeoutError):
        fallback.call(lock, "default", "demo:sleep", [5], {}, 0.5)
    assert fallback.call(lock, "default", "demo:echo", ["next"], {}, 5) == "next"
    with pytest.raises(UnknownEnvironmentError):
        fallback.eval_json(lock, "nope", "result = 1", {}, None)
