/* sharedarray.c - the SharedArray heap type: typed views on
 * process-global memory blocks.
 *
 * Owns: construction (SharedArray(), from_iterable, from_buffer),
 * indexing, slicing into views, slice assignment, comparison, copy/split,
 * freeze, the buffer protocol (with its count of writable exports on the
 * block), attributes, repr, the method table and the number slots. Item
 * conversion is in items.c, the kernels' work in kernels.c (the methods
 * here are one-line calls into it), Arrow export in arrow.c, the codec's
 * handles in shared.c.
 *
 * Lifetime model:
 *
 *     interpreter A                      interpreter B
 *   SharedArray a ----+               +---- SharedArray view (from_desc)
 *   a[::2] (view) ----+--> mg_block <--+
 *   ArrowArray ------(private data)--/      refcnt = number of arrows
 *
 * Every SharedArray object (arrays and views alike) holds exactly one
 * reference to its mg_block, taken at creation and dropped in dealloc. An
 * exported ArrowArray holds one more, dropped by its release callback,
 * which may run on any thread with or without an interpreter, so it uses
 * raw C only. Objects never cross interpreters; blocks do.
 *
 * Locks: none. The block's access word (block.h: the one-way frozen bit
 * and the count of writable buffer exports) is atomic; nothing locks the
 * data: concurrent writers are the user's business (single-writer
 * hand-off, docs/shared.md). Never hand out a writable pointer without
 * counting it on the block (getbuffer/releasebuffer), and never write
 * before mg_shared_check_writable.
 */
#include "sharedarray.h"
#include "shared.h"
#include "kernels.h"
#include "arrow.h"

#include <stdlib.h>
#include <string.h>

PyObject *
mg_shared_wrap(mg_state *st, mg_block *block, char *base, Py_ssize_t length,
               Py_ssize_t stride, const mg_dtype *dt)
{
    PyTypeObject *tp = st->SharedArrayType;
    MgSharedArrayObject *a = PyObject_New(MgSharedArrayObject, tp);
    if (a == NULL) {
        return NULL;
    }
    mg_block_incref(block);
    a->block = block;
    a->base = base;
    a->length = length;
    a->stride = length <= 1 ? (Py_ssize_t)dt->itemsize : stride;
    a->dtype = dt;
    a->shape[0] = length;
    a->strides[0] = a->stride;
    a->weakreflist = NULL;
    return (PyObject *)a;
}

PyObject *
mg_shared_new(mg_state *st, const mg_dtype *dt, Py_ssize_t length)
{
    size_t nbytes;
    if (length < 0) {
        PyErr_Format(PyExc_ValueError,
                     "SharedArray length must be >= 0, not %zd", length);
        return NULL;
    }
    if (__builtin_mul_overflow((size_t)length, dt->itemsize, &nbytes)
        || nbytes > (size_t)PY_SSIZE_T_MAX) {
        PyErr_Format(PyExc_OverflowError,
                     "SharedArray of %zd items of %zu bytes is too large",
                     length, dt->itemsize);
        return NULL;
    }
    mg_block *block = mg_block_new(nbytes);
    if (block == NULL) {
        return PyErr_Format(PyExc_MemoryError,
                            "cannot allocate a SharedArray of %zu bytes",
                            nbytes);
    }
    PyObject *a = mg_shared_wrap(st, block, block->data, length,
                             (Py_ssize_t)dt->itemsize, dt);
    mg_block_decref(block); /* the array holds its own reference */
    return a;
}

static void
SharedArray_dealloc(PyObject *self)
{
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    PyTypeObject *tp = Py_TYPE(self);
    if (a->weakreflist != NULL) {
        PyObject_ClearWeakRefs(self);
    }
    mg_block_decref(a->block);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static mg_state *
array_state(PyObject *self)
{
    return mg_state_from_type(Py_TYPE(self));
}

MgSharedArrayObject *
mg_shared_arg(mg_state *st, PyObject *obj, const char *what)
{
    if (!PyObject_TypeCheck(obj, st->SharedArrayType)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a multigil.SharedArray, not %.200s (wrap "
                     "other buffers with SharedArray.from_buffer)",
                     what, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return (MgSharedArrayObject *)obj;
}

int
mg_shared_check_writable(MgSharedArrayObject *a)
{
    if (mg_shared_is_frozen(a)) {
        PyErr_SetString(PyExc_TypeError,
                        "SharedArray is read-only (it was frozen with "
                        "freeze()); write to a copy() instead");
        return -1;
    }
    return 0;
}

static const mg_dtype *
dtype_arg(PyObject *obj)
{
    if (obj == NULL || obj == Py_None) {
        return mg_dtype_from_code('d');
    }
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "dtype must be a str such as 'f8' or 'int32', not "
                     "%.200s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    const char *name = PyUnicode_AsUTF8(obj);
    if (name == NULL) {
        return NULL;
    }
    const mg_dtype *dt = mg_dtype_from_name(name);
    if (dt == NULL) {
        PyErr_Format(PyExc_ValueError,
                     "unknown SharedArray dtype %R; valid dtypes are %s", obj,
                     mg_dtype_valid_names());
    }
    return dt;
}

/* -- construction -- */

static PyObject *
SharedArray_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"length", "dtype", NULL};
    Py_ssize_t length;
    PyObject *dtype = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|O:SharedArray", kwlist,
                                     &length, &dtype)) {
        return NULL;
    }
    const mg_dtype *dt = dtype_arg(dtype);
    mg_state *st = mg_state_from_type(tp);
    if (dt == NULL || st == NULL) {
        return NULL;
    }
    return mg_shared_new(st, dt, length);
}

/* Fill a fresh array from a sequence of Python values (list or tuple). */
static int
fill_from_fast(MgSharedArrayObject *a, PyObject *fast)
{
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < a->length; i++) {
        if (mg_shared_pack(a->dtype, items[i], mg_shared_item(a, i)) < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
SharedArray_from_iterable(PyObject *cls, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"iterable", "dtype", NULL};
    PyObject *it, *dtype = NULL, *fast = NULL, *res = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:from_iterable", kwlist,
                                     &it, &dtype)) {
        return NULL;
    }
    const mg_dtype *dt = dtype_arg(dtype);
    mg_state *st = mg_state_from_type((PyTypeObject *)cls);
    if (dt == NULL || st == NULL) {
        goto error;
    }
    fast = PySequence_Fast(it, "from_iterable() needs an iterable");
    if (fast == NULL) {
        goto error;
    }
    res = mg_shared_new(st, dt, PySequence_Fast_GET_SIZE(fast));
    if (res == NULL) {
        goto error;
    }
    if (fill_from_fast((MgSharedArrayObject *)res, fast) < 0) {
        goto error;
    }
    Py_DECREF(fast);
    return res;
error:
    Py_XDECREF(fast);
    Py_XDECREF(res);
    return NULL;
}

static const mg_dtype *
buffer_dtype(const Py_buffer *view, PyObject *dtype)
{
    if (dtype != NULL && dtype != Py_None) {
        const mg_dtype *dt = dtype_arg(dtype);
        if (dt != NULL && view->len % (Py_ssize_t)dt->itemsize != 0) {
            PyErr_Format(PyExc_ValueError,
                         "buffer of %zd bytes is not a whole number of "
                         "'%s' items (%zu bytes each)", view->len, dt->name,
                         dt->itemsize);
            return NULL;
        }
        return dt;
    }
    const mg_dtype *dt =
        mg_dtype_from_format(view->format, (size_t)view->itemsize);
    if (dt == NULL) {
        PyErr_Format(PyExc_ValueError,
                     "cannot infer a SharedArray dtype from buffer format "
                     "'%.50s' (itemsize %zd); pass dtype= to reinterpret "
                     "the bytes", view->format ? view->format : "B",
                     view->itemsize);
    }
    return dt;
}

static PyObject *
SharedArray_from_buffer(PyObject *cls, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"obj", "dtype", NULL};
    PyObject *obj, *dtype = NULL, *res = NULL;
    Py_buffer view;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:from_buffer", kwlist,
                                     &obj, &dtype)) {
        return NULL;
    }
    mg_state *st = mg_state_from_type((PyTypeObject *)cls);
    if (st == NULL || PyObject_GetBuffer(obj, &view, PyBUF_FULL_RO) < 0) {
        return NULL;
    }
    const mg_dtype *dt = buffer_dtype(&view, dtype);
    if (dt == NULL) {
        goto done;
    }
    res = mg_shared_new(st, dt, view.len / (Py_ssize_t)dt->itemsize);
    if (res == NULL) {
        goto done;
    }
    MgSharedArrayObject *a = (MgSharedArrayObject *)res;
    if (PyBuffer_ToContiguous(a->base, &view, view.len, 'C') < 0) {
        Py_CLEAR(res);
    }
done:
    PyBuffer_Release(&view);
    return res;
}

/* -- indexing and slicing -- */

static int
normalize_index(MgSharedArrayObject *a, Py_ssize_t *i)
{
    Py_ssize_t orig = *i;
    if (*i < 0) {
        *i += a->length;
    }
    if (*i < 0 || *i >= a->length) {
        PyErr_Format(PyExc_IndexError,
                     "SharedArray index %zd out of range for length %zd",
                     orig, a->length);
        return -1;
    }
    return 0;
}

static PyObject *
SharedArray_item(PyObject *self, Py_ssize_t i)
{
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    if (normalize_index(a, &i) < 0) {
        return NULL;
    }
    return mg_shared_unpack(a->dtype, mg_shared_item(a, i));
}

static Py_ssize_t
SharedArray_length(PyObject *self)
{
    return ((MgSharedArrayObject *)self)->length;
}

/* A new view of a for a slice object (no copy). */
static PyObject *
slice_view(MgSharedArrayObject *a, PyObject *slice)
{
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(slice, &start, &stop, &step) < 0) {
        return NULL;
    }
    Py_ssize_t n = PySlice_AdjustIndices(a->length, &start, &stop, step);
    mg_state *st = array_state((PyObject *)a);
    if (st == NULL) {
        return NULL;
    }
    char *base = n > 0 ? mg_shared_item(a, start) : a->base;
    return mg_shared_wrap(st, a->block, base, n, a->stride * (n > 1 ? step : 1),
                      a->dtype);
}

static PyObject *
SharedArray_subscript(PyObject *self, PyObject *key)
{
    if (PySlice_Check(key)) {
        return slice_view((MgSharedArrayObject *)self, key);
    }
    if (!PyIndex_Check(key)) {
        return PyErr_Format(PyExc_TypeError,
                            "SharedArray indices must be integers or slices, "
                            "not %.200s", Py_TYPE(key)->tp_name);
    }
    Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return SharedArray_item(self, i);
}

/* Pack the values of src (a SharedArray or a sequence) into tmp, a
 * contiguous buffer of n items of dst's dtype. */
static int
pack_values(MgSharedArrayObject *dst, PyObject *src, char *tmp, Py_ssize_t n)
{
    const mg_dtype *dt = dst->dtype;
    PyObject *fast = PySequence_Fast(
        src, "can only assign a sequence or a SharedArray to a slice");
    if (fast == NULL) {
        return -1;
    }
    int rc = 0;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError,
                     "cannot assign %zd values to a slice of length %zd; "
                     "the lengths must match",
                     PySequence_Fast_GET_SIZE(fast), n);
        rc = -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        rc = mg_shared_pack(dt, items[i], tmp + i * (Py_ssize_t)dt->itemsize);
    }
    Py_DECREF(fast);
    return rc;
}

static int
assign_slice(MgSharedArrayObject *a, PyObject *key, PyObject *value)
{
    MgSharedArrayObject *view =
        (MgSharedArrayObject *)slice_view(a, key);
    char *tmp = NULL;
    int rc = -1;
    if (view == NULL) {
        return -1;
    }
    mg_view dst = mg_view_of(view);
    mg_state *st = array_state((PyObject *)a);
    if (st == NULL) {
        goto done;
    }
    if (PyObject_TypeCheck(value, st->SharedArrayType)
        && ((MgSharedArrayObject *)value)->dtype == a->dtype) {
        MgSharedArrayObject *src = (MgSharedArrayObject *)value;
        if (src->length != view->length) {
            PyErr_Format(PyExc_ValueError,
                         "cannot assign a SharedArray of length %zd to a "
                         "slice of length %zd; the lengths must match",
                         src->length, view->length);
            goto done;
        }
        mg_view sv = mg_view_of(src);
        if (mg_kern_copy(&dst, &sv) != MG_OK) {
            PyErr_NoMemory();
            goto done;
        }
        rc = 0;
        goto done;
    }
    size_t isz = a->dtype->itemsize;
    tmp = PyMem_Malloc(view->length > 0 ? (size_t)view->length * isz : 1);
    if (tmp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (pack_values(view, value, tmp, view->length) < 0) {
        goto done;
    }
    mg_view sv = {tmp, view->length, (Py_ssize_t)isz, a->dtype};
    (void)mg_kern_copy(&dst, &sv); /* tmp never overlaps: no allocation */
    rc = 0;
done:
    PyMem_Free(tmp);
    Py_DECREF(view);
    return rc;
}

static int
SharedArray_ass_subscript(PyObject *self, PyObject *key, PyObject *value)
{
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "cannot delete SharedArray items: its length is "
                        "fixed");
        return -1;
    }
    if (mg_shared_check_writable(a) < 0) {
        return -1;
    }
    if (PySlice_Check(key)) {
        return assign_slice(a, key, value);
    }
    if (!PyIndex_Check(key)) {
        PyErr_Format(PyExc_TypeError,
                     "SharedArray indices must be integers or slices, not "
                     "%.200s", Py_TYPE(key)->tp_name);
        return -1;
    }
    Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if ((i == -1 && PyErr_Occurred()) || normalize_index(a, &i) < 0) {
        return -1;
    }
    return mg_shared_pack(a->dtype, value, mg_shared_item(a, i));
}

static int
SharedArray_ass_item(PyObject *self, Py_ssize_t i, PyObject *value)
{
    PyObject *key = PyLong_FromSsize_t(i);
    if (key == NULL) {
        return -1;
    }
    int rc = SharedArray_ass_subscript(self, key, value);
    Py_DECREF(key);
    return rc;
}

/* -- comparison -- */

static int
equal_same_dtype(MgSharedArrayObject *a, MgSharedArrayObject *b)
{
    size_t isz = a->dtype->itemsize;
    for (Py_ssize_t i = 0; i < a->length; i++) {
        const char *p = mg_shared_item(a, i), *q = mg_shared_item(b, i);
        if (a->dtype->kind == MG_KIND_FLOAT) {
            double x = isz == 4 ? *(const float *)p : *(const double *)p;
            double y = isz == 4 ? *(const float *)q : *(const double *)q;
            if (!(x == y)) {
                return 0;
            }
        }
        else if (memcmp(p, q, isz) != 0) {
            return 0;
        }
    }
    return 1;
}

/* 1 if equal, 0 if not, -1 on error. */
static int
equal_sequence(MgSharedArrayObject *a, PyObject *other)
{
    Py_ssize_t n = PyObject_Length(other);
    if (n < 0) {
        return -1;
    }
    if (n != a->length) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = mg_shared_unpack(a->dtype, mg_shared_item(a, i));
        PyObject *y = x ? PySequence_GetItem(other, i) : NULL;
        int eq = y ? PyObject_RichCompareBool(x, y, Py_EQ) : -1;
        Py_XDECREF(x);
        Py_XDECREF(y);
        if (eq <= 0) {
            return eq;
        }
    }
    return 1;
}

static PyObject *
SharedArray_richcompare(PyObject *self, PyObject *other, int op)
{
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    if (op != Py_EQ && op != Py_NE) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    mg_state *st = array_state(self);
    if (st == NULL) {
        return NULL;
    }
    int eq;
    if (PyObject_TypeCheck(other, st->SharedArrayType)
        && ((MgSharedArrayObject *)other)->dtype == a->dtype) {
        MgSharedArrayObject *b = (MgSharedArrayObject *)other;
        eq = b->length == a->length && equal_same_dtype(a, b);
    }
    else if (PyObject_TypeCheck(other, st->SharedArrayType)
             || (PySequence_Check(other) && !PyUnicode_Check(other)
                 && !PyBytes_Check(other) && !PyByteArray_Check(other))) {
        eq = equal_sequence(a, other);
    }
    else {
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (eq < 0) {
        return NULL;
    }
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

/* -- methods -- */

static PyObject *
SharedArray_tolist(PyObject *self, PyObject *unused)
{
    (void)unused;
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    PyObject *list = PyList_New(a->length);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < a->length; i++) {
        PyObject *x = mg_shared_unpack(a->dtype, mg_shared_item(a, i));
        if (x == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, x);
    }
    return list;
}

static PyObject *
SharedArray_copy(PyObject *self, PyObject *unused)
{
    (void)unused;
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    mg_state *st = array_state(self);
    if (st == NULL) {
        return NULL;
    }
    PyObject *res = mg_shared_new(st, a->dtype, a->length);
    if (res == NULL) {
        return NULL;
    }
    mg_view dst = mg_view_of((MgSharedArrayObject *)res);
    mg_view src = mg_view_of(a);
    Py_BEGIN_ALLOW_THREADS
    (void)mg_kern_copy(&dst, &src); /* a fresh block never overlaps */
    Py_END_ALLOW_THREADS
    return res;
}

static PyObject *
SharedArray_deepcopy(PyObject *self, PyObject *memo)
{
    (void)memo;
    return SharedArray_copy(self, NULL);
}

static PyObject *
SharedArray_split(PyObject *self, PyObject *arg)
{
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    Py_ssize_t k = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (k == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (k < 1) {
        return PyErr_Format(PyExc_ValueError,
                            "split() needs k >= 1 parts, not %zd", k);
    }
    mg_state *st = array_state(self);
    PyObject *list = st ? PyList_New(k) : NULL;
    if (list == NULL) {
        return NULL;
    }
    Py_ssize_t q = a->length / k, r = a->length % k, start = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_ssize_t n = q + (j < r ? 1 : 0);
        char *base = n > 0 ? mg_shared_item(a, start) : a->base;
        PyObject *v = mg_shared_wrap(st, a->block, base, n, a->stride, a->dtype);
        if (v == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, j, v);
        start += n;
    }
    return list;
}

/* As bytearray refuses to resize while exported. */
int
mg_shared_freeze_block(mg_block *block)
{
    size_t n;
    if (mg_block_freeze(block, &n) < 0) {
        PyErr_Format(PyExc_BufferError,
                     "cannot freeze a SharedArray while %zu writable buffer "
                     "export%s of its memory exist%s (memoryview, NumPy "
                     "array, ... in this or another interpreter); release "
                     "them first (memoryview.release() or del)", n,
                     n == 1 ? "" : "s", n == 1 ? "s" : "");
        return -1;
    }
    return 0;
}

static PyObject *
SharedArray_freeze(PyObject *self, PyObject *unused)
{
    (void)unused;
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    return mg_shared_freeze_block(a->block) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *
SharedArray_reduce_ex(PyObject *self, PyObject *protocol)
{
    (void)self;
    (void)protocol;
    PyErr_SetString(PyExc_TypeError,
                    "cannot pickle a multigil.SharedArray: it crosses "
                    "interpreters only as a handle through multigil (pass it "
                    "to Pool.submit/map); to save or send it elsewhere, "
                    "pickle a.tolist() or bytes(a)");
    return NULL;
}

/* -- buffer protocol -- */

static int
SharedArray_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    int want_contig = (flags & PyBUF_ANY_CONTIGUOUS) == PyBUF_ANY_CONTIGUOUS
                      || (flags & PyBUF_C_CONTIGUOUS) == PyBUF_C_CONTIGUOUS
                      || (flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS
                      || (flags & PyBUF_STRIDES) != PyBUF_STRIDES;
    if (want_contig && !mg_shared_is_contiguous(a)) {
        PyErr_SetString(PyExc_BufferError,
                        "this SharedArray view is strided and the consumer "
                        "asked for contiguous memory; use a.copy()");
        return -1;
    }
    /* Every export of unfrozen memory is writable (memoryview(a) asks
     * without PyBUF_WRITABLE and still writes), so each one is counted on
     * the block until released: freeze() refuses while any is live. */
    int writable = mg_block_export_begin(a->block) == 0;
    if (!writable && (flags & PyBUF_WRITABLE)) {
        PyErr_SetString(PyExc_BufferError,
                        "SharedArray is read-only (frozen); request a "
                        "read-only buffer or write to a copy()");
        return -1;
    }
    view->buf = a->base;
    view->obj = Py_NewRef(self);
    view->len = a->length * (Py_ssize_t)a->dtype->itemsize;
    view->itemsize = (Py_ssize_t)a->dtype->itemsize;
    view->readonly = !writable;
    view->ndim = 1;
    view->format = (flags & PyBUF_FORMAT) ? (char *)a->dtype->format : NULL;
    view->shape = (flags & PyBUF_ND) == PyBUF_ND ? a->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? a->strides
                                                             : NULL;
    view->suboffsets = NULL;
    view->internal = writable ? a->block : NULL; /* counted export */
    return 0;
}

static void
SharedArray_releasebuffer(PyObject *self, Py_buffer *view)
{
    (void)self;
    if (view->internal != NULL) { /* view->obj keeps the block alive */
        mg_block_export_end((mg_block *)view->internal);
    }
}

/* -- attributes and repr -- */

static PyObject *
SharedArray_get_readonly(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(mg_shared_is_frozen((MgSharedArrayObject *)self));
}

static PyObject *
SharedArray_get_dtype(PyObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(((MgSharedArrayObject *)self)->dtype->name);
}

static PyObject *
SharedArray_get_itemsize(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSize_t(((MgSharedArrayObject *)self)->dtype->itemsize);
}

static PyObject *
SharedArray_get_nbytes(PyObject *self, void *closure)
{
    (void)closure;
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    return PyLong_FromSsize_t(a->length * (Py_ssize_t)a->dtype->itemsize);
}

static PyObject *
SharedArray_get_stride(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(((MgSharedArrayObject *)self)->stride);
}

/* "[x0, x1, ...]" for repr: every item, or the first and last three
 * around "..." for long arrays. */
static PyObject *
repr_items(MgSharedArrayObject *a)
{
    Py_ssize_t shown = a->length <= 8 ? a->length : 7;
    PyObject *parts = PyList_New(shown), *sep = NULL, *res = NULL;
    if (parts == NULL) {
        return NULL;
    }
    for (Py_ssize_t j = 0; j < shown; j++) {
        Py_ssize_t i = (shown == 7 && j > 3) ? a->length - 7 + j : j;
        PyObject *r;
        if (shown == 7 && j == 3) {
            r = PyUnicode_FromString("...");
        }
        else {
            PyObject *x = mg_shared_unpack(a->dtype, mg_shared_item(a, i));
            r = x ? PyObject_Repr(x) : NULL;
            Py_XDECREF(x);
        }
        if (r == NULL) {
            goto done;
        }
        PyList_SET_ITEM(parts, j, r);
    }
    sep = PyUnicode_FromString(", ");
    PyObject *body = sep ? PyUnicode_Join(sep, parts) : NULL;
    if (body != NULL) {
        res = PyUnicode_FromFormat("[%U]", body);
        Py_DECREF(body);
    }
done:
    Py_XDECREF(sep);
    Py_DECREF(parts);
    return res;
}

static PyObject *
SharedArray_repr(PyObject *self)
{
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    PyObject *items = repr_items(a);
    if (items == NULL) {
        return NULL;
    }
    const char *ro = mg_shared_is_frozen(a) ? ", readonly=True" : "";
    PyObject *res;
    if (a->length > 8) {
        res = PyUnicode_FromFormat("SharedArray(%U, dtype='%s', length=%zd%s)",
                                   items, a->dtype->name, a->length, ro);
    }
    else {
        res = PyUnicode_FromFormat("SharedArray(%U, dtype='%s'%s)", items,
                                   a->dtype->name, ro);
    }
    Py_DECREF(items);
    return res;
}

/* -- kernels (kernels.c does the work; multigil.kernels has the same) -- */

#define SELF ((MgSharedArrayObject *)self)

static PyObject *
SharedArray_sum(PyObject *self, PyObject *unused)
{
    (void)unused;
    return mg_kernels_sum(SELF);
}

static PyObject *
SharedArray_min(PyObject *self, PyObject *unused)
{
    (void)unused;
    return mg_kernels_argext(SELF, 0, 1);
}

static PyObject *
SharedArray_max(PyObject *self, PyObject *unused)
{
    (void)unused;
    return mg_kernels_argext(SELF, 1, 1);
}

static PyObject *
SharedArray_argmin(PyObject *self, PyObject *unused)
{
    (void)unused;
    return mg_kernels_argext(SELF, 0, 0);
}

static PyObject *
SharedArray_argmax(PyObject *self, PyObject *unused)
{
    (void)unused;
    return mg_kernels_argext(SELF, 1, 0);
}

static PyObject *
SharedArray_mean(PyObject *self, PyObject *unused)
{
    (void)unused;
    return mg_kernels_mean(SELF);
}

static PyObject *
var_std_method(PyObject *self, PyObject *args, PyObject *kw, int want_std)
{
    static char *kwlist[] = {"ddof", NULL};
    Py_ssize_t ddof = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, want_std ? "|n:std" : "|n:var",
                                     kwlist, &ddof)) {
        return NULL;
    }
    return mg_kernels_var_std(SELF, ddof, want_std);
}

static PyObject *
SharedArray_var(PyObject *self, PyObject *args, PyObject *kw)
{
    return var_std_method(self, args, kw, 0);
}

static PyObject *
SharedArray_std(PyObject *self, PyObject *args, PyObject *kw)
{
    return var_std_method(self, args, kw, 1);
}

static PyObject *
SharedArray_count_nonzero(PyObject *self, PyObject *unused)
{
    (void)unused;
    return mg_kernels_count_nonzero(SELF);
}

static PyObject *
SharedArray_stats(PyObject *self, PyObject *unused)
{
    (void)unused;
    mg_state *st = array_state(self);
    return st ? mg_kernels_stats(st, SELF) : NULL;
}

static PyObject *
SharedArray_fill(PyObject *self, PyObject *value)
{
    return mg_kernels_fill(SELF, value);
}

static PyObject *
SharedArray_sort(PyObject *self, PyObject *unused)
{
    (void)unused;
    return mg_kernels_sort(SELF);
}

/* self op= other (nb_inplace_*): returns self. */
static PyObject *
inplace(PyObject *self, PyObject *other, mg_binop op)
{
    mg_state *st = array_state(self);
    PyObject *r = st ? mg_kernels_binop(st, SELF, other, op) : NULL;
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    return Py_NewRef(self);
}

#undef SELF

static PyObject *
SharedArray_iadd(PyObject *self, PyObject *other)
{
    return inplace(self, other, MG_OP_ADD);
}

static PyObject *
SharedArray_isub(PyObject *self, PyObject *other)
{
    return inplace(self, other, MG_OP_SUB);
}

static PyObject *
SharedArray_imul(PyObject *self, PyObject *other)
{
    return inplace(self, other, MG_OP_MUL);
}

/* a /= x is true division: floats only. a //= x is floor division:
 * integers only (kernels.div picks by dtype). */
static PyObject *
inplace_div(PyObject *self, PyObject *other, int floor)
{
    MgSharedArrayObject *a = (MgSharedArrayObject *)self;
    int is_float = a->dtype->kind == MG_KIND_FLOAT;
    if (floor == is_float) {
        return PyErr_Format(
            PyExc_TypeError,
            floor ? "a //= x is floor division, for integer dtypes; use "
                    "a /= x on this '%s' SharedArray"
                  : "a /= x on an integer ('%s') SharedArray cannot store "
                    "fractions; use a //= x (floor division) or a float "
                    "dtype",
            a->dtype->name);
    }
    return inplace(self, other, MG_OP_DIV);
}

static PyObject *
SharedArray_itruediv(PyObject *self, PyObject *other)
{
    return inplace_div(self, other, 0);
}

static PyObject *
SharedArray_ifloordiv(PyObject *self, PyObject *other)
{
    return inplace_div(self, other, 1);
}

static PyMethodDef SharedArray_methods[] = {
    {"from_buffer", (PyCFunction)(void (*)(void))SharedArray_from_buffer,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     PyDoc_STR("from_buffer($cls, obj, dtype=None)\n--\n\n"
               "A new SharedArray holding a copy of the buffer's bytes. "
               "With dtype=None the dtype comes from the buffer's format; "
               "otherwise the bytes are reinterpreted as dtype. "
               "Multi-dimensional buffers are flattened in C order.")},
    {"from_iterable",
     (PyCFunction)(void (*)(void))SharedArray_from_iterable,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     PyDoc_STR("from_iterable($cls, iterable, dtype='f8')\n--\n\n"
               "A new SharedArray holding the values of iterable.")},
    {"tolist", SharedArray_tolist, METH_NOARGS,
     PyDoc_STR("tolist($self, /)\n--\n\nThe items as a list.")},
    {"copy", SharedArray_copy, METH_NOARGS,
     PyDoc_STR("copy($self, /)\n--\n\n"
               "A contiguous, writable copy in a new block.")},
    {"__copy__", SharedArray_copy, METH_NOARGS, NULL},
    {"__deepcopy__", SharedArray_deepcopy, METH_O, NULL},
    {"split", SharedArray_split, METH_O,
     PyDoc_STR("split($self, k, /)\n--\n\n"
               "k contiguous views covering the array in order; their "
               "lengths differ by at most one. No data is copied.")},
    {"freeze", SharedArray_freeze, METH_NOARGS,
     PyDoc_STR("freeze($self, /)\n--\n\n"
               "Make the memory read-only for every array and view on it, "
               "in every interpreter. Irreversible.")},
    {"__reduce_ex__", SharedArray_reduce_ex, METH_O, NULL},
    {"__arrow_c_schema__", mg_arrow_meth_schema, METH_NOARGS,
     PyDoc_STR("__arrow_c_schema__($self, /)\n--\n\n"
               "Arrow PyCapsule interface: the array's type.")},
    {"__arrow_c_array__",
     (PyCFunction)(void (*)(void))mg_arrow_meth_array,
     METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("__arrow_c_array__($self, /, requested_schema=None)\n--\n\n"
               "Arrow PyCapsule interface. Contiguous numeric arrays are "
               "exported without a copy; strided views and bool arrays "
               "(bit-packed in Arrow) are exported as a copy.")},
    {"sum", SharedArray_sum, METH_NOARGS,
     PyDoc_STR("sum($self, /)\n--\n\nSee multigil.kernels.sum.")},
    {"min", SharedArray_min, METH_NOARGS,
     PyDoc_STR("min($self, /)\n--\n\nSee multigil.kernels.min.")},
    {"max", SharedArray_max, METH_NOARGS,
     PyDoc_STR("max($self, /)\n--\n\nSee multigil.kernels.max.")},
    {"argmin", SharedArray_argmin, METH_NOARGS,
     PyDoc_STR("argmin($self, /)\n--\n\nSee multigil.kernels.argmin.")},
    {"argmax", SharedArray_argmax, METH_NOARGS,
     PyDoc_STR("argmax($self, /)\n--\n\nSee multigil.kernels.argmax.")},
    {"mean", SharedArray_mean, METH_NOARGS,
     PyDoc_STR("mean($self, /)\n--\n\nSee multigil.kernels.mean.")},
    {"var", (PyCFunction)(void (*)(void))SharedArray_var,
     METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("var($self, /, ddof=0)\n--\n\nSee multigil.kernels.var.")},
    {"std", (PyCFunction)(void (*)(void))SharedArray_std,
     METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("std($self, /, ddof=0)\n--\n\nSee multigil.kernels.std.")},
    {"count_nonzero", SharedArray_count_nonzero, METH_NOARGS,
     PyDoc_STR("count_nonzero($self, /)\n--\n\n"
               "See multigil.kernels.count_nonzero.")},
    {"stats", SharedArray_stats, METH_NOARGS,
     PyDoc_STR("stats($self, /)\n--\n\nSee multigil.kernels.stats.")},
    {"fill", SharedArray_fill, METH_O,
     PyDoc_STR("fill($self, value, /)\n--\n\nSee multigil.kernels.fill.")},
    {"sort", SharedArray_sort, METH_NOARGS,
     PyDoc_STR("sort($self, /)\n--\n\nSee multigil.kernels.sort.")},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef SharedArray_getset[] = {
    {"readonly", SharedArray_get_readonly, NULL,
     PyDoc_STR("True once freeze() was called on this memory."), NULL},
    {"dtype", SharedArray_get_dtype, NULL,
     PyDoc_STR("The element type, as a short name such as 'f8'."), NULL},
    {"itemsize", SharedArray_get_itemsize, NULL,
     PyDoc_STR("Bytes per item."), NULL},
    {"nbytes", SharedArray_get_nbytes, NULL,
     PyDoc_STR("len(self) * itemsize."), NULL},
    {"stride", SharedArray_get_stride, NULL,
     PyDoc_STR("Bytes between consecutive items (negative for reversed "
               "views)."), NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef SharedArray_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET,
     offsetof(MgSharedArrayObject, weakreflist), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(SharedArray_doc,
"SharedArray(length, dtype='f8')\n--\n\n"
"A fixed-length, typed, zero-filled array in memory that every worker\n"
"interpreter of the process can see without a copy. Slices are views on\n"
"the same memory. a == b compares elementwise and returns one bool.\n"
"See docs/shared.md.");

static PyType_Slot SharedArray_slots[] = {
    {Py_tp_doc, (void *)SharedArray_doc},
    {Py_tp_new, SharedArray_new},
    {Py_tp_dealloc, SharedArray_dealloc},
    {Py_tp_repr, SharedArray_repr},
    {Py_tp_hash, PyObject_HashNotImplemented},
    {Py_tp_richcompare, SharedArray_richcompare},
    {Py_tp_methods, SharedArray_methods},
    {Py_tp_getset, SharedArray_getset},
    {Py_tp_members, SharedArray_members},
    {Py_mp_length, SharedArray_length},
    {Py_mp_subscript, SharedArray_subscript},
    {Py_mp_ass_subscript, SharedArray_ass_subscript},
    {Py_sq_length, SharedArray_length},
    {Py_sq_item, SharedArray_item},
    {Py_sq_ass_item, SharedArray_ass_item},
    {Py_nb_inplace_add, SharedArray_iadd},
    {Py_nb_inplace_subtract, SharedArray_isub},
    {Py_nb_inplace_multiply, SharedArray_imul},
    {Py_nb_inplace_true_divide, SharedArray_itruediv},
    {Py_nb_inplace_floor_divide, SharedArray_ifloordiv},
    {Py_bf_getbuffer, SharedArray_getbuffer},
    {Py_bf_releasebuffer, SharedArray_releasebuffer},
    {0, NULL},
};

static PyType_Spec SharedArray_spec = {
    .name = "multigil.SharedArray",
    .basicsize = sizeof(MgSharedArrayObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = SharedArray_slots,
};

/* ---- registration ---- */

int
mg_shared_module_add(PyObject *mod, mg_state *st)
{
    if (mg_shared_handles_register(st) < 0) {
        return -1;
    }
    PyObject *tp = PyType_FromModuleAndSpec(mod, &SharedArray_spec, NULL);
    if (tp == NULL) {
        return -1;
    }
    st->SharedArrayType = (PyTypeObject *)tp;
    return PyModule_AddObjectRef(mod, "SharedArray", tp);
}

int
mg_shared_state_traverse(mg_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->SharedArrayType);
    return 0;
}

void
mg_shared_state_clear(mg_state *st)
{
    Py_CLEAR(st->SharedArrayType);
}
