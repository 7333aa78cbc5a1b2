/* csv_par.c - the CSV reader's team of threads (mg_csv_team_*, csv.h):
 * stages of independent tasks, one after another, on threads started
 * once per read.
 *
 * Owns: the helper threads of one read, the stage they run (a function,
 * its context, a task count and one atomic counter the threads take task
 * indexes from) and the two event words between the caller and them:
 * `go` (a new stage, or stop) and `done` (a helper finished its stage).
 * Both waits spin briefly first (wait.h's adaptive policy: a stage's tail
 * and the serial step between two stages last microseconds, less than
 * waking a sleeping thread), then sleep. Starting threads per stage cost
 * about 100 us of the second thread's time at every stage.
 *
 * Locks: none; the stage is published by a release increment of `stage`
 * and read after an acquire load of it, and each helper's end of a stage
 * is an acq_rel decrement of `busy`, which the caller reads with acquire
 * before it returns. The tasks are plain C and never call into Python; a
 * thread that cannot start is simply not there, the others (and the
 * calling thread) take its tasks; the helpers block every signal. Call
 * with no GIL held.
 */
#include "csv.h"
#include "wait.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MAX_THREADS 256
/* The longest spin of a wait between stages. */
#define SPIN_NS ((int64_t)200 * 1000)

struct mg_csv_team {
    int started;              /* helper threads running */
    pthread_t th[MAX_THREADS];
    mg_wait go, done;
    mg_spinner go_spin, done_spin;
    atomic_uint stage;        /* bumped per stage (release) */
    atomic_int busy;          /* helpers not done with the stage */
    int stop;                 /* set before the last bump of stage */
    atomic_size_t next;       /* the next task index to take */
    atomic_int joined;        /* helpers that have their member index */
    size_t n;
    void (*fn)(void *, size_t);
    void *ctx;
};

static void
take_tasks(mg_csv_team *t)
{
    for (;;) {
        size_t i = atomic_fetch_add(&t->next, 1);
        if (i >= t->n) {
            return;
        }
        t->fn(t->ctx, i);
    }
}

/* The calling thread's index in the team it works for: 0 in the thread
 * that runs the stages (and in any other), 1.. in the helpers. */
static _Thread_local int member;

int
mg_csv_team_member(void)
{
    return member;
}

static void *
helper(void *arg)
{
    mg_csv_team *t = arg;
    unsigned seen_stage = 0;
    member = atomic_fetch_add_explicit(&t->joined, 1, memory_order_relaxed)
             + 1;
    for (;;) {
        uint32_t seq = mg_wait_seq(&t->go);
        unsigned st = atomic_load_explicit(&t->stage, memory_order_acquire);
        if (st == seen_stage) {
            (void)mg_wait_changed(&t->go, seq, -1, &t->go_spin);
            continue;
        }
        seen_stage = st;
        if (t->stop) {
            return NULL;
        }
        take_tasks(t);
        if (atomic_fetch_sub_explicit(&t->busy, 1, memory_order_acq_rel)
            == 1) {
            mg_wait_wake(&t->done, 1);
        }
    }
}

/* Publishes the stage set in t (or stop) to the helpers. */
static void
start_stage(mg_csv_team *t)
{
    atomic_store_explicit(&t->busy, t->started, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->stage, 1, memory_order_release);
    mg_wait_wake(&t->go, MG_WAKE_ALL);
}

mg_csv_team *
mg_csv_team_new(int nthreads)
{
    mg_csv_team *t = MG_RAW_CALLOC(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    if (mg_wait_init(&t->go) != MG_OK) {
        MG_RAW_FREE(t);
        return NULL;
    }
    if (mg_wait_init(&t->done) != MG_OK) {
        mg_wait_fini(&t->go);
        MG_RAW_FREE(t);
        return NULL;
    }
    mg_spinner_init(&t->go_spin, SPIN_NS, 0);
    mg_spinner_init(&t->done_spin, SPIN_NS, 0);
    mg_spinner_pair(&t->go_spin, &t->done_spin);
    atomic_init(&t->stage, 0);
    atomic_init(&t->busy, 0);
    atomic_init(&t->next, 0);
    atomic_init(&t->joined, 0);
    if (nthreads > MAX_THREADS) {
        nthreads = MAX_THREADS;
    }
    /* The helpers never run user code: with every signal blocked in
     * them, a signal (Ctrl-C) goes to a thread that handles it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 1; i < nthreads; i++) {
        if (pthread_create(&t->th[t->started], NULL, helper, t) != 0) {
            break;
        }
        t->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return t;
}

void
mg_csv_team_run(mg_csv_team *t, size_t n, void (*fn)(void *, size_t),
                void *ctx)
{
    if (t == NULL || t->started == 0 || n < 2) {
        for (size_t i = 0; i < n; i++) {
            fn(ctx, i);
        }
        return;
    }
    t->n = n;
    t->fn = fn;
    t->ctx = ctx;
    atomic_store_explicit(&t->next, 0, memory_order_relaxed);
    start_stage(t);
    take_tasks(t);
    for (;;) {
        uint32_t seq = mg_wait_seq(&t->done);
        if (atomic_load_explicit(&t->busy, memory_order_acquire) == 0) {
            return;
        }
        (void)mg_wait_changed(&t->done, seq, -1, &t->done_spin);
    }
}

int
mg_csv_team_size(const mg_csv_team *t)
{
    return t == NULL ? 1 : t->started + 1;
}

void
mg_csv_team_free(mg_csv_team *t)
{
    if (t == NULL) {
        return;
    }
    t->stop = 1;
    start_stage(t);
    for (int i = 0; i < t->started; i++) {
        pthread_join(t->th[i], NULL);
    }
    mg_wait_fini(&t->go);
    mg_wait_fini(&t->done);
    MG_RAW_FREE(t);
}
