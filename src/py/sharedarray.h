/* sharedarray.h - the SharedArray object layout and the calls between
 * the files of the SharedArray layer: sharedarray.c (the type), items.c
 * (item conversion), shared.c (the codec's handles), kernels.c (the
 * kernels' Python face), arrow.c (Arrow export), sharedtest.c (hooks).
 *
 * An MgSharedArrayObject belongs to one interpreter. It never crosses: the
 * codec sends its mg_block plus an mg_shared_desc (shared.h) and the other
 * side builds its own object with mg_shared_from_desc.
 */
#ifndef MG_SHAREDARRAY_H
#define MG_SHAREDARRAY_H

#include "core.h"
#include "block.h"
#include "dtype.h"
#include "kern.h"

typedef struct MgSharedArrayObject {
    PyObject_HEAD
    mg_block *block;       /* shared and refcounted: one reference */
    char *base;            /* borrowed from block->data: address of item 0 */
    Py_ssize_t length;     /* number of items */
    Py_ssize_t stride;     /* bytes between items; may be negative */
    const mg_dtype *dtype; /* static table entry (dtype.c) */
    Py_ssize_t shape[1];   /* for the buffer protocol: {length} */
    Py_ssize_t strides[1]; /* for the buffer protocol: {stride} */
    PyObject *weakreflist;
} MgSharedArrayObject;

/* The memory of a, for the loops of kern.h. */
static inline mg_view
mg_view_of(const MgSharedArrayObject *a)
{
    mg_view v = {a->base, a->length, a->stride, a->dtype};
    return v;
}

/* Address of item i; the caller keeps i in range. */
static inline char *
mg_shared_item(const MgSharedArrayObject *a, Py_ssize_t i)
{
    return a->base + i * a->stride;
}

static inline int
mg_shared_is_contiguous(const MgSharedArrayObject *a)
{
    return a->length <= 1 || a->stride == (Py_ssize_t)a->dtype->itemsize;
}

static inline int
mg_shared_is_frozen(const MgSharedArrayObject *a)
{
    return mg_block_is_frozen(a->block);
}

/* The SharedArray in obj, or NULL with TypeError naming what (e.g.
 * "sum() argument"). */
MgSharedArrayObject *mg_shared_arg(mg_state *st, PyObject *obj,
                                   const char *what);
/* 0 if a may be written, else -1 with TypeError "SharedArray is read-only". */
int mg_shared_check_writable(MgSharedArrayObject *a);
/* Convert obj to one item of dtype at out (itemsize bytes). -1 with
 * TypeError (wrong type) or OverflowError (does not fit). */
int mg_shared_pack(const mg_dtype *dt, PyObject *obj, void *out);
/* The Python value of the item at p. */
PyObject *mg_shared_unpack(const mg_dtype *dt, const void *p);
/* TypeError for a dtype that the item rules or a kernel (what, e.g.
 * "sum()") do not handle: never run another dtype's code. Returns NULL. */
PyObject *mg_shared_dtype_error(const mg_dtype *dt, const char *what);
/* A new, zero-filled, contiguous array of the current interpreter. */
PyObject *mg_shared_new(mg_state *st, const mg_dtype *dt, Py_ssize_t length);
/* A new array of the current interpreter over length items of dt at base
 * inside block (taking its own block reference); the caller checked that
 * they fit. */
PyObject *mg_shared_wrap(mg_state *st, mg_block *block, char *base,
                         Py_ssize_t length, Py_ssize_t stride,
                         const mg_dtype *dt);
/* Freeze block, or -1 with BufferError while writable buffer exports of it
 * exist (they could still write to the frozen memory). */
int mg_shared_freeze_block(mg_block *block);

/* Registers the process hooks of sharedproc.c; -1 with an exception. */
int mg_sharedproc_module_add(PyObject *mod, mg_state *st);
/* Registers the test hooks of sharedtest.c; -1 with an exception. */
int mg_sharedtest_module_add(PyObject *mod, mg_state *st);

#endif
