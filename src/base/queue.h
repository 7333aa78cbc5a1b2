/* queue.h - mg_queue, a FIFO of encoded items that any number of threads
 * in any interpreters put to and get from; a handle (kind id 2).
 *
 * Items are mg_qitem nodes, each owning one mg_buf (an encoded value plus
 * the handles it refers to). Producers build a chain of nodes outside the
 * lock and hand it over with one lock round trip (put); consumers take up
 * to max items in one round trip (get). maxsize 0: unbounded; else at most
 * maxsize items are queued and puts wait for room.
 *
 * Close: later puts fail with MG_ECLOSED; gets hand out what is left, then
 * MG_ECLOSED. Blocking calls take a deadline (mg_monotonic_ns clock; < 0:
 * none; 0: do not wait) and return MG_EINTR after each slice of sleep so a
 * caller can check for signals and call again. Call with no GIL held.
 */
#ifndef MG_QUEUE_H
#define MG_QUEUE_H

#include <pthread.h>
#include "buf.h"
#include "handle.h"
#include "wait.h"

#define MG_HANDLE_KIND_QUEUE 2u
extern const mg_handle_kind mg_queue_kind;

typedef struct mg_qitem {
    struct mg_qitem *next;
    mg_buf buf; /* owned */
} mg_qitem;

typedef struct mg_queue {
    mg_handle h;          /* first: a queue is a handle */
    pthread_mutex_t mu;   /* guards head, tail, count, closed, unfinished */
    mg_qitem *head;
    mg_qitem *tail;
    size_t count;
    size_t maxsize;       /* 0: unbounded; never changes */
    int closed;
    size_t unfinished;    /* items put and not yet task_done()'d */
    mg_wait all_done;     /* bumped when unfinished drops to 0 */
    mg_wait not_empty;    /* bumped by puts and close; getters wait */
    mg_wait not_full;     /* bumped by gets and close; putters wait */
    mg_spinner get_spin;  /* spin policy of waiting getters */
    mg_spinner put_spin;  /* ... and of waiting putters */
} mg_queue;

/* queue.Queue's task_done/join: every item put counts as unfinished
 * until a task_done; task_done gives MG_EEMPTY when none is unfinished;
 * join_wait waits until none is (MG_OK, MG_ETIMEDOUT, MG_EINTR). */
int mg_queue_task_done(mg_queue *q);
/* close(); with immediate, also takes every queued item out (returned as a
 * chain for the caller to free with no lock held), each counted done. */
mg_qitem *mg_queue_shutdown(mg_queue *q, int immediate);
int mg_queue_join_wait(mg_queue *q, int64_t deadline_ns, int64_t slice_ns);
size_t mg_queue_unfinished(mg_queue *q);

/* A new queue with one reference, or NULL (out of memory, or no mutex). */
mg_queue *mg_queue_new(size_t maxsize);
/* The queue a handle of kind mg_queue_kind is, else NULL. */
mg_queue *mg_queue_from_handle(mg_handle *h);
static inline void mg_queue_incref(mg_queue *q) { mg_handle_incref(&q->h); }
static inline void mg_queue_decref(mg_queue *q)
{
    if (q != NULL) {
        mg_handle_decref(&q->h);
    }
}

/* A node with an empty buffer, or NULL. */
mg_qitem *mg_qitem_new(void);
/* Frees every node of a chain and its buffer (NULL-safe). */
void mg_qitem_free_chain(mg_qitem *it);

/* Moves the nodes of *chain (*n of them, linked by next) to the queue's
 * tail, waiting for room if the queue is bounded. On return *chain and *n
 * hold what was not put (NULL and 0 on MG_OK); call again after MG_EINTR.
 * MG_OK, MG_ECLOSED, MG_ETIMEDOUT or MG_EINTR. spin: may spin first. */
int mg_queue_put(mg_queue *q, mg_qitem **chain, size_t *n,
                 int64_t deadline_ns, int64_t slice_ns, int spin);
/* Takes 1 to max items (a chain in FIFO order into *out, their number into
 * *got), waiting for at least one. MG_OK, MG_ECLOSED (closed and empty),
 * MG_ETIMEDOUT or MG_EINTR (nothing taken: call again). */
int mg_queue_get(mg_queue *q, size_t max, mg_qitem **out, size_t *got,
                 int64_t deadline_ns, int64_t slice_ns, int spin);
/* Waits until a get (for_put 0) or a put (1) would not wait: the queue
 * holds an item (has room), or is closed. Takes nothing (asyncio waiters
 * use it: an abandoned wait loses no item). MG_OK, MG_ETIMEDOUT, MG_EINTR. */
int mg_queue_wait_ready(mg_queue *q, int for_put, int64_t deadline_ns,
                        int64_t slice_ns);
/* Closes the queue (idempotent) and wakes every waiter. */
void mg_queue_close(mg_queue *q);
size_t mg_queue_size(mg_queue *q);
int mg_queue_is_closed(mg_queue *q);

#endif
