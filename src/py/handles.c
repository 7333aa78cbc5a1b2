/* handles.c - this interpreter's table of handle types (handles.h).
 *
 * Owns: registration and lookup of mg_handle_type entries in mg_state,
 * and the checked export/wrap steps the codec and the pickler hooks share.
 * The table holds pointers to static const C data only, written at module
 * init of this interpreter and read by its own threads; no locks. Never
 * touches another interpreter's objects: what crosses is the handle.
 */
#include "handles.h"

int
mg_handles_register(mg_state *st, const mg_handle_type *t)
{
    if (mg_handles_kind(st, t->kind->id) != NULL) {
        PyErr_Format(PyExc_RuntimeError, "handle kind %u (%s) registered "
                     "twice", (unsigned)t->kind->id, t->kind->name);
        return -1;
    }
    if (st->nhandle_types >= MG_HANDLE_TYPES_MAX) {
        PyErr_SetString(PyExc_RuntimeError, "too many handle kinds");
        return -1;
    }
    st->handle_types[st->nhandle_types++] = t;
    return 0;
}

const mg_handle_type *
mg_handles_of(mg_state *st, PyObject *obj)
{
    for (int i = 0; i < st->nhandle_types; i++) {
        if (st->handle_types[i]->check(st, obj)) {
            return st->handle_types[i];
        }
    }
    return NULL;
}

const mg_handle_type *
mg_handles_kind(mg_state *st, uint32_t id)
{
    for (int i = 0; i < st->nhandle_types; i++) {
        if (st->handle_types[i]->kind->id == id) {
            return st->handle_types[i];
        }
    }
    return NULL;
}

int
mg_handles_export(mg_state *st, const mg_handle_type *t, PyObject *obj,
                  mg_buf *out, size_t *index, unsigned char *meta,
                  size_t *meta_len)
{
    mg_handle *h = NULL;
    *meta_len = 0;
    if (t->export_(st, obj, &h, meta, meta_len) < 0) {
        return -1;
    }
    if (h == NULL || h->kind != t->kind || *meta_len > MG_HANDLE_META_MAX) {
        PyErr_Format(PyExc_SystemError, "bad export of a %s handle",
                     t->kind->name);
        return -1;
    }
    if (mg_buf_add_handle(out, h, index) != MG_OK) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

PyObject *
mg_handles_wrap(mg_state *st, const mg_buf *in, uint64_t id, uint64_t index,
                const unsigned char *meta, size_t meta_len)
{
    const mg_handle_type *t = id <= UINT32_MAX
                                  ? mg_handles_kind(st, (uint32_t)id)
                                  : NULL;
    if (t == NULL) {
        return PyErr_Format(PyExc_ValueError, "handle of unknown kind %llu",
                            (unsigned long long)id);
    }
    if (index >= in->nhandles) {
        return PyErr_Format(PyExc_ValueError,
                            "%s handle %llu, but the message carries %zu "
                            "handles", t->kind->name,
                            (unsigned long long)index, in->nhandles);
    }
    mg_handle *h = in->handles[index];
    if (h->kind != t->kind) {
        return PyErr_Format(PyExc_ValueError,
                            "handle %llu is a %s, not a %s",
                            (unsigned long long)index, h->kind->name,
                            t->kind->name);
    }
    if (meta_len > MG_HANDLE_META_MAX) {
        return PyErr_Format(PyExc_ValueError,
                            "%s handle with %zu bytes of metadata",
                            t->kind->name, meta_len);
    }
    return t->wrap(st, h, meta, meta_len);
}
