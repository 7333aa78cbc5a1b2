/* test_block.c - refcounted blocks and buffers (src/base/block.c, buf.c)
 * shared by many threads: the last reference frees, exactly once. */
#include "ctest.h"
#include "base.h"
#include "block.h"
#include "buf.h"

#include <pthread.h>
#include <string.h>

typedef struct {
    mg_block *b;
    int n;
} churn;

static void *
incref_decref(void *arg)
{
    churn *c = arg;
    for (int i = 0; i < c->n; i++) {
        mg_block_incref(c->b);
        mg_block_decref(c->b);
    }
    return NULL;
}

CTEST(block_refcount_from_many_threads)
{
    enum { N = 8 };
    size_t live = mg_block_live_count();
    mg_block *b = mg_block_new(1000);
    CHECK(b != NULL);
    CHECK(mg_block_live_count() == live + 1);
    unsigned char *d = b->data;
    CHECK(d[0] == 0 && d[999] == 0); /* zero-filled */
    CHECK(((uintptr_t)b->data & 63) == 0);
    churn c = {b, CT_ITERS(100000)};
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        CHECK(pthread_create(&t[i], NULL, incref_decref, &c) == 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(mg_handle_refcnt(&b->h) == 1);
    mg_block_decref(b);
    CHECK(mg_block_live_count() == live);
}

CTEST(block_large_and_empty)
{
    size_t live = mg_block_live_count();
    mg_block *big = mg_block_new((size_t)4 << 20); /* mmap'd */
    mg_block *empty = mg_block_new(0);
    CHECK(big != NULL && empty != NULL);
    CHECK(big->mapped >= ((size_t)4 << 20));
    CHECK(((unsigned char *)big->data)[(4 << 20) - 1] == 0);
    CHECK(empty->data != NULL && empty->nbytes == 0);
    mg_block_decref(big);
    mg_block_decref(empty);
    CHECK(mg_block_live_count() == live);
    CHECK(mg_block_new(SIZE_MAX) == NULL);
    CHECK(mg_block_live_count() == live);
}

/* A buffer filled on one thread and released on another, while the
 * block it refers to is still held elsewhere. */
typedef struct {
    mg_buf buf;
} parcel;

static void *
release_elsewhere(void *arg)
{
    parcel *p = arg;
    TCHECK(p->buf.len == 6 && memcmp(p->buf.data, "hello", 6) == 0);
    mg_buf_release(&p->buf);
    return NULL;
}

CTEST(buf_released_by_another_thread_drops_its_blocks)
{
    enum { N = 16 };
    size_t live = mg_block_live_count();
    mg_block *b = mg_block_new(64);
    CHECK(b != NULL);
    parcel p[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        mg_buf_init(&p[i].buf);
        size_t index = 99;
        CHECK(mg_buf_append(&p[i].buf, "hello", 6) == MG_OK);
        CHECK(mg_buf_add_block(&p[i].buf, b, &index) == MG_OK);
        CHECK(index == 0);
    }
    CHECK(mg_handle_refcnt(&b->h) == N + 1);
    for (int i = 0; i < N; i++) {
        CHECK(pthread_create(&t[i], NULL, release_elsewhere, &p[i]) == 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK(p[i].buf.data == NULL && p[i].buf.nhandles == 0);
    }
    CHECK(mg_handle_refcnt(&b->h) == 1);
    mg_block_decref(b);
    CHECK(mg_block_live_count() == live);
}

CTEST(buf_grows_and_moves)
{
    mg_buf a = MG_BUF_INIT, b = MG_BUF_INIT;
    for (int i = 0; i < 1000; i++) {
        unsigned char c = (unsigned char)i;
        CHECK(mg_buf_append(&a, &c, 1) == MG_OK);
    }
    CHECK(a.len == 1000 && a.cap >= 1000);
    CHECK(mg_buf_reserve(&a, SIZE_MAX) == MG_ENOMEM);
    mg_buf_move(&b, &a);
    CHECK(a.data == NULL && a.len == 0);
    CHECK(b.len == 1000 && b.data[999] == (unsigned char)999);
    mg_buf_release(&b);
    CHECK(b.data == NULL);
}
