/* shared.c - the handle interface the codec uses to move a SharedArray
 * between interpreters (shared.h): check, describe (block, dtype code,
 * offset, length, stride, read-only) and rebuild from an untrusted
 * description, validated against the block before any object is made.
 *
 * Also registers SharedArray as a handle type (handles.h): the codec sends
 * it as its block plus these view fields, knowing nothing else of it.
 * No locks, no state. Never trusts a description: every item must lie
 * inside the block, with no arithmetic overflow, before it is wrapped.
 */
#include "shared.h"
#include "handles.h"
#include "sharedarray.h"

#include <string.h>

/* ---- C core (no Python API) ---- */

/* 0 if length items of size itemsize, stride bytes apart, starting offset
 * bytes into a block of nbytes stay inside it; -1 otherwise. */
static int
view_fits(size_t nbytes, Py_ssize_t offset, Py_ssize_t length,
          Py_ssize_t stride, size_t itemsize)
{
    if (offset < 0 || length < 0 || (size_t)offset > nbytes) {
        return -1;
    }
    if (length == 0) {
        return 0;
    }
    Py_ssize_t span, last;
    if (__builtin_mul_overflow(length - 1, stride, &span)
        || __builtin_add_overflow(offset, span, &last)) {
        return -1;
    }
    Py_ssize_t lo = span < 0 ? last : offset;
    Py_ssize_t hi = span < 0 ? offset : last;
    if (lo < 0 || (size_t)hi > nbytes || nbytes - (size_t)hi < itemsize) {
        return -1;
    }
    return 0;
}

/* ---- Python glue ---- */

int
mg_shared_check(mg_state *st, PyObject *obj)
{
    return st->SharedArrayType != NULL
           && PyObject_TypeCheck(obj, st->SharedArrayType);
}

int
mg_shared_describe(mg_state *st, PyObject *obj, mg_shared_desc *desc)
{
    if (!mg_shared_check(st, obj)) {
        PyErr_Format(PyExc_TypeError, "%.200s is not a SharedArray",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    MgSharedArrayObject *a = (MgSharedArrayObject *)obj;
    desc->block = a->block;
    desc->dtype = a->dtype->code;
    desc->offset = a->base - (char *)a->block->data;
    desc->length = a->length;
    desc->stride = a->stride;
    desc->readonly = mg_shared_is_frozen(a);
    return 0;
}

PyObject *
mg_shared_from_desc(mg_state *st, const mg_shared_desc *desc)
{
    const mg_dtype *dt = mg_dtype_from_code(desc->dtype);
    if (desc->block == NULL || dt == NULL) {
        return PyErr_Format(PyExc_ValueError,
                            "invalid SharedArray handle: %s",
                            desc->block ? "unknown dtype code" : "no block");
    }
    Py_ssize_t isz = (Py_ssize_t)dt->itemsize;
    if (desc->offset % isz != 0 || desc->stride % isz != 0
        || (desc->length > 1 && desc->stride == 0)
        || view_fits(desc->block->nbytes, desc->offset, desc->length,
                     desc->stride, dt->itemsize) < 0) {
        return PyErr_Format(PyExc_ValueError,
                            "invalid SharedArray handle: offset %zd, length "
                            "%zd, stride %zd of '%s' items do not fit a "
                            "block of %zu bytes", desc->offset, desc->length,
                            desc->stride, dt->name, desc->block->nbytes);
    }
    if (desc->readonly && mg_shared_freeze_block(desc->block) < 0) {
        return NULL;
    }
    char *base = (char *)desc->block->data + desc->offset;
    return mg_shared_wrap(st, desc->block, base, desc->length, desc->stride, dt);
}

/* ---- SharedArray as a handle (handles.h) ----
 * The handle is the block; the metadata its view: dtype code (1 byte),
 * offset, length, stride (int64 each), readonly (1 byte). */

#define SHARED_META_LEN 26

static int
shared_handle_check(mg_state *st, PyObject *obj)
{
    return mg_shared_check(st, obj);
}

static int
shared_handle_export(mg_state *st, PyObject *obj, mg_handle **h,
                     unsigned char *meta, size_t *meta_len)
{
    mg_shared_desc desc;
    if (mg_shared_describe(st, obj, &desc) < 0) {
        return -1;
    }
    int64_t f[3] = {desc.offset, desc.length, desc.stride};
    meta[0] = (unsigned char)desc.dtype;
    memcpy(meta + 1, f, sizeof(f));
    meta[25] = desc.readonly ? 1 : 0;
    *meta_len = SHARED_META_LEN;
    *h = &desc.block->h;
    return 0;
}

static PyObject *
shared_handle_wrap(mg_state *st, mg_handle *h, const unsigned char *meta,
                   size_t meta_len)
{
    mg_shared_desc desc;
    int64_t f[3];
    desc.block = mg_block_from_handle(h);
    if (desc.block == NULL || meta_len != SHARED_META_LEN) {
        return PyErr_Format(PyExc_ValueError,
                            "invalid SharedArray handle: %zu bytes of view "
                            "metadata, expected %d",
                            meta_len, SHARED_META_LEN);
    }
    memcpy(f, meta + 1, sizeof(f));
    desc.dtype = (char)meta[0];
    desc.offset = (Py_ssize_t)f[0];
    desc.length = (Py_ssize_t)f[1];
    desc.stride = (Py_ssize_t)f[2];
    desc.readonly = meta[25] != 0;
    return mg_shared_from_desc(st, &desc);
}

static const mg_handle_type shared_handle_type = {
    &mg_block_kind, shared_handle_check, shared_handle_export,
    shared_handle_wrap};

int
mg_shared_handles_register(mg_state *st)
{
    return mg_handles_register(st, &shared_handle_type);
}
