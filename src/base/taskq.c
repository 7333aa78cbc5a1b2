/* taskq.c - the task FIFO between the pool and its worker threads.
 *
 * Owns: mg_task nodes and their refcounts, the FIFO, its mutex/condvar,
 * spinning before sleeping, and close/drain.
 * Never calls the Python C API that needs a thread state: every function
 * here may run with no GIL held.
 * Locking: q->mu protects head, tail and nsleeping; no function returns
 * with q->mu held.
 */
#include "base.h"
#include "taskq.h"

#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h> /* _mm_pause */
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

int64_t
mg_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
mg_spin_while_equal(atomic_size_t *word, size_t seen, int64_t spin_ns)
{
    int64_t until = mg_monotonic_ns() + spin_ns;
    unsigned n = 0;
    while (atomic_load_explicit(word, memory_order_acquire) == seen) {
        cpu_relax();
        if ((++n & 63) == 0 && mg_monotonic_ns() > until) {
            break;
        }
    }
}

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
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&q->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_destroy(&q->mu);
        return MG_ESYS;
    }
    atomic_init(&q->nqueued, 0);
    atomic_init(&q->nspinning, 0);
    atomic_init(&q->closed, 0);
    return MG_OK;
}

void
mg_taskq_fini(mg_taskq *q)
{
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

int
mg_taskq_push(mg_taskq *q, mg_task *t)
{
    int rc = MG_OK;
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
        size_t queued = atomic_fetch_add(&q->nqueued, 1) + 1;
        /* A spinning worker takes a task without a wake-up: wake a
         * sleeper only for tasks beyond what the spinners will take. A
         * spinner that gives up takes q->mu and looks at the queue before
         * it sleeps, so no task is left behind. */
        if (q->nsleeping > 0
            && queued > (size_t)atomic_load(&q->nspinning)) {
            /* A targeted task may be meant for a worker other than the
             * one a signal would wake. */
            if (t->target >= 0) {
                pthread_cond_broadcast(&q->cv);
            }
            else {
                pthread_cond_signal(&q->cv);
            }
        }
    }
    pthread_mutex_unlock(&q->mu);
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
        return t;
    }
    return NULL;
}

mg_task *
mg_taskq_pop(mg_taskq *q, int worker, int64_t spin_ns)
{
    if (spin_ns > 0 && atomic_load(&q->nqueued) == 0
        && !atomic_load(&q->closed)) {
        atomic_fetch_add(&q->nspinning, 1);
        mg_spin_while_equal(&q->nqueued, 0, spin_ns);
        atomic_fetch_sub(&q->nspinning, 1);
    }
    mg_task *t;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        t = taskq_take_locked(q, worker);
        if (t != NULL || atomic_load(&q->closed)) {
            break;
        }
        q->nsleeping++;
        pthread_cond_wait(&q->cv, &q->mu);
        q->nsleeping--;
    }
    pthread_mutex_unlock(&q->mu);
    return t;
}

void
mg_taskq_close(mg_taskq *q)
{
    pthread_mutex_lock(&q->mu);
    atomic_store(&q->closed, 1);
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

mg_task *
mg_taskq_drain(mg_taskq *q)
{
    pthread_mutex_lock(&q->mu);
    mg_task *all = q->head;
    q->head = q->tail = NULL;
    atomic_store(&q->nqueued, 0);
    pthread_mutex_unlock(&q->mu);
    return all;
}
