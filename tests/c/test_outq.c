/* test_outq.c - the output FIFO and line assembly (src/base/outq.c):
 * tagged complete lines, partial lines kept and flushed, the byte limit,
 * one drainer at a time, and per-producer order with producers and
 * drainers racing. */
#include "ctest.h"
#include "base.h"
#include "outq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
rec_is(const mg_outrec *r, const char *want)
{
    return r != NULL && r->len == strlen(want)
           && memcmp(r->text, want, r->len) == 0;
}

CTEST(linebuf_tags_complete_lines_and_keeps_the_rest)
{
    mg_linebuf lb;
    mg_linebuf_init(&lb);
    int err;
    mg_outrec *r = mg_linebuf_feed(&lb, "[t] ", 4, "ab", 2, 1, &err);
    CHECK(r == NULL && err == MG_OK && lb.len == 2);
    r = mg_linebuf_feed(&lb, "[t] ", 4, "c\nd\n\ne", 6, 1, &err);
    CHECK(rec_is(r, "[t] abc\n[t] d\n[t] \n") && r->kind == 1);
    mg_outrec_free_list(r);
    CHECK(lb.len == 1);
    r = mg_linebuf_flush(&lb, "[t] ", 4, 2);
    CHECK(rec_is(r, "[t] e\n") && r->kind == 2);
    mg_outrec_free_list(r);
    CHECK(mg_linebuf_flush(&lb, "[t] ", 4, 2) == NULL);
    mg_linebuf_fini(&lb);
}

CTEST(linebuf_cuts_a_line_without_newline_at_the_maximum)
{
    mg_linebuf lb;
    mg_linebuf_init(&lb);
    size_t n = MG_LINE_MAX + 10;
    char *big = malloc(n);
    CHECK(big != NULL);
    memset(big, 'x', n);
    int err;
    CHECK(mg_linebuf_feed(&lb, "T", 1, big, 5, 0, &err) == NULL);
    mg_outrec *r = mg_linebuf_feed(&lb, "T", 1, big, n, 0, &err);
    CHECK(r != NULL && r->len == 1 + 5 + n + 1);
    CHECK(r->text[0] == 'T' && r->text[r->len - 1] == '\n');
    CHECK(lb.len == 0);
    mg_outrec_free_list(r);
    free(big);
    mg_linebuf_fini(&lb);
}

static mg_outrec *
text_rec(const char *s)
{
    mg_outrec *r = mg_outrec_new(0, strlen(s));
    if (r != NULL) {
        memcpy(r->text, s, strlen(s));
    }
    return r;
}

CTEST(outq_limit_one_drainer_and_delivered_sequence)
{
    mg_outq q;
    CHECK(mg_outq_init(&q, 2 * sizeof(mg_outrec) + 8) == MG_OK);
    uint64_t seq;
    uint32_t seen;
    CHECK(mg_outq_push(&q, text_rec("aaaa"), 0, &seq, &seen) == MG_OK);
    CHECK(seq == 1);
    CHECK(mg_outq_push(&q, text_rec("bbbb"), 0, &seq, &seen) == MG_OK);
    mg_outrec *third = text_rec("cccc");
    CHECK(mg_outq_push(&q, third, 0, &seq, &seen) == MG_EFULL);
    int busy;
    mg_outrec *batch = mg_outq_take(&q, &busy);
    CHECK(batch != NULL && !busy && rec_is(batch, "aaaa"));
    CHECK(batch->next != NULL && rec_is(batch->next, "bbbb"));
    /* Another drainer finds the role taken; the taken batch still counts
     * against the limit until it is done. */
    CHECK(mg_outq_take(&q, &busy) == NULL && busy);
    CHECK(mg_outq_push(&q, third, 0, &seq, &seen) == MG_EFULL);
    mg_outq_done(&q, batch);
    CHECK(atomic_load(&q.delivered) == 2);
    CHECK(mg_wait_seq(&q.progress) != seen);
    CHECK(mg_outq_push(&q, third, 0, &seq, &seen) == MG_OK && seq == 3);
    /* Forced pushes ignore the limit (a thread with no GIL to drop). */
    CHECK(mg_outq_push(&q, text_rec("dddddddddddddddddddddddd"), 1, &seq,
                       &seen) == MG_OK);
    CHECK(mg_outq_pending(&q));
    mg_outq_fini(&q); /* frees what is still queued */
}

#define NPROD 3

typedef struct race {
    mg_outq q;
    atomic_int producing;
    long per_producer;
    long next[NPROD];   /* drainers: the next number expected */
    atomic_int bad;
} race;

static race R;

static void *
producer_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (long i = 0; i < R.per_producer; i++) {
        char line[64];
        snprintf(line, sizeof(line), "%d %ld\n", id, i);
        mg_outrec *r = text_rec(line);
        TCHECK(r != NULL);
        uint64_t seq;
        uint32_t seen;
        while (mg_outq_push(&R.q, r, 0, &seq, &seen) == MG_EFULL) {
            (void)mg_wait_changed(&R.q.progress, seen, 1000000, NULL);
        }
    }
    atomic_fetch_sub(&R.producing, 1);
    return NULL;
}

static void
check_batch(mg_outrec *batch)
{
    /* Only the drainer reads next[]: the role is exclusive. */
    for (mg_outrec *r = batch; r != NULL; r = r->next) {
        char line[64];
        int id;
        long i;
        size_t n = r->len < sizeof(line) - 1 ? r->len : sizeof(line) - 1;
        memcpy(line, r->text, n);
        line[n] = '\0';
        if (sscanf(line, "%d %ld", &id, &i) != 2 || id < 0 || id >= NPROD
            || i != R.next[id]) {
            atomic_store(&R.bad, 1);
            return;
        }
        R.next[id] = i + 1;
    }
}

static void *
drainer_main(void *arg)
{
    (void)arg;
    for (;;) {
        uint32_t seen = mg_wait_seq(&R.q.avail);
        int busy;
        mg_outrec *batch = mg_outq_take(&R.q, &busy);
        if (batch != NULL) {
            check_batch(batch);
            mg_outq_done(&R.q, batch);
            continue;
        }
        if (atomic_load(&R.producing) == 0 && !mg_outq_pending(&R.q)) {
            return NULL;
        }
        (void)mg_wait_changed(&R.q.avail, seen, 1000000, NULL);
    }
}

CTEST(outq_keeps_each_producers_order_with_racing_drainers)
{
    memset(&R, 0, sizeof(R));
    CHECK(mg_outq_init(&R.q, 4096) == MG_OK);
    R.per_producer = CT_ITERS(20000);
    atomic_store(&R.producing, NPROD);
    pthread_t p[NPROD], d[2];
    for (int i = 0; i < NPROD; i++) {
        CHECK(pthread_create(&p[i], NULL, producer_main,
                             (void *)(intptr_t)i) == 0);
    }
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_create(&d[i], NULL, drainer_main, NULL) == 0);
    }
    for (int i = 0; i < NPROD; i++) {
        pthread_join(p[i], NULL);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(d[i], NULL);
    }
    CHECK(!atomic_load(&R.bad));
    for (int i = 0; i < NPROD; i++) {
        CHECK(R.next[i] == R.per_producer);
    }
    CHECK(atomic_load(&R.q.delivered) == atomic_load(&R.q.pushed));
    CHECK(R.q.bytes == 0);
    mg_outq_fini(&R.q);
}
