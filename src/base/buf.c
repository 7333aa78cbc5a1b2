/* buf.c - mg_buf, the plain-C message between interpreters (see buf.h).
 *
 * Locks: none (a buffer has one owner at a time; handles it references
 * are refcounted atomically).
 * Never calls the Python C API that needs a thread state.
 */
#include "base.h"
#include "buf.h"

#include <string.h>

void
mg_buf_init(mg_buf *b)
{
    memset(b, 0, sizeof(*b));
}

int
mg_buf_reserve(mg_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) {
        return MG_OK;
    }
    size_t need = b->len + extra;
    if (need < b->len) {
        return MG_ENOMEM;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        size_t next = cap * 2;
        if (next < cap) {
            next = need;
        }
        cap = next;
    }
    unsigned char *p = MG_RAW_REALLOC(b->data, cap);
    if (p == NULL) {
        return MG_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return MG_OK;
}

int
mg_buf_append(mg_buf *b, const void *p, size_t n)
{
    if (mg_buf_reserve(b, n) != MG_OK) {
        return MG_ENOMEM;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return MG_OK;
}

int
mg_buf_add_handle(mg_buf *b, mg_handle *h, size_t *index)
{
    if (b->nhandles == b->handles_cap) {
        size_t cap = b->handles_cap ? b->handles_cap * 2 : 4;
        mg_handle **p = MG_RAW_REALLOC(b->handles, cap * sizeof(*p));
        if (p == NULL) {
            return MG_ENOMEM;
        }
        b->handles = p;
        b->handles_cap = cap;
    }
    mg_handle_incref(h);
    *index = b->nhandles;
    b->handles[b->nhandles++] = h;
    return MG_OK;
}

int
mg_buf_add_block(mg_buf *b, mg_block *blk, size_t *index)
{
    return mg_buf_add_handle(b, &blk->h, index);
}

void
mg_buf_release(mg_buf *b)
{
    for (size_t i = 0; i < b->nhandles; i++) {
        mg_handle_decref(b->handles[i]);
    }
    MG_RAW_FREE(b->handles);
    MG_RAW_FREE(b->data);
    mg_buf_init(b);
}

void
mg_buf_move(mg_buf *dst, mg_buf *src)
{
    *dst = *src;
    mg_buf_init(src);
}
