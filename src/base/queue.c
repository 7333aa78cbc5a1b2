/* queue.c - the item FIFO that interpreters share (queue.h).
 *
 * Owns: mg_queue objects (their handle kind and destroy), the item list,
 * its wait words and spin sites, close, and the unfinished-task count.
 * Locking: q->mu guards the list, the counts and the closed flag; it is
 * the only lock, never held while allocating, waiting or waking, and no
 * function returns with it held. No lost wake-up: a waiter reads its wait
 * word's sequence before it looks at the list under q->mu, and every
 * change it waits for bumps that word after the change (wait.h).
 * Never: call Python, or free an item's buffer under the lock.
 */
#include "base.h"
#include "queue.h"

#include <string.h>

/* Getters spin this long before they sleep (the adaptive policy stops
 * when spins do not pay off). */
#define QUEUE_GET_SPIN_NS ((int64_t)50 * 1000)
#define QUEUE_PUT_SPIN_NS ((int64_t)20 * 1000)

static void queue_destroy(mg_handle *h);

const mg_handle_kind mg_queue_kind = {"queue", MG_HANDLE_KIND_QUEUE,
                                      queue_destroy};

mg_queue *
mg_queue_new(size_t maxsize)
{
    mg_queue *q = MG_RAW_CALLOC(1, sizeof(*q));
    if (q == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        MG_RAW_FREE(q);
        return NULL;
    }
    if (mg_wait_init(&q->not_empty) != MG_OK) {
        goto fail_mu;
    }
    if (mg_wait_init(&q->not_full) != MG_OK) {
        mg_wait_fini(&q->not_empty);
        goto fail_mu;
    }
    if (mg_wait_init(&q->all_done) != MG_OK) {
        mg_wait_fini(&q->not_full);
        mg_wait_fini(&q->not_empty);
        goto fail_mu;
    }
    q->maxsize = maxsize;
    mg_spinner_init(&q->get_spin, QUEUE_GET_SPIN_NS, 2);
    mg_spinner_init(&q->put_spin, QUEUE_PUT_SPIN_NS, 2);
    mg_handle_init(&q->h, &mg_queue_kind);
    return q;
fail_mu:
    pthread_mutex_destroy(&q->mu);
    MG_RAW_FREE(q);
    return NULL;
}

static void
queue_destroy(mg_handle *h)
{
    mg_queue *q = (mg_queue *)h;
    mg_qitem_free_chain(q->head);
    mg_wait_fini(&q->all_done);
    mg_wait_fini(&q->not_full);
    mg_wait_fini(&q->not_empty);
    pthread_mutex_destroy(&q->mu);
    MG_RAW_FREE(q);
}

mg_queue *
mg_queue_from_handle(mg_handle *h)
{
    return h != NULL && h->kind == &mg_queue_kind ? (mg_queue *)h : NULL;
}

mg_qitem *
mg_qitem_new(void)
{
    mg_qitem *it = MG_RAW_MALLOC(sizeof(*it));
    if (it != NULL) {
        it->next = NULL;
        mg_buf_init(&it->buf);
    }
    return it;
}

void
mg_qitem_free_chain(mg_qitem *it)
{
    while (it != NULL) {
        mg_qitem *next = it->next;
        mg_buf_release(&it->buf);
        MG_RAW_FREE(it);
        it = next;
    }
}

/* Appends up to room nodes of *chain; q->mu is held. Returns how many. */
static size_t
queue_append_locked(mg_queue *q, mg_qitem **chain, size_t n, size_t room)
{
    size_t k = n < room ? n : room;
    if (k == 0) {
        return 0;
    }
    mg_qitem *first = *chain, *last = first;
    for (size_t i = 1; i < k; i++) {
        last = last->next;
    }
    *chain = last->next;
    last->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = first;
    }
    else {
        q->head = first;
    }
    q->tail = last;
    q->count += k;
    q->unfinished += k;
    return k;
}

static int
wake_count(size_t k)
{
    return k >= (size_t)MG_WAKE_ALL ? MG_WAKE_ALL : (int)k;
}

/* One attempt at a put under the lock: MG_OK (all put), MG_ECLOSED, or
 * MG_EFULL (some or none put, the rest waits for room). */
static int
queue_put_once(mg_queue *q, mg_qitem **chain, size_t *n)
{
    size_t put = 0;
    int rc;
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        rc = MG_ECLOSED;
    }
    else {
        size_t room = q->maxsize == 0 ? *n
                      : q->count < q->maxsize ? q->maxsize - q->count : 0;
        put = queue_append_locked(q, chain, *n, room);
        *n -= put;
        rc = *n == 0 ? MG_OK : MG_EFULL;
    }
    pthread_mutex_unlock(&q->mu);
    if (put > 0) {
        mg_wait_wake(&q->not_empty, wake_count(put));
    }
    return rc;
}

int
mg_queue_put(mg_queue *q, mg_qitem **chain, size_t *n, int64_t deadline_ns,
             int64_t slice_ns, int spin)
{
    mg_spinner *sp = spin ? &q->put_spin : NULL;
    for (;;) {
        uint32_t seen = mg_wait_seq(&q->not_full);
        int rc = queue_put_once(q, chain, n);
        if (rc != MG_EFULL) {
            return rc;
        }
        rc = mg_wait_until(&q->not_full, seen, deadline_ns, slice_ns, sp);
        sp = NULL;
        if (rc == MG_EINTR) {
            return rc;
        }
        if (rc == MG_ETIMEDOUT) {
            /* One last look: room may have come with the deadline. */
            rc = queue_put_once(q, chain, n);
            return rc == MG_EFULL ? MG_ETIMEDOUT : rc;
        }
    }
}

/* Detaches up to max items from the head; q->mu is held. */
static size_t
queue_take_locked(mg_queue *q, size_t max, mg_qitem **out)
{
    size_t k = q->count < max ? q->count : max;
    if (k == 0) {
        *out = NULL;
        return 0;
    }
    mg_qitem *first = q->head, *last = first;
    for (size_t i = 1; i < k; i++) {
        last = last->next;
    }
    q->head = last->next;
    if (q->head == NULL) {
        q->tail = NULL;
    }
    last->next = NULL;
    q->count -= k;
    *out = first;
    return k;
}

/* One attempt at a get: MG_OK (took some), MG_ECLOSED, or MG_EEMPTY. */
static int
queue_get_once(mg_queue *q, size_t max, mg_qitem **out, size_t *got)
{
    pthread_mutex_lock(&q->mu);
    *got = queue_take_locked(q, max, out);
    int closed = q->closed;
    pthread_mutex_unlock(&q->mu);
    if (*got > 0) {
        if (q->maxsize != 0) {
            mg_wait_wake(&q->not_full, wake_count(*got));
        }
        return MG_OK;
    }
    return closed ? MG_ECLOSED : MG_EEMPTY;
}

int
mg_queue_get(mg_queue *q, size_t max, mg_qitem **out, size_t *got,
             int64_t deadline_ns, int64_t slice_ns, int spin)
{
    mg_spinner *sp = spin ? &q->get_spin : NULL;
    *out = NULL;
    *got = 0;
    if (max == 0) {
        max = 1;
    }
    for (;;) {
        uint32_t seen = mg_wait_seq(&q->not_empty);
        int rc = queue_get_once(q, max, out, got);
        if (rc != MG_EEMPTY) {
            return rc;
        }
        rc = mg_wait_until(&q->not_empty, seen, deadline_ns, slice_ns, sp);
        sp = NULL;
        if (rc == MG_EINTR) {
            return rc;
        }
        if (rc == MG_ETIMEDOUT) {
            rc = queue_get_once(q, max, out, got);
            return rc == MG_EEMPTY ? MG_ETIMEDOUT : rc;
        }
    }
}

static int
queue_ready(mg_queue *q, int for_put)
{
    pthread_mutex_lock(&q->mu);
    int ready = q->closed
                || (for_put ? q->maxsize == 0 || q->count < q->maxsize
                            : q->count > 0);
    pthread_mutex_unlock(&q->mu);
    return ready;
}

/* Waits on w until ready(q, arg): MG_OK (also when it holds at the
 * deadline), MG_ETIMEDOUT, MG_EINTR. */
static int
queue_wait_for(mg_queue *q, mg_wait *w, int (*ready)(mg_queue *, int),
               int arg, int64_t deadline_ns, int64_t slice_ns)
{
    for (;;) {
        uint32_t seen = mg_wait_seq(w);
        if (ready(q, arg)) {
            return MG_OK;
        }
        int rc = mg_wait_until(w, seen, deadline_ns, slice_ns, NULL);
        if (rc != MG_OK) {
            return rc == MG_ETIMEDOUT && ready(q, arg) ? MG_OK : rc;
        }
    }
}

int
mg_queue_wait_ready(mg_queue *q, int for_put, int64_t deadline_ns,
                    int64_t slice_ns)
{
    return queue_wait_for(q, for_put ? &q->not_full : &q->not_empty,
                          queue_ready, for_put, deadline_ns, slice_ns);
}

mg_qitem *
mg_queue_shutdown(mg_queue *q, int immediate)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    mg_qitem *dropped = NULL;
    int all_done = 0;
    if (immediate && q->head != NULL) {
        dropped = q->head;
        size_t n = q->count < q->unfinished ? q->count : q->unfinished;
        q->unfinished -= n;
        all_done = q->unfinished == 0;
        q->head = q->tail = NULL;
        q->count = 0;
    }
    pthread_mutex_unlock(&q->mu);
    mg_wait_wake(&q->not_empty, MG_WAKE_ALL);
    mg_wait_wake(&q->not_full, MG_WAKE_ALL);
    if (all_done) {
        mg_wait_wake(&q->all_done, MG_WAKE_ALL);
    }
    return dropped;
}

void
mg_queue_close(mg_queue *q)
{
    mg_qitem *none = mg_queue_shutdown(q, 0);
    (void)none; /* nothing is dropped without immediate */
}

size_t
mg_queue_size(mg_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

int
mg_queue_is_closed(mg_queue *q)
{
    pthread_mutex_lock(&q->mu);
    int c = q->closed;
    pthread_mutex_unlock(&q->mu);
    return c;
}

/* ---- task_done / join ---- */

int
mg_queue_task_done(mg_queue *q)
{
    pthread_mutex_lock(&q->mu);
    int rc = MG_OK, all_done = 0;
    if (q->unfinished == 0) {
        rc = MG_EEMPTY;
    }
    else {
        all_done = --q->unfinished == 0;
    }
    pthread_mutex_unlock(&q->mu);
    if (all_done) {
        mg_wait_wake(&q->all_done, MG_WAKE_ALL);
    }
    return rc;
}

size_t
mg_queue_unfinished(mg_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->unfinished;
    pthread_mutex_unlock(&q->mu);
    return n;
}

static int
none_unfinished(mg_queue *q, int unused)
{
    (void)unused;
    return mg_queue_unfinished(q) == 0;
}

int
mg_queue_join_wait(mg_queue *q, int64_t deadline_ns, int64_t slice_ns)
{
    return queue_wait_for(q, &q->all_done, none_unfinished, 0, deadline_ns,
                          slice_ns);
}
