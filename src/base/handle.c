/* handle.c - the handle protocol's reference counting (see handle.h).
 *
 * Owns: mg_handle_init/incref/decref/refcnt. No locks: the count is one
 * atomic word; the decref that takes it to zero calls the kind's destroy,
 * exactly once, on whatever thread it runs. Never calls the Python C API.
 */
#include "base.h"
#include "handle.h"

void
mg_handle_init(mg_handle *h, const mg_handle_kind *kind)
{
    atomic_init(&h->refcnt, 1);
    h->kind = kind;
}

void
mg_handle_incref(mg_handle *h)
{
    atomic_fetch_add_explicit(&h->refcnt, 1, memory_order_relaxed);
}

void
mg_handle_decref(mg_handle *h)
{
    if (h == NULL) {
        return;
    }
    /* acq_rel: every write made through other references happens before
     * the destroy that follows the last one. */
    if (atomic_fetch_sub_explicit(&h->refcnt, 1, memory_order_acq_rel) == 1) {
        h->kind->destroy(h);
    }
}

size_t
mg_handle_refcnt(const mg_handle *h)
{
    return atomic_load_explicit(&((mg_handle *)h)->refcnt,
                                memory_order_acquire);
}
