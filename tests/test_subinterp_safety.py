"""Host safety rules, each proven in a fresh process by its exit code."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests._helpers import gen2, run_fresh

pytestmark = [gen2, pytest.mark.timeout(180)]

# Negative controls show a CPython bug by crashing: they run only on the exact build where the
# crash was measured (other 3.12.x builds may or may not have it; the parser fix,
# python/cpython#119425, was backported to the 3.12 branch in May 2024).
ON_3121 = pytest.mark.skipif(
    sys.version_info[:3] != (3, 12, 1), reason="the crash was measured on CPython 3.12.1"
)

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
    # A delay > 0 creates a Future with Future(loop=...), a keyword call of _asyncio's parser.
    "asyncio_sleep": (
        "import asyncio\n"
        "async def main():\n"
        "    await asyncio.sleep(0.01)\n"
        "    return 6\n"
        "result = asyncio.run(main())"
    ),
    "epoll": (
        "import select\n"
        "ep = select.epoll()\n"
        "result = ep.poll(timeout=0.01, maxevents=10)\n"
        "ep.close()"
    ),
    "threadpool": (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(2) as ex:\n"
        "    result = list(ex.map(abs, [-1, -2]))"
    ),
    # Keyword calls into the stdlib extension modules whose parsers the 3.12 warm-up builds.
    "keywords": (
        "import bisect, binascii, bz2, codecs, csv, hashlib, lzma, math, pickle, queue\n"
        "import select, socket, sqlite3, ssl, struct, zlib\n"
        "out = []\n"
        "a = []\n"
        "bisect.insort(a, 3, key=None)\n"
        "out.append(bisect.bisect_left(a, 2, lo=0))\n"
        "out.append(binascii.b2a_base64(b'x', newline=False).decode())\n"
        "out.append(bz2.BZ2Decompressor().decompress(bz2.compress(b'x'), max_length=-1).decode())\n"
        "out.append(csv.field_size_limit(new_limit=csv.field_size_limit()) > 0)\n"
        "out.append(hashlib.pbkdf2_hmac('sha256', b'p', b's', 1, dklen=4).hex())\n"
        "out.append(hashlib.shake_128(b'x').hexdigest(length=2))\n"
        "out.append(lzma.LZMADecompressor(format=lzma.FORMAT_AUTO)"
        ".decompress(lzma.compress(b'y'), max_length=-1).decode())\n"
        "out.append(math.isclose(1.0, 1.0, abs_tol=0.1))\n"
        "out.append(math.prod([2, 3], start=1))\n"
        "out.append(pickle.loads(pickle.dumps(5, protocol=4), fix_imports=True))\n"
        "q = queue.SimpleQueue()\nq.put(1, block=True)\nout.append(q.get(block=True, timeout=1))\n"
        "ep = select.epoll(sizehint=-1)\nep.poll(timeout=0, maxevents=1)\nep.close()\n"
        "socket.socket(family=socket.AF_INET, type=socket.SOCK_STREAM).close()\n"
        "con = sqlite3.connect(':memory:', timeout=1.0)\n"
        "out.append(con.cursor().execute('select 1').fetchmany(size=1)[0][0])\ncon.close()\n"
        "ctx = ssl.create_default_context()\nctx.get_ca_certs(binary_form=False)\n"
        "ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname='example.org')\n"
        "out.append(struct.unpack_from('b', buffer=b'\\x07', offset=0)[0])\n"
        "out.append(zlib.decompressobj(wbits=15).decompress(zlib.compress(b'z', level=1), "
        "max_length=0).decode())\n"
        "out.append(codecs.getincrementalencoder('gb2312')().encode('\\u4e2d', final=True).hex())\n"
        "result = out"
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
    "asyncio_sleep": 6,
    "epoll": [],
    "threadpool": [1, 2],
    "datetime": ["2024-01-02", "1.5"],
    "keywords": [
        0, "eA==", "x", True, "372cc981", "e472", "y", True, 6, 5, 1, 1, 7, "z", "d6d0"
    ],
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
    assert (proc.returncode, proc.stderr) == (0, "")
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
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "ok", "")


@ON_3121
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
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.strip() == str([False, "refused"] * 4)


@ON_3121
def test_without_the_refusal_memory_the_process_aborts(tmp_path: Path) -> None:
    # Shows why refused extension modules are remembered (python/cpython#113218).
    proc = run_script(
        tmp_path,
        """
        import envknit
        import envknit._subinterp as subinterp
        subinterp._refused.clear()  # not refused from the start...
        subinterp._learn = lambda answer: None  # ...and forgotten: each interpreter retries
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
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "done", "")


@pytest.mark.parametrize("closer", ["main", "other-thread", "exit"])
def test_timed_call_stuck_in_c_then_destroy(tmp_path: Path, closer: str) -> None:
    # A timed call given up on while in C keeps the serving thread busy inside; close() returns
    # at once and the interpreter is destroyed when the call returns (or at exit), whoever
    # closes it, with threading imported inside on another OS thread than the closer.
    proc = run_script(
        tmp_path,
        f"""
        import threading, envknit
        env = envknit.SubInterpreterEnv("stuck")
        box = []
        def call():
            try:
                env.eval_json("import time\\ntime.sleep(1.5)\\nresult = 1", timeout=0.1)
            except TimeoutError as exc:
                box.append(type(exc).__name__)
        t = threading.Thread(target=call)
        t.start()
        t.join()
        if {closer!r} == "main":
            env.close()
        elif {closer!r} == "other-thread":
            closer = threading.Thread(target=env.close)
            closer.start()
            closer.join()
        print(box, flush=True)
        """,
    )
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (
        0, "['EnvknitTimeoutError']", ""
    )


def test_submitted_calls_left_pending_at_exit(tmp_path: Path) -> None:
    # Submitted calls still queued or running when the script ends: the exit handler lets them
    # finish on the serving thread, then destroys the interpreters; nothing is printed.
    proc = run_script(
        tmp_path,
        """
        import envknit
        envs = [envknit.SubInterpreterEnv(f"p{i}") for i in range(2)]
        futures = [env.submit("import time\\ntime.sleep(0.2)\\nresult = i", i=i)
                   for env in envs for i in range(4)]
        print(futures[0].result(timeout=60), flush=True)
        """,
    )
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "0", "")


def test_stress_four_interpreters_two_threads_everything(tmp_path: Path) -> None:
    # The stress case that crashed 3.12.1 and 3.13.0: 4 live interpreters, each using many stdlib
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
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.strip() == str(["Thu"] * 4)


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


# -- 3.12: lazily built argument parsers (python/cpython#112140, #119213) -----------------------

# A sub-interpreter driven through the raw adapter, without envknit's host preparation.
RAW = """
import sys
from envknit._subinterp._adapter import get_adapter
adapter = get_adapter()
interp = adapter.create()
failure = adapter.run(interp, sys.argv[1], None)
adapter.destroy(interp)
print("ran", failure, flush=True)
"""


def run_raw(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "raw.py"
    script.write_text(RAW)
    return subprocess.run(
        [sys.executable, str(script), code], capture_output=True, text=True, timeout=150,
        check=False,
    )


@ON_3121
@pytest.mark.parametrize("workload", ["asyncio_sleep", "epoll", "keywords"])
def test_without_the_preparation_keyword_calls_crash_at_exit(
    tmp_path: Path, workload: str
) -> None:
    # The call works inside; at exit the main interpreter frees the keyword tuple that the
    # sub-interpreter allocated: SIGSEGV in _PyTuple_Fini, SIGABRT from free() or (seen 3 in
    # 25 runs of the keyword workload) SIGBUS, depending on the heap.
    proc = run_raw(tmp_path, WORKLOADS[workload].replace("result = ", "_ = "))
    assert proc.stdout.strip() == "ran None"
    assert proc.returncode in (-6, -7, -11), proc.stderr


def test_parsers_are_warmed_without_running_anything(tmp_path: Path) -> None:
    # Every function the warm-up calls must reject the made-up keyword before its body runs;
    # sqlite3.PrepareProtocol takes any arguments and does nothing with them.
    proc = run_script(
        tmp_path,
        """
        import asyncio
        from envknit._subinterp import _safety
        print(_safety._own_parsers() + _safety._own_asyncio_parsers())
        print(type(asyncio.current_task).__name__)
        """,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    # asyncio keeps its C accelerator (importing _asyncio first would have lost it).
    assert proc.stdout.split() == ["['PrepareProtocol']", "builtin_function_or_method"]


# -- 3.12: single-phase modules run by a refusing sub-interpreter (python/cpython#117953) -------

HOST_IMPORT_AFTER_REFUSAL = """
import envknit
with envknit.SubInterpreterEnv("p") as interp:
    print(interp.try_import("_testsinglephase"), flush=True)
import _testsinglephase
print("host", _testsinglephase.__name__)
"""


def test_host_imports_a_module_sub_interpreters_refused(tmp_path: Path) -> None:
    # On 3.12 sub-interpreters refuse the stdlib's single-phase modules without running their
    # init, so the host can still load them.
    proc = run_script(tmp_path, HOST_IMPORT_AFTER_REFUSAL)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.split() == ["False", "host", "_testsinglephase"]


@ON_3121
def test_host_import_after_a_raw_refusal_aborts(tmp_path: Path) -> None:
    # The control: without the pre-refusal, the refused init ran in the sub-interpreter and
    # the host's init frees what it left in C globals ("munmap_chunk(): invalid pointer").
    proc = run_script(
        tmp_path,
        """
        from envknit._subinterp._adapter import get_adapter
        adapter = get_adapter()
        interp = adapter.create()
        print(adapter.run(interp, "import _testsinglephase", None) is not None, flush=True)
        adapter.destroy(interp)
        import _testsinglephase
        print("host")
        """,
    )
    assert proc.stdout.split() == ["True"]
    assert proc.returncode == -6, proc.stderr


def test_host_import_of_a_module_whose_init_ran_inside_is_refused(tmp_path: Path) -> None:
    # A single-phase module envknit did not know in advance: its init runs in the refusing
    # sub-interpreter. On 3.12 the host then gets an ImportError instead of an abort; on 3.13
    # (the init ran in the main interpreter) the host loads it.
    proc = run_script(
        tmp_path,
        """
        import envknit
        import envknit._subinterp as subinterp
        subinterp._refused.clear()  # as if _testsinglephase were not a known stdlib module
        with envknit.SubInterpreterEnv("p") as interp:
            print(interp.try_import("_testsinglephase"), flush=True)
        try:
            import _testsinglephase
        except ImportError as exc:
            print(type(exc).__name__, isinstance(exc, envknit.EnvknitError), exc.name)
        else:
            print("loaded")
        import xml.etree.ElementTree as ET  # pyexpat was never tried inside: still fine
        print(ET.fromstring("<ok/>").tag)
        """,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    if sys.version_info < (3, 13):
        expected = ["False", "HostImportRefusedError", "True", "_testsinglephase", "ok"]
    else:
        expected = ["False", "loaded", "ok"]
    assert proc.stdout.split() == expected


# -- 3.12: a thread of the interpreter ending while the host enters it ----------------------------
#
# CPython 3.12.1's run_string() picks the interpreter's oldest thread state by walking its
# thread list from the head, with no lock, before it takes the interpreter's GIL. A thread of
# that interpreter that ends meanwhile unlinks and frees its thread state, and the walk reads
# the freed memory: SIGSEGV, nothing on stderr. Closing used to stop the serving thread from the
# host (closing its pipe) and then enter the interpreter to join it; CI's stress test died of
# this once. The window is a few instructions wide; this preloaded shim widens it by sleeping
# between reading the list's head and walking it, which makes it deterministic.

_WIDEN_WALK_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
void *PyInterpreterState_ThreadHead(void *interp) {
    static void *(*real)(void *);
    if (!real) real = (void *(*)(void *))dlsym(RTLD_NEXT, "PyInterpreterState_ThreadHead");
    void *head = real(interp);
    struct timespec pause = {0, 200000};
    nanosleep(&pause, 0);
    return head;
}
"""


@pytest.fixture(scope="module")
def widen_walk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment that preloads the shim (skips without a C compiler or off Linux)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not sys.platform.startswith("linux"):
        pytest.skip("needs a C compiler and LD_PRELOAD (Linux) to widen the race window")
    folder = tmp_path_factory.mktemp("shim")
    (folder / "widen.c").write_text(_WIDEN_WALK_C)
    built = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(folder / "widen.so"),
         str(folder / "widen.c"), "-ldl"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert built.returncode == 0, built.stderr
    return {"LD_PRELOAD": str(folder / "widen.so")}


def test_serving_thread_ends_inside_the_interpreter(widen_walk: dict[str, str]) -> None:
    # submit() starts the serving thread and no watchdog (a timed call would start one), so the
    # serving thread's state heads the list; close() must stop it from inside the interpreter.
    # Before the fix this died of SIGSEGV on 3.12.1 within a few cycles under the shim (in
    # _teardown's before_destroy run), with nothing on stderr.
    proc = run_fresh(
        textwrap.dedent(
            """
            import envknit
            from envknit._subinterp import _server
            assert _server.AVAILABLE  # the serving thread runs on this Python
            for i in range(20):
                with envknit.SubInterpreterEnv(f"s{i}") as env:
                    assert env.submit("result = i", i=i).result(timeout=30) == i
            print("ok")
            """
        ),
        env=widen_walk,
    )
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "ok", "")


@ON_3121
def test_thread_ending_during_run_string_crashes_3121(widen_walk: dict[str, str]) -> None:
    # Negative control on the private module alone: a thread of the interpreter keeps starting
    # and ending short threads while the host calls run_string() in a loop.
    proc = run_fresh(
        textwrap.dedent(
            """
            import time, _xxsubinterpreters as interpreters
            iid = interpreters.create(isolated=True)
            interpreters.run_string(iid, '''
            import threading
            stop = False
            def churn():
                while not stop:
                    t = threading.Thread(target=int)
                    t.start()
                    t.join()
            churner = threading.Thread(target=churn)
            churner.start()
            ''')
            end = time.monotonic() + 20
            while time.monotonic() < end:
                interpreters.run_string(iid, "pass")
            interpreters.run_string(iid, "stop = True; churner.join()")
            interpreters.destroy(iid)
            print("survived")
            """
        ),
        env=widen_walk,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGSEGV, (proc.returncode, proc.stdout, proc.stderr)
