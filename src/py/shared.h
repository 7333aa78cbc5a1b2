/* shared.h - what the codec needs to move a SharedArray between
 * interpreters as a handle (a block reference plus a view description),
 * never as a copy of its data. */
#ifndef MG_SHARED_H
#define MG_SHARED_H

#include "core.h"
#include "block.h"

typedef struct mg_shared_desc {
    mg_block *block;     /* borrowed from the array being described */
    char dtype;          /* struct-module code: ? b h i q B H I Q f d */
    Py_ssize_t offset;   /* bytes from block->data to item 0 */
    Py_ssize_t length;   /* number of items */
    Py_ssize_t stride;   /* bytes between items (may be negative) */
    int readonly;
} mg_shared_desc;

/* 1 if obj is a SharedArray of this interpreter, else 0. */
int mg_shared_check(mg_state *st, PyObject *obj);
/* Fills desc for a SharedArray (desc->block borrowed from obj). -1 with an
 * exception set if obj is not one. */
int mg_shared_describe(mg_state *st, PyObject *obj, mg_shared_desc *desc);
/* A new SharedArray of the current interpreter over desc->block (it takes
 * its own block reference). The description is untrusted: a dtype, offset,
 * length or stride that does not fit the block raises ValueError; a
 * readonly one freezes the block (BufferError while writable exports of
 * it exist). */
PyObject *mg_shared_from_desc(mg_state *st, const mg_shared_desc *desc);

/* Registers SharedArray as a handle type of the codec (handles.h). */
int mg_shared_handles_register(mg_state *st);

#endif
