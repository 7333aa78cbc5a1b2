/* arrow.c - SharedArray export through the Arrow C data interface and the
 * Arrow PyCapsule interface (__arrow_c_schema__, __arrow_c_array__).
 *
 * Owns: the ArrowSchema / ArrowArray structs we hand out, their release
 * callbacks and the capsules that carry them. Contiguous numeric arrays are
 * exported without a copy: the ArrowArray's private data holds one block
 * reference, dropped by the release callback. The consumer may call that
 * callback from any thread, with or without an interpreter, so it uses raw
 * C only (free, mg_block_decref). Strided views are exported as a
 * contiguous copy and bool arrays as a bit-packed copy (Arrow booleans are
 * bits), each in a fresh block.
 * Never: call the Python C API from a release callback.
 */
#include "arrow.h"
#include "arrow_abi.h"

#include <stdlib.h>
#include <string.h>

/* ---- C core (no Python API) ---- */

/* The structs are the ABI of arrow_abi.h. */

/* Private data of an exported ArrowArray: raw C only, freed by release. */
typedef struct arrow_private {
    mg_block *block;      /* one reference, dropped by release */
    const void *buffers[2];
} arrow_private;

static void
arrow_schema_release(struct ArrowSchema *s)
{
    s->release = NULL; /* format and name are static strings */
}

/* May run on any thread, with or without an interpreter: raw C only. */
static void
arrow_array_release(struct ArrowArray *arr)
{
    arrow_private *priv = arr->private_data;
    if (priv != NULL) {
        mg_block_decref(priv->block);
        free(priv);
    }
    arr->private_data = NULL;
    arr->release = NULL;
}

/* ---- Python glue ---- */

static void
schema_capsule_destructor(PyObject *cap)
{
    struct ArrowSchema *s = PyCapsule_GetPointer(cap, "arrow_schema");
    if (s == NULL) {
        PyErr_Clear();
        return;
    }
    if (s->release != NULL) {
        s->release(s);
    }
    free(s);
}

static void
array_capsule_destructor(PyObject *cap)
{
    struct ArrowArray *arr = PyCapsule_GetPointer(cap, "arrow_array");
    if (arr == NULL) {
        PyErr_Clear();
        return;
    }
    if (arr->release != NULL) {
        arr->release(arr);
    }
    free(arr);
}

static PyObject *
schema_capsule(MgSharedArrayObject *a)
{
    struct ArrowSchema *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return PyErr_NoMemory();
    }
    s->format = a->dtype->arrow;
    s->name = "";
    s->release = arrow_schema_release;
    PyObject *cap = PyCapsule_New(s, "arrow_schema",
                                  schema_capsule_destructor);
    if (cap == NULL) {
        free(s);
    }
    return cap;
}

PyObject *
mg_arrow_meth_schema(PyObject *self, PyObject *unused)
{
    (void)unused;
    return schema_capsule((MgSharedArrayObject *)self);
}

/* The block and data pointer to export: the array's own memory when it is
 * contiguous, else a contiguous copy (booleans: a bit-packed copy). Returns
 * a new block reference. */
static mg_block *
arrow_data(MgSharedArrayObject *a, const void **data)
{
    if (a->dtype->kind != MG_KIND_BOOL && mg_shared_is_contiguous(a)) {
        mg_block_incref(a->block);
        *data = a->base;
        return a->block;
    }
    size_t isz = a->dtype->itemsize;
    size_t nbytes = a->dtype->kind == MG_KIND_BOOL
                        ? ((size_t)a->length + 7) / 8
                        : (size_t)a->length * isz;
    mg_block *b = mg_block_new(nbytes);
    if (b == NULL) {
        return NULL;
    }
    if (a->dtype->kind == MG_KIND_BOOL) {
        unsigned char *bits = b->data;
        for (Py_ssize_t i = 0; i < a->length; i++) {
            if (*(const uint8_t *)mg_shared_item(a, i)) {
                bits[i / 8] |= (unsigned char)(1u << (i % 8));
            }
        }
    }
    else {
        mg_view dst = {b->data, a->length, (ptrdiff_t)isz, a->dtype};
        mg_view src = mg_view_of(a);
        (void)mg_kern_copy(&dst, &src); /* a fresh block never overlaps */
    }
    *data = b->data;
    return b;
}

static PyObject *
array_capsule(MgSharedArrayObject *a)
{
    struct ArrowArray *arr = calloc(1, sizeof(*arr));
    arrow_private *priv = calloc(1, sizeof(*priv));
    const void *data = NULL;
    mg_block *block = NULL;
    if (arr == NULL || priv == NULL
        || (block = arrow_data(a, &data)) == NULL) {
        free(arr);
        free(priv);
        return PyErr_NoMemory();
    }
    priv->block = block;
    priv->buffers[0] = NULL; /* no validity bitmap: no nulls */
    priv->buffers[1] = data;
    arr->length = a->length;
    arr->n_buffers = 2;
    arr->buffers = priv->buffers;
    arr->private_data = priv;
    arr->release = arrow_array_release;
    PyObject *cap = PyCapsule_New(arr, "arrow_array",
                                  array_capsule_destructor);
    if (cap == NULL) {
        arrow_array_release(arr);
        free(arr);
    }
    return cap;
}

PyObject *
mg_arrow_meth_array(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"requested_schema", NULL};
    PyObject *requested = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:__arrow_c_array__",
                                     kwlist, &requested)) {
        return NULL;
    }
    /* requested_schema is a best-effort hint in the PyCapsule interface;
     * we always export our own type. */
    PyObject *schema = schema_capsule((MgSharedArrayObject *)self);
    if (schema == NULL) {
        return NULL;
    }
    PyObject *array = array_capsule((MgSharedArrayObject *)self);
    if (array == NULL) {
        Py_DECREF(schema);
        return NULL;
    }
    PyObject *res = PyTuple_Pack(2, schema, array);
    Py_DECREF(schema);
    Py_DECREF(array);
    return res;
}
