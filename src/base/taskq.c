/* taskq.c - the task FIFO between the pool and its worker threads.
 *
 * Owns: mg_task nodes and their refcounts, the FIFO, its wait word
 * (q->ready, see wait.h) and the workers' spin site, and close/drain.
 * Never calls the Python C API that needs a thread state: every function
 * here may run with no GIL held.
 * Locking: q->mu protects head and tail; it is the only lock here, never
 * held while waiting or waking, and no function returns with it held.
 * No lost wake-up: a popper reads q->ready's sequence before it looks at
 * the list, and every push and close bumps it after changing the list.
 */
#include "base.h"
#include "taskq.h"

#include <string.h>

mg_task *
mg_task_new(mg_task_kind kind, int target)
{
    mg_task *t = MG_RAW_CALLOC(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    atomic_init(&t->state, MG_TASK_QUEUED);
    atomic_init(&t->refcnt, 1);
    t->kind = kind;
    t->target = target;
    mg_buf_init(&t->payload);
    return t;
}

void
mg_task_incref(mg_task *t)
{
    atomic_fetch_add(&t->refcnt, 1);
}

void
mg_task_decref(mg_task *t)
{
    if (atomic_fetch_sub(&t->refcnt, 1) == 1) {
        mg_buf_release(&t->payload);
        MG_RAW_FREE(t);
    }
}

int
mg_taskq_init(mg_taskq *q)
{
    memset(q, 0, sizeof(*q));
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        return MG_ESYS;
    }
    if (mg_wait_init(&q->ready) != MG_OK) {
        pthread_mutex_destroy(&q->mu);
        return MG_ESYS;
    }
    atomic_init(&q->nqueued, 0);
    atomic_init(&q->queued_bytes, 0);
    atomic_init(&q->closed, 0);
    /* One spinning worker at most: more would only race for the task. */
    mg_spinner_init(&q->spin, 0, 1);
    return MG_OK;
}

void
mg_taskq_fini(mg_taskq *q)
{
    mg_wait_fini(&q->ready);
    pthread_mutex_destroy(&q->mu);
}

/* Wakes the workers a new task needs. A spinning worker takes a task
 * without a wake-up: wake a sleeper only for tasks beyond what the
 * spinners will take (a spinner counted here re-checks the list after the
 * bump, whether it goes on spinning or goes to sleep). A targeted task
 * may be meant for a worker other than the one a single wake would
 * reach: wake them all. */
static void
taskq_wake_for(mg_taskq *q, int targeted, size_t queued)
{
    mg_wait_bump(&q->ready);
    if (targeted) {
        mg_wait_wake_sleepers(&q->ready, MG_WAKE_ALL);
    }
    else if (queued > (size_t)atomic_load(&q->spin.nspinning)) {
        mg_wait_wake_sleepers(&q->ready, 1);
    }
}

int
mg_taskq_push(mg_taskq *q, mg_task *t)
{
    int rc = MG_OK;
    size_t queued = 0;
    int targeted = t->target >= 0; /* t may be gone once unlocked */
    t->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (atomic_load(&q->closed)) {
        rc = MG_ECLOSED;
    }
    else {
        if (q->tail) {
            q->tail->next = t;
        }
        else {
            q->head = t;
        }
        q->tail = t;
        queued = atomic_fetch_add(&q->nqueued, 1) + 1;
        atomic_fetch_add(&q->queued_bytes, t->payload.len);
    }
    pthread_mutex_unlock(&q->mu);
    if (rc == MG_OK) {
        taskq_wake_for(q, targeted, queued);
    }
    return rc;
}

/* Unlinks and returns the first task worker may run; q->mu is held. */
static mg_task *
taskq_take_locked(mg_taskq *q, int worker)
{
    mg_task *prev = NULL;
    for (mg_task *t = q->head; t != NULL; prev = t, t = t->next) {
        if (t->target >= 0 && t->target != worker) {
            continue;
        }
        if (prev) {
            prev->next = t->next;
        }
        else {
            q->head = t->next;
        }
        if (q->tail == t) {
            q->tail = prev;
        }
        t->next = NULL;
        atomic_fetch_sub(&q->nqueued, 1);
        atomic_fetch_sub(&q->queued_bytes, t->payload.len);
        return t;
    }
    return NULL;
}

/* A task for worker, or NULL; *closed tells whether the queue is closed
 * (read under the same lock, so a close is never missed). */
static mg_task *
taskq_take(mg_taskq *q, int worker, int *closed)
{
    pthread_mutex_lock(&q->mu);
    mg_task *t = taskq_take_locked(q, worker);
    *closed = atomic_load(&q->closed);
    pthread_mutex_unlock(&q->mu);
    return t;
}

mg_task *
mg_taskq_try_pop(mg_taskq *q, int worker)
{
    int closed;
    return taskq_take(q, worker, &closed);
}

mg_task *
mg_taskq_pop(mg_taskq *q, int worker, int64_t spin_ns)
{
    mg_spinner_set_budget(&q->spin, spin_ns);
    for (;;) {
        uint32_t seen = mg_wait_seq(&q->ready);
        int closed;
        mg_task *t = taskq_take(q, worker, &closed);
        if (t != NULL || closed) {
            return t;
        }
        (void)mg_wait_changed(&q->ready, seen, -1, &q->spin);
    }
}

void
mg_taskq_close(mg_taskq *q)
{
    pthread_mutex_lock(&q->mu);
    atomic_store(&q->closed, 1);
    pthread_mutex_unlock(&q->mu);
    mg_wait_wake(&q->ready, MG_WAKE_ALL);
}

mg_task *
mg_taskq_drain(mg_taskq *q)
{
    pthread_mutex_lock(&q->mu);
    mg_task *all = q->head;
    q->head = q->tail = NULL;
    atomic_store(&q->nqueued, 0);
    atomic_store(&q->queued_bytes, 0);
    pthread_mutex_unlock(&q->mu);
    return all;
}

size_t
mg_taskq_queued_bytes(mg_taskq *q)
{
    return atomic_load(&q->queued_bytes);
}

size_t
mg_taskq_waiting(mg_taskq *q)
{
    size_t n = 0;
    pthread_mutex_lock(&q->mu);
    for (mg_task *t = q->head; t != NULL; t = t->next) {
        n += atomic_load(&t->state) == MG_TASK_QUEUED;
    }
    pthread_mutex_unlock(&q->mu);
    return n;
}
