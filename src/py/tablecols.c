/* tablecols.c - _core._string_column_list: a string column of a
 * multigil.Table (int64 offsets, UTF-8 bytes, optional validity bitmap,
 * all SharedArrays) as a list of str / None, in one C loop
 * (multigil/table.py's Column.to_pylist).
 *
 * Owns: nothing beyond the call; it reads the three arrays through the
 * buffer protocol and checks every offset against the data's length, so
 * a corrupt column gives ValueError, never a read out of bounds.
 * Locks: none (the buffers are held for the call; a SharedArray that is
 * written by another interpreter meanwhile gives whatever bytes are
 * there, checked the same way).
 * Never: trust an offset, or decode with the buffers released.
 */
#include "tablecols.h"

static int
get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t item, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return -1;
    }
    if (view->itemsize != item) {
        PyErr_Format(PyExc_ValueError, "%s: items of %zd bytes expected, "
                     "not %zd", what, item, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *
string_list(const int64_t *off, Py_ssize_t noff, const char *data,
            Py_ssize_t ndata, const unsigned char *valid, Py_ssize_t nvalid,
            Py_ssize_t offset, Py_ssize_t length)
{
    if (offset < 0 || length < 0 || offset > noff - 1
        || length > noff - 1 - offset
        || (valid != NULL && (offset + length + 7) / 8 > nvalid)) {
        return PyErr_Format(PyExc_ValueError, "string column: rows "
                            "%zd..%zd out of range", offset, offset + length);
    }
    PyObject *out = PyList_New(length);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_ssize_t j = offset + i;
        PyObject *v;
        if (valid != NULL && !(valid[j >> 3] >> (j & 7) & 1)) {
            v = Py_NewRef(Py_None);
        }
        else {
            int64_t a = off[j], b = off[j + 1];
            if (a < 0 || b < a || b > ndata) {
                Py_DECREF(out);
                return PyErr_Format(PyExc_ValueError, "string column: row "
                                    "%zd has offsets %lld..%lld outside "
                                    "its %zd bytes", i, (long long)a,
                                    (long long)b, ndata);
            }
            v = PyUnicode_DecodeUTF8(data + a, (Py_ssize_t)(b - a), NULL);
            if (v == NULL) {
                Py_DECREF(out);
                return NULL;
            }
        }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

static PyObject *
core_string_column_list(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *offsets, *data, *validity;
    Py_ssize_t offset, length;
    if (!PyArg_ParseTuple(args, "OOOnn:_string_column_list", &offsets, &data,
                          &validity, &offset, &length)) {
        return NULL;
    }
    Py_buffer ov, dv, vv = {0};
    if (get_buffer(offsets, &ov, 8, "offsets") < 0) {
        return NULL;
    }
    if (get_buffer(data, &dv, 1, "data") < 0) {
        PyBuffer_Release(&ov);
        return NULL;
    }
    PyObject *res = NULL;
    if (validity == Py_None || get_buffer(validity, &vv, 1, "validity") == 0) {
        res = string_list(ov.buf, ov.len / 8, dv.buf, dv.len,
                          validity == Py_None ? NULL : vv.buf,
                          validity == Py_None ? 0 : vv.len, offset, length);
        if (validity != Py_None) {
            PyBuffer_Release(&vv);
        }
    }
    PyBuffer_Release(&dv);
    PyBuffer_Release(&ov);
    return res;
}

PyDoc_STRVAR(core_string_column_list_doc,
"_string_column_list(offsets, data, validity, offset, length, /)\n--\n\n"
"Rows offset..offset+length-1 of a string column as str (None where the\n"
"validity bitmap, if not None, has a 0 bit).");

int
mg_tablecols_module_add(PyObject *mod, mg_state *st)
{
    (void)st;
    static PyMethodDef defs[] = {
        {"_string_column_list", core_string_column_list, METH_VARARGS,
         core_string_column_list_doc},
        {NULL, NULL, 0, NULL},
    };
    return PyModule_AddFunctions(mod, defs);
}
