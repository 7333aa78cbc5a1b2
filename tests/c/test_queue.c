/* test_queue.c - the item FIFO (src/base/queue.c): order, bounds and
 * timeouts, batches, close semantics, and many producers and consumers
 * moving numbered items exactly once, also when closed mid-stream. */
#include "ctest.h"
#include "base.h"
#include "queue.h"

#include <pthread.h>
#include <string.h>

static mg_qitem *
item_of(long v)
{
    mg_qitem *it = mg_qitem_new();
    if (it != NULL && mg_buf_append(&it->buf, &v, sizeof(v)) != MG_OK) {
        mg_qitem_free_chain(it);
        return NULL;
    }
    return it;
}

static long
value_of(const mg_qitem *it)
{
    long v;
    memcpy(&v, it->buf.data, sizeof(v));
    return v;
}

static int
put_one(mg_queue *q, long v, int64_t deadline)
{
    mg_qitem *it = item_of(v);
    size_t n = 1;
    int rc;
    do {
        rc = mg_queue_put(q, &it, &n, deadline, 0, 1);
    } while (rc == MG_EINTR);
    mg_qitem_free_chain(it);
    return rc;
}

static int
get_one(mg_queue *q, long *v, int64_t deadline)
{
    mg_qitem *it;
    size_t got;
    int rc;
    do {
        rc = mg_queue_get(q, 1, &it, &got, deadline, 0, 1);
    } while (rc == MG_EINTR);
    if (rc == MG_OK) {
        *v = value_of(it);
        mg_qitem_free_chain(it);
    }
    return rc;
}

CTEST(queue_fifo_close_drains_then_reports_closed)
{
    mg_queue *q = mg_queue_new(0);
    CHECK(q != NULL);
    for (long i = 0; i < 5; i++) {
        CHECK(put_one(q, i, -1) == MG_OK);
    }
    CHECK(mg_queue_size(q) == 5);
    long v = -1;
    CHECK(get_one(q, &v, -1) == MG_OK && v == 0);
    mg_queue_close(q);
    CHECK(put_one(q, 99, -1) == MG_ECLOSED);
    for (long i = 1; i < 5; i++) {
        CHECK(get_one(q, &v, -1) == MG_OK && v == i);
    }
    CHECK(get_one(q, &v, -1) == MG_ECLOSED);
    CHECK(get_one(q, &v, 0) == MG_ECLOSED);
    mg_queue_decref(q); /* frees nothing queued: all taken */
}

CTEST(queue_destroy_frees_queued_items)
{
    mg_queue *q = mg_queue_new(0);
    CHECK(q != NULL);
    for (long i = 0; i < 10; i++) {
        CHECK(put_one(q, i, -1) == MG_OK);
    }
    mg_queue_decref(q); /* ASan/valgrind see a leak if items stay */
}

CTEST(queue_bounded_timeouts_and_batches)
{
    mg_queue *q = mg_queue_new(3);
    CHECK(q != NULL);
    /* A batch of 5 into room for 3: 3 go in, 2 come back on timeout. */
    mg_qitem *chain = NULL, **tail = &chain;
    for (long i = 0; i < 5; i++) {
        *tail = item_of(i);
        CHECK(*tail != NULL);
        tail = &(*tail)->next;
    }
    size_t n = 5;
    int64_t t0 = mg_monotonic_ns();
    int rc = mg_queue_put(q, &chain, &n, t0 + 20 * 1000 * 1000, 0, 1);
    int64_t waited = mg_monotonic_ns() - t0;
    CHECK(rc == MG_ETIMEDOUT && n == 2 && chain != NULL);
    CHECK(value_of(chain) == 3);
    CHECK(waited >= 20 * 1000 * 1000);
    mg_qitem_free_chain(chain);
    CHECK(put_one(q, 7, 0) == MG_ETIMEDOUT); /* non-blocking: full */
    /* get_many takes up to max in order. */
    mg_qitem *out;
    size_t got;
    CHECK(mg_queue_get(q, 10, &out, &got, 0, 0, 0) == MG_OK && got == 3);
    long expect = 0;
    for (mg_qitem *it = out; it != NULL; it = it->next) {
        CHECK(value_of(it) == expect++);
    }
    mg_qitem_free_chain(out);
    long v;
    t0 = mg_monotonic_ns();
    CHECK(get_one(q, &v, t0 + 10 * 1000 * 1000) == MG_ETIMEDOUT);
    CHECK(mg_monotonic_ns() - t0 >= 10 * 1000 * 1000);
    /* The interruptible form gives control back after each slice. */
    CHECK(mg_queue_get(q, 1, &out, &got, -1, 5 * 1000 * 1000, 1)
          == MG_EINTR && got == 0);
    mg_queue_decref(q);
}

/* ---- many producers and consumers ---- */

typedef struct mpmc {
    mg_queue *q;
    long per_producer;
    int batch;
    int nproducers;
    atomic_int next_producer;
    atomic_long put_count, put_sum; /* what producers really put */
    atomic_long got_count, got_sum;
    atomic_int close_at;            /* close after this many puts (0: no) */
    atomic_int seen[1];             /* flexible: per item, times seen */
} mpmc;

static void *
producer(void *arg)
{
    mpmc *m = arg;
    long p = atomic_fetch_add(&m->next_producer, 1);
    long base = p * m->per_producer;
    for (long i = 0; i < m->per_producer;) {
        mg_qitem *chain = NULL, **tail = &chain;
        size_t n = 0;
        for (int b = 0; b < m->batch && i + n < (size_t)m->per_producer; b++) {
            *tail = item_of(base + i + (long)n);
            TCHECK(*tail != NULL);
            tail = &(*tail)->next;
            n++;
        }
        size_t want = n;
        int rc;
        do {
            rc = mg_queue_put(m->q, &chain, &n, -1, 0, 1);
        } while (rc == MG_EINTR);
        size_t put = want - n;
        for (size_t k = 0; k < put; k++) {
            atomic_fetch_add(&m->put_sum, base + i + (long)k);
        }
        long total = atomic_fetch_add(&m->put_count, (long)put) + (long)put;
        mg_qitem_free_chain(chain);
        if (rc == MG_ECLOSED) {
            return NULL;
        }
        TCHECK(rc == MG_OK);
        i += (long)put;
        int at = atomic_load(&m->close_at);
        if (at > 0 && total >= at) {
            mg_queue_close(m->q);
        }
    }
    return NULL;
}

static void *
consumer(void *arg)
{
    mpmc *m = arg;
    for (;;) {
        mg_qitem *out;
        size_t got;
        int rc = mg_queue_get(m->q, (size_t)m->batch, &out, &got, -1, 0, 1);
        if (rc == MG_EINTR) {
            continue;
        }
        if (rc == MG_ECLOSED) {
            return NULL;
        }
        TCHECK(rc == MG_OK && got >= 1);
        for (mg_qitem *it = out; it != NULL; it = it->next) {
            long v = value_of(it);
            atomic_fetch_add(&m->seen[v], 1);
            atomic_fetch_add(&m->got_sum, v);
            atomic_fetch_add(&m->got_count, 1);
        }
        mg_qitem_free_chain(out);
    }
}

static void
run_mpmc(size_t maxsize, int batch, long per, int close_at)
{
    enum { NP = 4, NC = 4 };
    long total = per * NP;
    mpmc *m = calloc(1, sizeof(*m) + sizeof(atomic_int) * (size_t)total);
    CHECK(m != NULL);
    m->q = mg_queue_new(maxsize);
    CHECK(m->q != NULL);
    m->per_producer = per;
    m->batch = batch;
    atomic_store(&m->close_at, close_at);
    pthread_t pt[NP], ct[NC];
    for (int i = 0; i < NC; i++) {
        pthread_create(&ct[i], NULL, consumer, m);
    }
    for (int i = 0; i < NP; i++) {
        pthread_create(&pt[i], NULL, producer, m);
    }
    for (int i = 0; i < NP; i++) {
        pthread_join(pt[i], NULL);
    }
    mg_queue_close(m->q); /* ends the consumers once drained */
    for (int i = 0; i < NC; i++) {
        pthread_join(ct[i], NULL);
    }
    /* Exactly once: what was put arrived, once each, nothing else. */
    CHECK(atomic_load(&m->got_count) == atomic_load(&m->put_count));
    CHECK(atomic_load(&m->got_sum) == atomic_load(&m->put_sum));
    for (long v = 0; v < total; v++) {
        CHECK(atomic_load(&m->seen[v]) <= 1);
    }
    if (close_at == 0) {
        CHECK(atomic_load(&m->put_count) == total);
    }
    else {
        CHECK(atomic_load(&m->put_count) >= close_at);
    }
    CHECK(mg_queue_size(m->q) == 0);
    mg_queue_decref(m->q);
    free(m);
}

CTEST(queue_mpmc_unbounded_exactly_once)
{
    run_mpmc(0, 1, CT_ITERS(20000), 0);
}

CTEST(queue_mpmc_bounded_batches_exactly_once)
{
    run_mpmc(8, 5, CT_ITERS(20000), 0);
}

CTEST(queue_mpmc_close_mid_stream_delivers_what_was_put)
{
    run_mpmc(16, 3, CT_ITERS(20000), (int)CT_ITERS(20000));
}

CTEST(queue_wait_ready_takes_nothing)
{
    mg_queue *q = mg_queue_new(1);
    CHECK(q != NULL);
    CHECK(mg_queue_wait_ready(q, 0, 0, 0) == MG_ETIMEDOUT);
    CHECK(mg_queue_wait_ready(q, 1, 0, 0) == MG_OK);
    CHECK(put_one(q, 5, -1) == MG_OK);
    CHECK(mg_queue_wait_ready(q, 0, -1, 0) == MG_OK);
    CHECK(mg_queue_wait_ready(q, 1, 0, 0) == MG_ETIMEDOUT);
    CHECK(mg_queue_size(q) == 1);
    mg_queue_close(q);
    CHECK(mg_queue_wait_ready(q, 1, -1, 0) == MG_OK);
    mg_queue_decref(q);
}
