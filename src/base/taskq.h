/* taskq.h - tasks and the FIFO that carries them from the pool to workers. */
#ifndef MG_TASKQ_H
#define MG_TASKQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "buf.h"
#include "wait.h"

typedef enum mg_task_kind {
    MG_TASK_CALL = 1,  /* payload (fn, args, kwargs) -> value */
    MG_TASK_CHUNK = 2, /* payload (fn, [args, ...]) -> ([values], exc) */
} mg_task_kind;

typedef enum mg_task_state {
    MG_TASK_QUEUED = 0,
    MG_TASK_RUNNING = 1,
    MG_TASK_CANCELLED = 2,
} mg_task_state;

typedef struct mg_task {
    struct mg_task *next;  /* queue link, under the queue's mutex */
    atomic_int state;      /* mg_task_state; QUEUED -> RUNNING|CANCELLED */
    atomic_int refcnt;     /* the queue/worker holds one, a handle one */
    mg_task_kind kind;
    int target;            /* worker index, or -1 for any worker */
    mg_buf payload;        /* owned; encoded in the submitting interpreter */
    size_t encoded_bytes;  /* payload.len when queued; never changes */
    void *future;          /* PyObject* of the submitting interpreter, owned;
                              touched only with that interpreter's GIL */
} mg_task;

typedef struct mg_taskq {
    pthread_mutex_t mu;
    mg_task *head;         /* under mu */
    mg_task *tail;         /* under mu */
    atomic_size_t nqueued; /* tasks in the list (read without mu) */
    atomic_size_t queued_bytes; /* their encoded payloads, in bytes */
    atomic_int closed;     /* once 1, pops return NULL when nothing fits */
    mg_wait ready;         /* bumped by every push and by close; workers
                              wait on it */
    mg_spinner spin;       /* workers' spin policy: one spinner at most */
} mg_taskq;

mg_task *mg_task_new(mg_task_kind kind, int target);
void mg_task_incref(mg_task *t);
/* Drops a reference; the last one frees the payload and the task. The
 * future must have been cleared by then (it needs its interpreter's GIL). */
void mg_task_decref(mg_task *t);

int mg_taskq_init(mg_taskq *q);
void mg_taskq_fini(mg_taskq *q);
/* Appends t (the queue takes over the caller's reference). MG_ECLOSED if
 * the queue is closed. */
int mg_taskq_push(mg_taskq *q, mg_task *t);
/* Waits for a task that worker may run: spins up to spin_ns (the site's
 * budget; the adaptive policy of q->spin decides whether to spin at all),
 * then sleeps. Returns NULL once the queue is closed and holds nothing for
 * worker. Call with no GIL held. */
mg_task *mg_taskq_pop(mg_taskq *q, int worker, int64_t spin_ns);
/* Takes a task for worker without waiting, or NULL. */
mg_task *mg_taskq_try_pop(mg_taskq *q, int worker);
void mg_taskq_close(mg_taskq *q);
/* Bytes of encoded payload waiting in the queue (not yet taken). */
size_t mg_taskq_queued_bytes(mg_taskq *q);
/* Tasks in the queue that may still run (cancelled ones that no worker
 * has dropped yet are not counted): walks the list under q->mu, for
 * statistics, not for a hot path. */
size_t mg_taskq_waiting(mg_taskq *q);
/* Detaches every queued task and returns them as a list linked by next. */
mg_task *mg_taskq_drain(mg_taskq *q);

#endif
