"""Tiny real C extension modules compiled on the fly, with a chosen sub-interpreter behaviour."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

__all__ = ["MODES", "build_extension", "have_compiler"]

# One source for every mode; MODE picks what happens in an isolated sub-interpreter:
#   ok      multi-phase init that declares per-interpreter-GIL support: loads everywhere
#   single  single-phase init: CPython refuses it ("does not support loading in subinterpreters")
#   raises  loads in the main interpreter; in a sub-interpreter its exec slot raises an
#           AttributeError (what numpy does on 3.12, before CPython can refuse it)
#   crash   loads in the main interpreter; in a sub-interpreter it calls abort()
_SOURCE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(a) #a
#define STR(a) STR_(a)

static int in_sub(void) { return PyInterpreterState_Get() != PyInterpreterState_Main(); }

static int exec_mod(PyObject *m) {
#if defined(MODE_RAISES)
    if (in_sub()) {
        PyErr_SetString(PyExc_AttributeError, "module 'datetime' has no attribute 'fake_CAPI'");
        return -1;
    }
#elif defined(MODE_CRASH)
    if (in_sub()) abort();
#endif
    return PyModule_AddIntConstant(m, "answer", 42);
}

#if defined(MODE_SINGLE)
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, STR(MODNAME), NULL, -1, NULL};
PyMODINIT_FUNC CAT(PyInit_, MODNAME)(void) {
    PyObject *m = PyModule_Create(&def);
    if (m != NULL && exec_mod(m) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
#else
static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_mod},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, NULL},
};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, STR(MODNAME), NULL, 0, NULL, slots};
PyMODINIT_FUNC CAT(PyInit_, MODNAME)(void) { return PyModuleDef_Init(&def); }
#endif
"""

MODES = ("ok", "single", "raises", "crash")


def have_compiler() -> bool:
    return shutil.which("gcc") is not None


def build_extension(workdir: Path, module: str, mode: str) -> tuple[str, bytes]:
    """Compile extension ``module`` (a bare name) in ``mode``; (file name, contents)."""
    assert mode in MODES, mode
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "ext.c"
    source.write_text(_SOURCE)
    filename = module + str(sysconfig.get_config_var("EXT_SUFFIX"))
    target = workdir / filename
    include = sysconfig.get_paths()["include"]
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O0", f"-I{include}", f"-DMODNAME={module}",
         f"-DMODE_{mode.upper()}", str(source), "-o", str(target)],
        check=True, capture_output=True, timeout=120,
    )
    return filename, target.read_bytes()
