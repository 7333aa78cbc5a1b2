/* buildinfo.c - multigil._core._build_info(): how this extension was built.
 *
 * Owns: one function returning a new dict of compile-time facts (the build
 * variant the Makefile passed, whether the test hooks of sharedtest.c and
 * the sanitizers are compiled in, optimisation, the compiler, and the
 * Python headers it was compiled against). `python -m multigil info`
 * prints it. No state, no locks; it must never grow anything the product
 * depends on at run time.
 */
#include "core.h"

#ifndef MG_BUILD_VARIANT
#define MG_BUILD_VARIANT "setuptools"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define MG_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MG_HAVE_ASAN 1
#endif
#endif
#ifndef MG_HAVE_ASAN
#define MG_HAVE_ASAN 0
#endif

#ifdef MG_TEST_HOOKS
#define MG_HAVE_TEST_HOOKS 1
#else
#define MG_HAVE_TEST_HOOKS 0
#endif

#ifdef __OPTIMIZE__
#define MG_OPTIMIZED 1
#else
#define MG_OPTIMIZED 0
#endif

#ifdef NDEBUG
#define MG_ASSERTS 0
#else
#define MG_ASSERTS 1
#endif

#ifdef Py_GIL_DISABLED
#define MG_FREE_THREADED 1
#else
#define MG_FREE_THREADED 0
#endif

#ifdef __VERSION__
#define MG_COMPILER __VERSION__
#else
#define MG_COMPILER "unknown"
#endif

static PyObject *
core_build_info(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return Py_BuildValue(
        "{s:s,s:O,s:O,s:O,s:O,s:O,s:s,s:s}",
        "variant", MG_BUILD_VARIANT,
        "test_hooks", MG_HAVE_TEST_HOOKS ? Py_True : Py_False,
        "address_sanitizer", MG_HAVE_ASAN ? Py_True : Py_False,
        "optimized", MG_OPTIMIZED ? Py_True : Py_False,
        "c_asserts", MG_ASSERTS ? Py_True : Py_False,
        "free_threaded_headers", MG_FREE_THREADED ? Py_True : Py_False,
        "compiler", MG_COMPILER,
        "python_headers", PY_VERSION);
}

static PyMethodDef buildinfo_functions[] = {
    {"_build_info", core_build_info, METH_NOARGS,
     PyDoc_STR("_build_info($module, /)\n--\n\n"
               "A new dict of how this extension was built.")},
    {NULL, NULL, 0, NULL},
};

int
mg_buildinfo_module_add(PyObject *mod, mg_state *st)
{
    (void)st;
    return PyModule_AddFunctions(mod, buildinfo_functions);
}
