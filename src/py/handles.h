/* handles.h - the Python side of the handle protocol (handle.h): which
 * Python objects of this interpreter stand for a handle, and how to turn
 * one into the other.
 *
 * A kind registers one mg_handle_type per interpreter (at module init,
 * static const C data, no PyObject). The codec then sends any registered
 * object as one generic record (TAG_HANDLE: kind id, handle index in the
 * mg_buf, a few bytes of view metadata) and the pickler's persistent_id
 * uses the same table: the codec knows the protocol, not each type.
 */
#ifndef MG_HANDLES_H
#define MG_HANDLES_H

#include "core.h"
#include "buf.h"
#include "handle.h"

/* Most bytes of metadata one handle object carries (its view). */
#define MG_HANDLE_META_MAX 64

typedef struct mg_handle_type {
    const mg_handle_kind *kind;
    /* 1 if obj is an object of this kind in this interpreter, else 0. */
    int (*check)(mg_state *st, PyObject *obj);
    /* The handle behind obj (borrowed: the caller takes its own reference)
     * and up to MG_HANDLE_META_MAX bytes of metadata into meta, their
     * number into *meta_len. -1 with an exception. */
    int (*export_)(mg_state *st, PyObject *obj, mg_handle **h,
                   unsigned char *meta, size_t *meta_len);
    /* A new object of the current interpreter over h (of this kind; it
     * takes its own reference). meta is untrusted: NULL with ValueError
     * when it does not describe a valid view of h. */
    PyObject *(*wrap)(mg_state *st, mg_handle *h, const unsigned char *meta,
                      size_t meta_len);
} mg_handle_type;

/* Registers t in this interpreter's table; -1 with an exception (table
 * full, or its kind id taken). */
int mg_handles_register(mg_state *st, const mg_handle_type *t);
/* The registered type obj belongs to, or NULL (no exception). */
const mg_handle_type *mg_handles_of(mg_state *st, PyObject *obj);
/* The registered type of kind id, or NULL. */
const mg_handle_type *mg_handles_kind(mg_state *st, uint32_t id);
/* Adds obj's handle to out: its kind id, its index in out->handles and
 * its metadata. -1 with an exception. */
int mg_handles_export(mg_state *st, const mg_handle_type *t, PyObject *obj,
                      mg_buf *out, size_t *index, unsigned char *meta,
                      size_t *meta_len);
/* The object for handle index of in, checked to be of kind id: NULL with
 * ValueError on an unknown kind, an index out of range, a kind mismatch
 * or bad metadata. */
PyObject *mg_handles_wrap(mg_state *st, const mg_buf *in, uint64_t id,
                          uint64_t index, const unsigned char *meta,
                          size_t meta_len);

#endif /* MG_HANDLES_H */
