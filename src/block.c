/* block.c - process-global refcounted memory blocks (see block.h).
 *
 * Never calls the Python C API that needs a thread state: a block may be
 * released by any thread, with or without an interpreter attached.
 */
#include "core.h"
#include "block.h"

#include <stdlib.h>
#include <string.h>

static atomic_size_t live_blocks;

mg_block *
mg_block_new(size_t nbytes)
{
    mg_block *b = malloc(sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    void *data = NULL;
    /* Round up so that aligned_alloc gets a multiple of the alignment, and
     * allocate at least one line so an empty array has a valid pointer. */
    size_t alloc = (nbytes + 63) & ~(size_t)63;
    if (alloc < nbytes) {
        free(b);
        return NULL;
    }
    if (alloc == 0) {
        alloc = 64;
    }
    if (posix_memalign(&data, 64, alloc) != 0) {
        free(b);
        return NULL;
    }
    memset(data, 0, alloc);
    atomic_init(&b->refcnt, 1);
    atomic_init(&b->frozen, 0);
    b->nbytes = nbytes;
    b->data = data;
    atomic_fetch_add(&live_blocks, 1);
    return b;
}

void
mg_block_incref(mg_block *b)
{
    atomic_fetch_add_explicit(&b->refcnt, 1, memory_order_relaxed);
}

void
mg_block_decref(mg_block *b)
{
    if (atomic_fetch_sub_explicit(&b->refcnt, 1, memory_order_acq_rel) == 1) {
        free(b->data);
        free(b);
        atomic_fetch_sub(&live_blocks, 1);
    }
}

size_t
mg_block_live_count(void)
{
    return atomic_load(&live_blocks);
}
