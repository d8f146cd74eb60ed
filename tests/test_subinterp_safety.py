"""Host safety rules, each proven in a fresh process by its exit code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import gen2

pytestmark = [gen2, pytest.mark.timeout(180)]

WORKLOADS = {
    "hashlib": "import hashlib\nresult = hashlib.sha256(b'x').hexdigest()[:8]",
    "ssl": "import ssl\nresult = ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED",
    "asyncio": (
        "import asyncio\n"
        "async def main():\n"
        "    await asyncio.sleep(0)\n"
        "    return 5\n"
        "result = asyncio.run(main())"
    ),
    "threadpool": (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(2) as ex:\n"
        "    result = list(ex.map(abs, [-1, -2]))"
    ),
    "datetime": (
        "import datetime, decimal, calendar, time\n"
        "time.strptime('2024', '%Y')\n"
        "result = [datetime.date(2024, 1, 2).isoformat(), str(decimal.Decimal('1.5'))]"
    ),
}

EXPECTED = {
    "hashlib": "2d711642",
    "ssl": True,
    "asyncio": 5,
    "threadpool": [1, 2],
    "datetime": ["2024-01-02", "1.5"],
}


def run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=150, check=False
    )


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_workload_in_two_live_interpreters_exits_cleanly(tmp_path: Path, workload: str) -> None:
    # Two interpreters alive at once, each running the workload, then destroyed; a third is
    # left open for the atexit handler. The process must exit with 0.
    proc = run_script(
        tmp_path,
        f"""
        import json, envknit
        code = {WORKLOADS[workload]!r}
        a = envknit.SubInterpreterEnv("a").__enter__()
        b = envknit.SubInterpreterEnv("b").__enter__()
        out = [a.eval_json(code), b.eval_json(code)]
        a.close(); b.close()
        left_open = envknit.SubInterpreterEnv("c")
        out.append(left_open.eval_json(code))
        print(json.dumps(out))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    import json

    assert json.loads(proc.stdout) == [EXPECTED[workload]] * 3


def test_every_workload_in_one_interpreter_after_another(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        f"""
        import envknit
        for name, code in sorted({WORKLOADS!r}.items()):
            for round in range(2):
                with envknit.SubInterpreterEnv(name) as interp:
                    interp.eval_json(code)
        print("ok")
        """,
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), proc.stderr


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="the 3.12 crash the rule prevents")
def test_without_the_312_rule_the_process_aborts(tmp_path: Path) -> None:
    # Shows the warm-up is what makes the tests above pass on 3.12.1 (python/cpython#112140).
    proc = run_script(
        tmp_path,
        f"""
        import envknit
        from envknit._subinterp import _safety
        _safety._warm_312 = lambda: None
        with envknit.SubInterpreterEnv("a") as interp:
            interp.eval_json({WORKLOADS["hashlib"]!r})
        print("ran")
        """,
    )
    assert "ran" in proc.stdout
    assert proc.returncode != 0


def test_refused_single_phase_extension_in_many_interpreters(tmp_path: Path) -> None:
    # 3.12.1 aborts on the second refusal of a single-phase module in a new interpreter
    # (python/cpython#113218) unless envknit stops retrying it; check both probes and imports
    # that user code swallows.
    proc = run_script(
        tmp_path,
        """
        import envknit
        seen = []
        for i in range(4):
            with envknit.SubInterpreterEnv("p") as interp:
                seen.append(interp.try_import("_testsinglephase"))
                seen.append(interp.eval_json(
                    "try:\\n    import _testsinglephase\\n    result = 'loaded'\\n"
                    "except ImportError:\\n    result = 'refused'"))
        print(seen)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str([False, "refused"] * 4)


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="the 3.12 crash the rule prevents")
def test_without_the_refusal_memory_the_process_aborts(tmp_path: Path) -> None:
    # Shows why refused extension modules are remembered (python/cpython#113218).
    proc = run_script(
        tmp_path,
        """
        import envknit
        import envknit._subinterp as subinterp
        subinterp._learn = lambda answer: None  # forget refusals: each interpreter retries
        for i in range(3):
            with envknit.SubInterpreterEnv("p") as interp:
                print(interp.try_import("_testsinglephase"), flush=True)
        print("ran")
        """,
    )
    assert "ran" not in proc.stdout
    assert proc.returncode != 0


def test_interpreter_running_threads_left_open_at_exit(tmp_path: Path) -> None:
    # Interpreters that imported threading on their own OS thread and were never closed:
    # envknit destroys them at exit on their own threads (3.12 hangs or aborts otherwise).
    proc = run_script(
        tmp_path,
        """
        import envknit
        envs = [envknit.SubInterpreterEnv(f"e{i}") for i in range(3)]
        for env in envs:
            env.eval_json("import threading\\nt = threading.Thread(target=len, args=([],))\\n"
                          "t.start()\\nt.join()\\nresult = 1", timeout=30)
        print("done")
        """,
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, "done"), proc.stderr


def test_stress_four_interpreters_two_threads_everything(tmp_path: Path) -> None:
    # The facts' stress case: 4 live interpreters, each importing and using many stdlib
    # modules, driven from 2 threads; 2 closed explicitly, 2 left for the exit handler.
    proc = run_script(
        tmp_path,
        f"""
        import threading, envknit
        code = "\\n".join({sorted(WORKLOADS.values())!r}) + (
            "\\nimport json, re, email.utils, sqlite3, logging, uuid, pathlib, zipfile, csv"
            "\\nimport importlib.metadata, tomllib, typing, dataclasses, statistics"
            "\\nimport xml.etree.ElementTree"
            "\\ncon = sqlite3.connect(':memory:')\\ncon.execute('select 1')\\ncon.close()"
            "\\nresult = email.utils.formatdate(0)[:3]"
        )
        envs = [envknit.SubInterpreterEnv(f"s{{i}}").__enter__() for i in range(4)]
        out = []
        def drive(k):
            for env in envs[k::2]:
                out.append(env.eval_json(code, timeout=60))
        threads = [threading.Thread(target=drive, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        envs[0].close()
        envs[1].close()
        print(out)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(["Thu"] * 4)
    assert "Exception ignored" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("closer", ["main", "other-thread", "exit"])
def test_inline_calls_from_many_threads_then_destroy(tmp_path: Path, closer: str) -> None:
    # Calls without a timeout run on the caller's thread. Here three threads take turns using
    # one interpreter (threading, a thread and a pool inside), then it is destroyed on yet
    # another thread. On 3.12.1 this used to hang in destroy() (threading had been imported on
    # another OS thread); the process must exit cleanly whoever closes it.
    proc = run_script(
        tmp_path,
        f"""
        import threading, envknit
        code = (
            "import threading\\n"
            "from concurrent.futures import ThreadPoolExecutor\\n"
            "t = threading.Thread(target=len, args=([],))\\nt.start()\\nt.join()\\n"
            "with ThreadPoolExecutor(2) as pool:\\n"
            "    result = sum(pool.map(abs, [x, -x])) + len(threading.current_thread().name) * 0"
        )
        env = envknit.SubInterpreterEnv("many")
        errors = []

        def use(k):
            try:
                for i in range(10):
                    assert env.eval_json(code, x=i + k) == 2 * (i + k)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=use, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        if {closer!r} == "main":
            env.close()
        elif {closer!r} == "other-thread":
            closer = threading.Thread(target=env.close)
            closer.start()
            closer.join()
        print("done", flush=True)
        """,
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, "done"), proc.stderr
    assert "Exception ignored" not in proc.stderr and "Fatal" not in proc.stderr, proc.stderr
