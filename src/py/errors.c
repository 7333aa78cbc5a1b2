/* errors.c - multigil's exception types and the code -> exception mapping.
 *
 * Owns: creation of MultigilError, BrokenPool and NotShareableError in module
 * state, and mg_raise(), the one function that turns an mg_err into a Python
 * exception. Nothing else converts codes.
 * Locks: none. Never: keep an exception type outside module state.
 */
#include "errors.h"

#include <stdarg.h>

PyObject *
mg_raise(mg_state *st, mg_err err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    PyOS_vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    PyObject *type;
    switch (err) {
    case MG_ENOMEM:
        return PyErr_NoMemory();
    case MG_ECLOSED:
        type = PyExc_RuntimeError;
        break;
    case MG_ETIMEDOUT:
        type = PyExc_TimeoutError;
        break;
    case MG_ESYS:
        type = PyExc_OSError;
        break;
    case MG_ECORRUPT:
        type = PyExc_ValueError;
        break;
    case MG_ETOOBIG:
        type = PyExc_OverflowError;
        break;
    case MG_EZERODIV:
        type = PyExc_ZeroDivisionError;
        break;
    case MG_EDTYPE:
        type = PyExc_TypeError;
        break;
    case MG_EBROKEN:
        type = st ? st->BrokenPool : PyExc_RuntimeError;
        break;
    default:
        PyErr_Format(PyExc_SystemError,
                     "multigil: unknown error code %d (%s); this is a bug",
                     (int)err, msg);
        return NULL;
    }
    PyErr_SetString(type, msg);
    return NULL;
}

static PyObject *
new_exception(PyObject *mod, const char *name, const char *doc,
              PyObject *bases)
{
    PyObject *exc = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
    if (exc == NULL) {
        return NULL;
    }
    const char *dot = strrchr(name, '.');
    if (PyModule_AddObjectRef(mod, dot + 1, exc) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    return exc;
}

/* BrokenPool derives from concurrent.futures.BrokenExecutor. Importing
 * concurrent.futures costs about 15 ms (it pulls in logging), and every
 * worker interpreter imports this module, so the type is made on first use
 * by a pool, not at import. */
int
mg_errors_ensure_broken_pool(PyObject *mod, mg_state *st)
{
    PyObject *cf = NULL, *broken = NULL, *bases = NULL;
    int rc = -1;
    if (st->BrokenPool != NULL) {
        return 0;
    }
    cf = PyImport_ImportModule("concurrent.futures");
    if (cf == NULL) {
        goto done;
    }
    broken = PyObject_GetAttrString(cf, "BrokenExecutor");
    if (broken == NULL) {
        goto done;
    }
    bases = PyTuple_Pack(2, st->MultigilError, broken);
    if (bases == NULL) {
        goto done;
    }
    st->BrokenPool = new_exception(
        mod, "multigil.BrokenPool",
        "The pool cannot run tasks: a worker failed to start or its "
        "initializer raised.",
        bases);
    if (st->BrokenPool == NULL) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(cf);
    Py_XDECREF(broken);
    Py_XDECREF(bases);
    return rc;
}

int
mg_errors_module_add(PyObject *mod, mg_state *st)
{
    PyObject *bases = NULL;
    int rc = -1;

    st->MultigilError = new_exception(
        mod, "multigil.MultigilError",
        "Base class of multigil's own exceptions.", NULL);
    if (st->MultigilError == NULL) {
        goto done;
    }
    bases = PyTuple_Pack(2, st->MultigilError, PyExc_TypeError);
    if (bases == NULL) {
        goto done;
    }
    st->NotShareableError = new_exception(
        mod, "multigil.NotShareableError",
        "A function or value cannot be sent to a worker interpreter.", bases);
    if (st->NotShareableError == NULL) {
        goto done;
    }
    st->RemoteTraceback = new_exception(
        mod, "multigil.RemoteTraceback",
        "Set as __cause__ of an exception raised by a task: its str() is "
        "the traceback formatted in the worker.",
        st->MultigilError);
    if (st->RemoteTraceback == NULL) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(bases);
    return rc;
}

int
mg_errors_state_traverse(mg_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->MultigilError);
    Py_VISIT(st->BrokenPool);
    Py_VISIT(st->NotShareableError);
    Py_VISIT(st->RemoteTraceback);
    return 0;
}

void
mg_errors_state_clear(mg_state *st)
{
    Py_CLEAR(st->MultigilError);
    Py_CLEAR(st->BrokenPool);
    Py_CLEAR(st->NotShareableError);
    Py_CLEAR(st->RemoteTraceback);
}
