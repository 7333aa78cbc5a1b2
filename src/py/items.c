/* items.c - conversion of SharedArray items between Python values and C.
 *
 * Owns: mg_shared_pack (a Python value -> one item of a dtype, with the
 * range and type checks every write goes through: item and slice
 * assignment, fill, scalar operands of the kernels) and mg_shared_unpack
 * (one item -> bool, int or float). Needs the GIL; touches no shared state,
 * takes no locks. Both switch on the dtype code and list every code of
 * dtype.c: any other is a TypeError (mg_shared_dtype_error), never another
 * dtype's conversion.
 */
#include "sharedarray.h"

#include <float.h>
#include <math.h>
#include <string.h>

PyObject *
mg_shared_dtype_error(const mg_dtype *dt, const char *what)
{
    return PyErr_Format(PyExc_TypeError,
                        "unsupported SharedArray dtype code '%c' (%.50s) in "
                        "%s; this is a bug or a corrupted handle",
                        dt->code, dt->name, what);
}

static int
pack_type_error(const mg_dtype *dt, PyObject *obj)
{
    PyErr_Format(PyExc_TypeError,
                 "cannot store %.200s %.200R in a SharedArray of dtype '%s' "
                 "(%s)", Py_TYPE(obj)->tp_name, obj, dt->name, dt->longname);
    return -1;
}

static int
pack_range_error(const mg_dtype *dt, PyObject *obj)
{
    PyErr_Format(PyExc_OverflowError,
                 "%.200R does not fit in dtype '%s' (%s); use a wider dtype",
                 obj, dt->name, dt->longname);
    return -1;
}

static int
pack_signed(const mg_dtype *dt, PyObject *obj, void *out)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    int bits = (int)dt->itemsize * 8;
    long long lim = bits == 64 ? 0 : (1LL << (bits - 1));
    if (overflow != 0 || (bits < 64 && (v < -lim || v >= lim))) {
        return pack_range_error(dt, obj);
    }
    int8_t i1 = (int8_t)v;
    int16_t i2 = (int16_t)v;
    int32_t i4 = (int32_t)v;
    int64_t i8 = (int64_t)v;
    switch (dt->itemsize) {
    case 1: memcpy(out, &i1, 1); break;
    case 2: memcpy(out, &i2, 2); break;
    case 4: memcpy(out, &i4, 4); break;
    default: memcpy(out, &i8, 8); break;
    }
    return 0;
}

static int
pack_unsigned(const mg_dtype *dt, PyObject *obj, void *out)
{
    int overflow = 0;
    long long sv = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (sv == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && sv < 0)) {
        return pack_range_error(dt, obj);
    }
    unsigned long long v = (unsigned long long)sv;
    if (overflow > 0) {
        v = PyLong_AsUnsignedLongLong(obj);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return pack_range_error(dt, obj);
        }
    }
    int bits = (int)dt->itemsize * 8;
    if (bits < 64 && v >= (1ULL << bits)) {
        return pack_range_error(dt, obj);
    }
    uint8_t u1 = (uint8_t)v;
    uint16_t u2 = (uint16_t)v;
    uint32_t u4 = (uint32_t)v;
    uint64_t u8 = (uint64_t)v;
    switch (dt->itemsize) {
    case 1: memcpy(out, &u1, 1); break;
    case 2: memcpy(out, &u2, 2); break;
    case 4: memcpy(out, &u4, 4); break;
    default: memcpy(out, &u8, 8); break;
    }
    return 0;
}

static int
pack_integer(const mg_dtype *dt, PyObject *obj, void *out)
{
    if (PyFloat_Check(obj) || !PyIndex_Check(obj)) {
        return pack_type_error(dt, obj);
    }
    PyObject *idx = PyNumber_Index(obj);
    if (idx == NULL) {
        return -1;
    }
    int rc = dt->kind == MG_KIND_INT ? pack_signed(dt, idx, out)
                                     : pack_unsigned(dt, idx, out);
    Py_DECREF(idx);
    return rc;
}

static int
pack_bool(const mg_dtype *dt, PyObject *obj, void *out)
{
    uint8_t v;
    if (PyBool_Check(obj)) {
        v = obj == Py_True;
    }
    else if (PyLong_Check(obj)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (overflow != 0 || (x != 0 && x != 1)) {
            return pack_range_error(dt, obj);
        }
        v = (uint8_t)x;
    }
    else {
        return pack_type_error(dt, obj);
    }
    memcpy(out, &v, 1);
    return 0;
}

static int
pack_float(const mg_dtype *dt, PyObject *obj, void *out)
{
    if (PyUnicode_Check(obj) || PyBytes_Check(obj) || PyComplex_Check(obj)) {
        return pack_type_error(dt, obj);
    }
    double d = PyFloat_AsDouble(obj);
    if (d == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            return pack_type_error(dt, obj);
        }
        return -1;
    }
    if (dt->code == 'f') {
        if (isfinite(d) && fabs(d) > FLT_MAX) {
            return pack_range_error(dt, obj);
        }
        float f = (float)d;
        memcpy(out, &f, 4);
    }
    else {
        memcpy(out, &d, 8);
    }
    return 0;
}

int
mg_shared_pack(const mg_dtype *dt, PyObject *obj, void *out)
{
    switch (dt->code) {
    case '?':
        return pack_bool(dt, obj, out);
    case 'f':
    case 'd':
        return pack_float(dt, obj, out);
    case 'b': case 'h': case 'i': case 'q':
    case 'B': case 'H': case 'I': case 'Q':
        return pack_integer(dt, obj, out);
    default:
        mg_shared_dtype_error(dt, "item assignment");
        return -1;
    }
}

PyObject *
mg_shared_unpack(const mg_dtype *dt, const void *p)
{
    switch (dt->code) {
    case '?': return PyBool_FromLong(*(const uint8_t *)p != 0);
    case 'b': return PyLong_FromLong(*(const int8_t *)p);
    case 'h': return PyLong_FromLong(*(const int16_t *)p);
    case 'i': return PyLong_FromLong(*(const int32_t *)p);
    case 'q': return PyLong_FromLongLong(*(const int64_t *)p);
    case 'B': return PyLong_FromUnsignedLong(*(const uint8_t *)p);
    case 'H': return PyLong_FromUnsignedLong(*(const uint16_t *)p);
    case 'I': return PyLong_FromUnsignedLong(*(const uint32_t *)p);
    case 'Q': return PyLong_FromUnsignedLongLong(*(const uint64_t *)p);
    case 'f': return PyFloat_FromDouble(*(const float *)p);
    case 'd': return PyFloat_FromDouble(*(const double *)p);
    default: return mg_shared_dtype_error(dt, "reading an item");
    }
}
