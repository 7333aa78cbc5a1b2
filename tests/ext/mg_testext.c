/* mg_testext.c - test extension modules for `python -m multigil compat`
 * (tests/test_compat.py compiles this file with the running Python's
 * compiler and include path, twice):
 *
 *   default        -> mg_singlephase: deliberately single-phase init
 *                     (PyModule_Create), which an own-GIL subinterpreter
 *                     must refuse and a legacy one may load;
 *   -DMG_MULTI     -> mg_multiphase: multi-phase init declaring
 *                     Py_mod_multiple_interpreters =
 *                     Py_MOD_PER_INTERPRETER_GIL_SUPPORTED and, where the
 *                     Python has it (3.13+), Py_mod_gil = Py_MOD_GIL_NOT_USED.
 *
 * No state, no locks; never part of multigil itself.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef MG_MULTI

static struct PyModuleDef single_def = {
    PyModuleDef_HEAD_INIT, "mg_singlephase", "single-phase test module",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_mg_singlephase(void);

PyMODINIT_FUNC
PyInit_mg_singlephase(void)
{
    return PyModule_Create(&single_def);
}

#else

static PyModuleDef_Slot multi_slots[] = {
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef multi_def = {
    PyModuleDef_HEAD_INIT, "mg_multiphase", "multi-phase test module",
    0, NULL, multi_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_mg_multiphase(void);

PyMODINIT_FUNC
PyInit_mg_multiphase(void)
{
    return PyModuleDef_Init(&multi_def);
}

#endif
