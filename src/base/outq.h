/* outq.h - the output FIFO of a pool: complete, tagged lines (and other
 * records, such as logging records) that worker interpreters write, in
 * order, for whoever delivers them in the owner interpreter.
 *
 * Producers (any thread) push records; a push beyond the byte limit is
 * refused (MG_EFULL) unless the queue is empty or it is forced, so the
 * producer waits on `progress` (backpressure) and memory stays bounded.
 * One drainer at a time takes the whole FIFO as a batch, delivers it, and
 * reports it done: batches are delivered in order even when several
 * threads take turns draining. `delivered` is the sequence number of the
 * last record delivered; a producer that must know its records are out
 * waits until it reaches the sequence number its push returned.
 *
 * mg_linebuf assembles lines: text without a newline waits in it; a
 * record carries only complete lines, each with the tag in front.
 */
#ifndef MG_OUTQ_H
#define MG_OUTQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wait.h"

/* Longest text a line buffer holds without a newline: more is pushed as a
 * line of its own (cut there, with a newline added). */
#define MG_LINE_MAX ((size_t)64 * 1024)

typedef struct mg_outrec {
    struct mg_outrec *next;
    uint64_t seq;    /* set by the push */
    int kind;        /* the user's: which stream, or a logging record */
    int flush;       /* the writer asked for a flush after this */
    mg_buf msg;      /* a non-text record's payload (may be empty) */
    size_t len;      /* bytes of text */
    char text[];     /* len bytes (not NUL-terminated) */
} mg_outrec;

typedef struct mg_outq {
    pthread_mutex_t mu;     /* guards the fields marked "under mu" */
    mg_outrec *head, *tail; /* under mu */
    size_t bytes;           /* under mu: queued bytes (records' sizes) */
    size_t limit;           /* pushes wait beyond this (see above) */
    int draining;           /* under mu: a batch is being delivered */
    atomic_ullong pushed;   /* seq of the last record pushed (under mu) */
    atomic_ullong delivered;/* seq of the last record delivered */
    mg_wait avail;          /* bumped by every push */
    mg_wait progress;       /* bumped when a batch is done */
} mg_outq;

typedef struct mg_linebuf {
    char *data; /* owned (raw malloc) */
    size_t len, cap;
} mg_linebuf;

int mg_outq_init(mg_outq *q, size_t limit);
/* Frees the records still queued. */
void mg_outq_fini(mg_outq *q);

/* A record with room for len bytes of text; NULL when out of memory. */
mg_outrec *mg_outrec_new(int kind, size_t len);
/* Size a record counts for against the limit. */
size_t mg_outrec_size(const mg_outrec *r);
/* Frees a list of records (linked by next). */
void mg_outrec_free_list(mg_outrec *r);

/* Appends r and returns MG_OK with *seq its sequence number, or, when
 * the queue holds more than the limit with r and force is 0, returns
 * MG_EFULL with *progress_seen set: wait on q->progress from that value
 * and try again. Wakes a thread waiting on avail. */
int mg_outq_push(mg_outq *q, mg_outrec *r, int force, uint64_t *seq,
                 uint32_t *progress_seen);
/* Takes every queued record as a batch (the caller becomes the drainer;
 * it must call mg_outq_done) and returns it; NULL when the queue is
 * empty, or when another thread is draining (*busy = 1). */
mg_outrec *mg_outq_take(mg_outq *q, int *busy);
/* The drainer delivered batch (from mg_outq_take): gives up the drainer
 * role, moves `delivered` to its last record, frees it, wakes waiters. */
void mg_outq_done(mg_outq *q, mg_outrec *batch);
/* Whether anything is queued now. */
int mg_outq_pending(mg_outq *q);

void mg_linebuf_init(mg_linebuf *lb);
void mg_linebuf_fini(mg_linebuf *lb);
/* Feeds n bytes of text: returns a record (kind) holding every line that
 * is complete now, each prefixed with the tag, or NULL when none is
 * (*err = MG_OK) or out of memory (*err = MG_ENOMEM; the text is lost).
 * Text after the last newline stays in lb (beyond MG_LINE_MAX it is cut
 * into a line of its own). */
mg_outrec *mg_linebuf_feed(mg_linebuf *lb, const char *tag, size_t taglen,
                           const char *s, size_t n, int kind, int *err);
/* The text waiting in lb, as a tagged line with a newline added, or NULL
 * when there is none (or out of memory: the text is lost). lb empties. */
mg_outrec *mg_linebuf_flush(mg_linebuf *lb, const char *tag, size_t taglen,
                            int kind);

#endif /* MG_OUTQ_H */
