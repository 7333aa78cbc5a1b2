/* fuzz_decode.c - libFuzzer target for the codec's decoder.
 *
 * Embeds CPython, imports multigil._core (linked into this binary and
 * registered as a built-in module), and calls loads() on every input: it
 * must return a value or raise, never crash or read out of bounds (ASan).
 * An audit hook keeps hostile inputs from doing harm: pickles may only
 * load a few harmless builtins, and no module may be imported for the
 * first time while decoding. Built and run by `make fuzz`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#ifndef MG_PYHOME
#error "define MG_PYHOME (sys.prefix of the Python to embed)"
#endif

PyMODINIT_FUNC PyInit__core(void);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static PyObject *loads_fn; /* the harness runs one interpreter, once */
static int decoding;

static int
allowed_global(PyObject *args)
{
    static const char *const ok[] = {"set", "frozenset", "complex",
                                     "bytearray", "slice", "range", NULL};
    const char *mod, *name;
    if (!PyArg_ParseTuple(args, "ss", &mod, &name)) {
        return 0;
    }
    if (strcmp(mod, "builtins") != 0) {
        return 0;
    }
    for (int i = 0; ok[i]; i++) {
        if (strcmp(name, ok[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
audit_hook(const char *event, PyObject *args, void *unused)
{
    (void)unused;
    if (!decoding) {
        return 0;
    }
    if (strcmp(event, "pickle.find_class") == 0 && !allowed_global(args)) {
        PyErr_Clear();
        PyErr_SetString(PyExc_RuntimeError, "fuzz: global refused");
        return -1;
    }
    if (strcmp(event, "import") == 0) {
        PyObject *name = PyTuple_GetItem(args, 0);
        PyObject *mods = PySys_GetObject("modules");
        if (name == NULL || mods == NULL
            || PyDict_Contains(mods, name) != 1) {
            PyErr_Clear();
            PyErr_SetString(PyExc_RuntimeError, "fuzz: import refused");
            return -1;
        }
    }
    return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    PyConfig config;
    PyStatus status;
    if (PyImport_AppendInittab("multigil._core", PyInit__core) < 0) {
        abort();
    }
    PySys_AddAuditHook(audit_hook, NULL);
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    status = PyConfig_SetBytesString(&config, &config.home, MG_PYHOME);
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
    PyObject *mod = PyImport_ImportModule("multigil._core");
    if (mod == NULL) {
        PyErr_Print();
        abort();
    }
    loads_fn = PyObject_GetAttrString(mod, "loads");
    Py_DECREF(mod);
    if (loads_fn == NULL) {
        PyErr_Print();
        abort();
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    PyObject *b = PyBytes_FromStringAndSize((const char *)data,
                                            (Py_ssize_t)size);
    if (b == NULL) {
        PyErr_Clear();
        return 0;
    }
    decoding = 1;
    PyObject *v = PyObject_CallOneArg(loads_fn, b);
    decoding = 0;
    if (v == NULL) {
        /* Only ValueError (or MemoryError) may escape the decoder. */
        if (!PyErr_ExceptionMatches(PyExc_ValueError)
            && !PyErr_ExceptionMatches(PyExc_MemoryError)) {
            PyErr_Print();
            abort();
        }
        PyErr_Clear();
    }
    else {
        PyObject *r = PyObject_Repr(v); /* touch every object built */
        Py_XDECREF(r);
        PyErr_Clear();
        Py_DECREF(v);
    }
    Py_DECREF(b);
    return 0;
}
