/* codec.c - encode/decode values into mg_buf for crossing interpreters.
 *
 * Owns: the encoding of task payloads, results and exceptions. For now the
 * format is a pickle (protocol 5) stream in the buffer's bytes; the calls in
 * codec.h are the only entry points, so the format can change here alone.
 * Never touches a PyObject of another interpreter.
 */
#include "codec.h"
#include "errors.h"

int
mg_codec_encode(mg_state *st, PyObject *obj, mg_buf *out)
{
    PyObject *proto = PyLong_FromLong(5);
    if (proto == NULL) {
        return -1;
    }
    PyObject *bytes =
        PyObject_CallFunctionObjArgs(st->pickle_dumps, obj, proto, NULL);
    Py_DECREF(proto);
    if (bytes == NULL) {
        return -1;
    }
    int rc = 0;
    if (mg_buf_append(out, PyBytes_AS_STRING(bytes),
                      (size_t)PyBytes_GET_SIZE(bytes)) != MG_OK) {
        PyErr_NoMemory();
        rc = -1;
    }
    Py_DECREF(bytes);
    return rc;
}

PyObject *
mg_codec_decode(mg_state *st, const mg_buf *in)
{
    if (in->len > PY_SSIZE_T_MAX) {
        return mg_raise(st, MG_ETOOBIG, "message of %zu bytes is too large",
                        in->len);
    }
    PyObject *view = PyMemoryView_FromMemory((char *)in->data,
                                             (Py_ssize_t)in->len, PyBUF_READ);
    if (view == NULL) {
        return NULL;
    }
    PyObject *obj = PyObject_CallOneArg(st->pickle_loads, view);
    Py_DECREF(view);
    return obj;
}

int
mg_codec_state_traverse(mg_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->pickle_dumps);
    Py_VISIT(st->pickle_loads);
    Py_VISIT(st->pickle_error);
    return 0;
}

void
mg_codec_state_clear(mg_state *st)
{
    Py_CLEAR(st->pickle_dumps);
    Py_CLEAR(st->pickle_loads);
    Py_CLEAR(st->pickle_error);
}

int
mg_codec_module_add(PyObject *mod, mg_state *st)
{
    (void)mod;
    PyObject *pickle = PyImport_ImportModule("pickle");
    if (pickle == NULL) {
        return -1;
    }
    st->pickle_dumps = PyObject_GetAttrString(pickle, "dumps");
    st->pickle_loads = PyObject_GetAttrString(pickle, "loads");
    st->pickle_error = PyObject_GetAttrString(pickle, "PicklingError");
    Py_DECREF(pickle);
    if (!st->pickle_dumps || !st->pickle_loads || !st->pickle_error) {
        return -1;
    }
    return 0;
}
