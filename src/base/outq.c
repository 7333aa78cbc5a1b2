/* outq.c - the output FIFO of a pool and line assembly (see outq.h).
 *
 * Owns: mg_outrec records (raw malloc: pushed by one interpreter's
 * threads, freed by whichever thread drains), the FIFO with its byte
 * limit, the one-drainer-at-a-time role, the `delivered` sequence, and
 * mg_linebuf (the text of a line not yet complete).
 * Locking: q->mu guards the list, its byte count and the drainer flag;
 * it is the only lock here, never held while waiting, waking or
 * delivering, and no function returns with it held. A line buffer has no
 * lock: its owner serialises use (a worker interpreter's GIL).
 * Never calls Python; every function may run on any thread with no GIL.
 */
#include "base.h"
#include "outq.h"

#include <string.h>

int
mg_outq_init(mg_outq *q, size_t limit)
{
    memset(q, 0, sizeof(*q));
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        return MG_ESYS;
    }
    if (mg_wait_init(&q->avail) != MG_OK) {
        pthread_mutex_destroy(&q->mu);
        return MG_ESYS;
    }
    if (mg_wait_init(&q->progress) != MG_OK) {
        mg_wait_fini(&q->avail);
        pthread_mutex_destroy(&q->mu);
        return MG_ESYS;
    }
    q->limit = limit;
    atomic_init(&q->pushed, 0);
    atomic_init(&q->delivered, 0);
    return MG_OK;
}

void
mg_outq_fini(mg_outq *q)
{
    mg_outrec_free_list(q->head);
    q->head = q->tail = NULL;
    mg_wait_fini(&q->progress);
    mg_wait_fini(&q->avail);
    pthread_mutex_destroy(&q->mu);
}

mg_outrec *
mg_outrec_new(int kind, size_t len)
{
    mg_outrec *r = MG_RAW_MALLOC(sizeof(*r) + len);
    if (r == NULL) {
        return NULL;
    }
    r->next = NULL;
    r->seq = 0;
    r->kind = kind;
    r->flush = 0;
    mg_buf_init(&r->msg);
    r->len = len;
    return r;
}

size_t
mg_outrec_size(const mg_outrec *r)
{
    return sizeof(*r) + r->len + r->msg.len;
}

void
mg_outrec_free_list(mg_outrec *r)
{
    while (r != NULL) {
        mg_outrec *next = r->next;
        mg_buf_release(&r->msg);
        MG_RAW_FREE(r);
        r = next;
    }
}

int
mg_outq_push(mg_outq *q, mg_outrec *r, int force, uint64_t *seq,
             uint32_t *progress_seen)
{
    size_t size = mg_outrec_size(r);
    /* Read before looking at the count: a batch done after this moves
     * it, so the producer's wait cannot miss the room being made. */
    *progress_seen = mg_wait_seq(&q->progress);
    pthread_mutex_lock(&q->mu);
    int room = force || q->bytes == 0 || q->bytes + size <= q->limit;
    if (room) {
        r->next = NULL;
        r->seq = atomic_load(&q->pushed) + 1;
        atomic_store(&q->pushed, r->seq);
        if (q->tail != NULL) {
            q->tail->next = r;
        }
        else {
            q->head = r;
        }
        q->tail = r;
        q->bytes += size;
        *seq = r->seq;
    }
    pthread_mutex_unlock(&q->mu);
    if (!room) {
        return MG_EFULL;
    }
    mg_wait_wake(&q->avail, MG_WAKE_ALL);
    return MG_OK;
}

mg_outrec *
mg_outq_take(mg_outq *q, int *busy)
{
    pthread_mutex_lock(&q->mu);
    mg_outrec *batch = NULL;
    *busy = q->draining;
    if (!q->draining && q->head != NULL) {
        batch = q->head;
        q->head = q->tail = NULL;
        q->draining = 1;
    }
    pthread_mutex_unlock(&q->mu);
    return batch;
}

void
mg_outq_done(mg_outq *q, mg_outrec *batch)
{
    size_t size = 0;
    uint64_t last = 0;
    for (mg_outrec *r = batch; r != NULL; r = r->next) {
        size += mg_outrec_size(r);
        last = r->seq;
    }
    mg_outrec_free_list(batch);
    pthread_mutex_lock(&q->mu);
    q->bytes -= size;
    q->draining = 0;
    if (last != 0) {
        atomic_store(&q->delivered, last);
    }
    pthread_mutex_unlock(&q->mu);
    mg_wait_wake(&q->progress, MG_WAKE_ALL);
}

int
mg_outq_pending(mg_outq *q)
{
    pthread_mutex_lock(&q->mu);
    int pending = q->head != NULL;
    pthread_mutex_unlock(&q->mu);
    return pending;
}

void
mg_linebuf_init(mg_linebuf *lb)
{
    lb->data = NULL;
    lb->len = lb->cap = 0;
}

void
mg_linebuf_fini(mg_linebuf *lb)
{
    MG_RAW_FREE(lb->data);
    mg_linebuf_init(lb);
}

static int
linebuf_append(mg_linebuf *lb, const char *s, size_t n)
{
    if (lb->len + n > lb->cap) {
        size_t cap = lb->cap ? lb->cap : 256;
        while (cap < lb->len + n) {
            cap *= 2;
        }
        char *data = MG_RAW_REALLOC(lb->data, cap);
        if (data == NULL) {
            return MG_ENOMEM;
        }
        lb->data = data;
        lb->cap = cap;
    }
    memcpy(lb->data + lb->len, s, n);
    lb->len += n;
    return MG_OK;
}

/* Copies the tagged lines of the waiting text lb[0..len) followed by
 * s[0..n) (which ends with a newline, or gets one: add_nl) into a new
 * record. */
static mg_outrec *
lines_record(const mg_linebuf *lb, const char *tag, size_t taglen,
             const char *s, size_t n, int add_nl, int kind)
{
    size_t nlines = 0;
    for (const char *p = s; (p = memchr(p, '\n', (size_t)(s + n - p)));
         p++) {
        nlines++;
    }
    nlines += add_nl;
    mg_outrec *r = mg_outrec_new(kind, nlines * taglen + lb->len + n
                                           + (size_t)add_nl);
    if (r == NULL) {
        return NULL;
    }
    char *out = r->text;
    const char *p = s, *end = s + n;
    int first = 1;
    while (p < end || (add_nl && first)) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl + 1 : end;
        memcpy(out, tag, taglen);
        out += taglen;
        if (first && lb->len > 0) {
            memcpy(out, lb->data, lb->len);
            out += lb->len;
        }
        first = 0;
        memcpy(out, p, (size_t)(stop - p));
        out += stop - p;
        p = stop;
        if (nl == NULL) {
            break;
        }
    }
    if (add_nl) {
        *out++ = '\n';
    }
    r->len = (size_t)(out - r->text);
    return r;
}

mg_outrec *
mg_linebuf_feed(mg_linebuf *lb, const char *tag, size_t taglen,
                const char *s, size_t n, int kind, int *err)
{
    *err = MG_OK;
    const char *last = NULL;
    for (const char *p = s; (p = memchr(p, '\n', (size_t)(s + n - p)));
         p++) {
        last = p;
    }
    if (last == NULL) {
        if (lb->len + n <= MG_LINE_MAX) {
            *err = linebuf_append(lb, s, n);
            return NULL;
        }
        /* Too long without a newline: it goes as a line of its own. */
        mg_outrec *r = lines_record(lb, tag, taglen, s, n, 1, kind);
        lb->len = 0;
        *err = r ? MG_OK : MG_ENOMEM;
        return r;
    }
    size_t head = (size_t)(last + 1 - s);
    mg_outrec *r = lines_record(lb, tag, taglen, s, head, 0, kind);
    lb->len = 0;
    if (r == NULL) {
        *err = MG_ENOMEM;
        return NULL;
    }
    if (head < n) {
        *err = linebuf_append(lb, s + head, n - head);
    }
    return r;
}

mg_outrec *
mg_linebuf_flush(mg_linebuf *lb, const char *tag, size_t taglen, int kind)
{
    if (lb->len == 0) {
        return NULL;
    }
    mg_outrec *r = lines_record(lb, tag, taglen, "", 0, 1, kind);
    lb->len = 0;
    return r;
}
