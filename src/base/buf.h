/* buf.h - mg_buf, the message that crosses interpreters.
 *
 * A growable byte buffer plus the handles (handle.h: blocks, and any other
 * kind) the bytes refer to by index. It is plain C (raw malloc), so it may
 * be filled in one interpreter, handed to a worker thread and read in
 * another interpreter. It owns one reference to every handle in
 * handles[]; mg_buf_release drops them.
 */
#ifndef MG_BUF_H
#define MG_BUF_H

#include <stddef.h>
#include "block.h"
#include "handle.h"

typedef struct mg_buf {
    unsigned char *data; /* owned */
    size_t len;
    size_t cap;
    mg_handle **handles; /* owned array of owned references */
    size_t nhandles;
    size_t handles_cap;
} mg_buf;

#define MG_BUF_INIT {NULL, 0, 0, NULL, 0, 0}

void mg_buf_init(mg_buf *b);
/* Make room for extra more bytes; 0 or MG_ENOMEM. */
int mg_buf_reserve(mg_buf *b, size_t extra);
int mg_buf_append(mg_buf *b, const void *p, size_t n);
/* Append a handle reference (the buffer takes a new reference); returns
 * its index in handles[] through *index. 0 or MG_ENOMEM. */
int mg_buf_add_handle(mg_buf *b, mg_handle *h, size_t *index);
/* mg_buf_add_handle for a block. */
int mg_buf_add_block(mg_buf *b, mg_block *blk, size_t *index);
/* Free everything and reset to empty. */
void mg_buf_release(mg_buf *b);
/* Move src into dst (dst must be empty); src becomes empty. */
void mg_buf_move(mg_buf *dst, mg_buf *src);

#endif
