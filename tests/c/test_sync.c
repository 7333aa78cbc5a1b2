/* test_sync.c - the shared threading primitives (src/base/sync.c):
 * mutual exclusion under contention, RLock ownership by (interpreter,
 * thread), semaphore bounds, barrier generations and breaking, condition
 * notify without lost wake-ups, event wake-all (and a set-then-clear
 * seen by waiters), barrier actions. */
#include "ctest.h"
#include "base.h"
#include "sync.h"

#include <string.h>

#include <pthread.h>

static mg_owner
owner_of(int64_t interp, uint64_t thread)
{
    mg_owner o = {interp, thread};
    return o;
}

static int
acquire(mg_sync *s, mg_owner me, int64_t deadline)
{
    int rc;
    do {
        rc = mg_sync_acquire(s, me, deadline, 0, 1);
    } while (rc == MG_EINTR);
    return rc;
}

typedef struct {
    mg_sync *lock;
    long counter; /* guarded by lock only */
    int iters;
    atomic_int next;
} contend;

static void *
contender(void *arg)
{
    contend *c = arg;
    mg_owner me = owner_of(0, (uint64_t)atomic_fetch_add(&c->next, 1));
    for (int i = 0; i < c->iters; i++) {
        TCHECK(acquire(c->lock, me, -1) == MG_OK);
        c->counter++;
        TCHECK(mg_sync_release(c->lock, me, 1) == MG_OK);
    }
    return NULL;
}

static void
run_contention(mg_sync_type type, int64_t value)
{
    contend c = {mg_sync_new(type, value, NULL), 0, (int)CT_ITERS(20000), 0};
    CHECK(c.lock != NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, contender, &c);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(c.counter == 4L * c.iters); /* TSan reports any race on it */
    mg_sync_decref(c.lock);
}

CTEST(sync_lock_rlock_semaphore_exclude_under_contention)
{
    run_contention(MG_SYNC_LOCK, 0);
    run_contention(MG_SYNC_RLOCK, 0);
    run_contention(MG_SYNC_BOUNDED, 1);
}

CTEST(sync_rlock_owner_is_interpreter_and_thread)
{
    mg_sync *r = mg_sync_new(MG_SYNC_RLOCK, 0, NULL);
    mg_owner a = owner_of(1, 7), same_thread_other_interp = owner_of(2, 7);
    CHECK(acquire(r, a, -1) == MG_OK && acquire(r, a, 0) == MG_OK);
    CHECK(acquire(r, same_thread_other_interp, 0) == MG_ETIMEDOUT);
    CHECK(mg_sync_release(r, same_thread_other_interp, 1) == MG_EEMPTY);
    CHECK(mg_sync_release(r, a, 1) == MG_OK && mg_sync_locked(r));
    CHECK(mg_sync_release(r, a, 1) == MG_OK && !mg_sync_locked(r));
    CHECK(mg_sync_release(r, a, 1) == MG_EEMPTY);
    CHECK(acquire(r, same_thread_other_interp, 0) == MG_OK);
    mg_sync_decref(r);
}

CTEST(sync_lock_and_bounded_semaphore_refuse_bad_releases)
{
    mg_owner me = owner_of(0, 1);
    mg_sync *l = mg_sync_new(MG_SYNC_LOCK, 0, NULL);
    CHECK(mg_sync_release(l, me, 1) == MG_EEMPTY);
    CHECK(acquire(l, me, 0) == MG_OK && acquire(l, me, 0) == MG_ETIMEDOUT);
    /* Any thread may release a Lock. */
    CHECK(mg_sync_release(l, owner_of(5, 5), 1) == MG_OK);
    mg_sync_decref(l);
    mg_sync *b = mg_sync_new(MG_SYNC_BOUNDED, 2, NULL);
    CHECK(mg_sync_release(b, me, 1) == MG_EFULL);
    CHECK(acquire(b, me, 0) == MG_OK && mg_sync_release(b, me, 1) == MG_OK);
    mg_sync_decref(b);
}

typedef struct {
    mg_sync *s;
    atomic_int done;
    atomic_long index_sum;
    int rounds;
} bar;

static void *
barrier_thread(void *arg)
{
    bar *b = arg;
    for (int r = 0; r < b->rounds; r++) {
        int64_t index, gen;
        int released;
        TCHECK(mg_barrier_enter(b->s, &index, &gen, &released) == MG_OK);
        atomic_fetch_add(&b->index_sum, index);
        if (!released) {
            int rc;
            do {
                rc = mg_barrier_wait_gen(b->s, gen, -1, 0);
            } while (rc == MG_EINTR);
            TCHECK(rc == MG_OK);
        }
    }
    atomic_fetch_add(&b->done, 1);
    return NULL;
}

CTEST(sync_barrier_generations_and_breaking)
{
    bar b = {mg_sync_new(MG_SYNC_BARRIER, 3, NULL), 0, 0,
             (int)CT_ITERS(300)};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        pthread_create(&t[i], NULL, barrier_thread, &b);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(atomic_load(&b.done) == 3);
    CHECK(atomic_load(&b.index_sum) == 3L * b.rounds); /* 0+1+2 a round */
    /* A lone waiter times out: the barrier breaks for everyone. */
    int64_t index, gen;
    int released;
    CHECK(mg_barrier_enter(b.s, &index, &gen, &released) == MG_OK);
    CHECK(mg_barrier_wait_gen(b.s, gen, mg_monotonic_ns() + 5000000, 0)
          == MG_EBROKEN);
    CHECK(mg_barrier_broken(b.s));
    CHECK(mg_barrier_enter(b.s, &index, &gen, &released) == MG_EBROKEN);
    mg_barrier_reset(b.s);
    CHECK(!mg_barrier_broken(b.s) && mg_barrier_n_waiting(b.s) == 0);
    mg_sync_decref(b.s);
}

typedef struct {
    mg_sync *s;
    int rounds;
    int actions;          /* written only by the acting thread */
    atomic_int passed[64]; /* threads past the barrier, per round */
} bar_act;

static void *
barrier_action_thread(void *arg)
{
    bar_act *b = arg;
    for (int r = 0; r < b->rounds; r++) {
        int64_t index, gen;
        int released;
        TCHECK(mg_barrier_enter(b->s, &index, &gen, &released) == MG_OK);
        if (released == 2) {
            /* Nobody passes while the action runs. */
            TCHECK(atomic_load(&b->passed[r]) == 0);
            b->actions++;
            mg_barrier_finish(b->s, gen, 1);
        }
        else {
            TCHECK(released == 0);
            int rc;
            do {
                rc = mg_barrier_wait_gen(b->s, gen, -1, 0);
            } while (rc == MG_EINTR);
            TCHECK(rc == MG_OK);
        }
        atomic_fetch_add(&b->passed[r], 1);
    }
    return NULL;
}

CTEST(sync_barrier_action_runs_once_before_release)
{
    bar_act b = {mg_sync_new(MG_SYNC_BARRIER, 3, NULL), 64, 0, {0}};
    b.s->has_action = 1;
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        pthread_create(&t[i], NULL, barrier_action_thread, &b);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(b.actions == b.rounds);
    for (int r = 0; r < b.rounds; r++) {
        CHECK(atomic_load(&b.passed[r]) == 3);
    }
    mg_sync_decref(b.s);
}

CTEST(sync_barrier_action_busy_failure_and_reset)
{
    mg_sync *s = mg_sync_new(MG_SYNC_BARRIER, 1, NULL);
    s->has_action = 1;
    int64_t index, gen, gen2;
    int released;
    CHECK(mg_barrier_enter(s, &index, &gen, &released) == MG_OK);
    CHECK(released == 2 && index == 0);
    /* Arrivals while the action runs must wait for it. */
    CHECK(mg_barrier_enter(s, &index, &gen2, &released) == MG_EFULL);
    CHECK(mg_barrier_wait_idle(s, mg_monotonic_ns() + 1000000, 0)
          == MG_ETIMEDOUT);
    mg_barrier_finish(s, gen, 1);
    CHECK(mg_barrier_wait_idle(s, 0, 0) == MG_OK);
    /* A failed action breaks the barrier. */
    CHECK(mg_barrier_enter(s, &index, &gen, &released) == MG_OK);
    CHECK(released == 2);
    mg_barrier_finish(s, gen, 0);
    CHECK(mg_barrier_broken(s));
    /* A reset during the action wins over its finish. */
    mg_barrier_reset(s);
    CHECK(mg_barrier_enter(s, &index, &gen, &released) == MG_OK);
    mg_barrier_reset(s);
    mg_barrier_finish(s, gen, 0);
    CHECK(!mg_barrier_broken(s));
    /* The encoded action is kept once: the first one set wins. */
    mg_buf a = MG_BUF_INIT, c = MG_BUF_INIT;
    CHECK(mg_buf_append(&a, "first", 5) == MG_OK);
    CHECK(mg_buf_append(&c, "other", 5) == MG_OK);
    CHECK(mg_barrier_action(s) == NULL);
    CHECK(mg_barrier_set_action(s, &a) == MG_OK);
    CHECK(mg_barrier_set_action(s, &c) == MG_OK);
    CHECK(mg_barrier_action(s)->len == 5
          && memcmp(mg_barrier_action(s)->data, "first", 5) == 0);
    mg_sync_decref(s);
}

typedef struct {
    mg_sync *lock, *cond;
    int items;      /* under lock */
    int consumed;   /* under lock */
    int total;
    atomic_int next;
} pc;

static void *
cond_consumer(void *arg)
{
    pc *p = arg;
    mg_owner me = owner_of(1, (uint64_t)atomic_fetch_add(&p->next, 1) + 100);
    TCHECK(acquire(p->lock, me, -1) == MG_OK);
    for (;;) {
        while (p->items == 0 && p->consumed < p->total) {
            mg_cond_waiter w;
            int64_t saved;
            TCHECK(mg_cond_begin(p->cond, me, &w, &saved) == MG_OK);
            int rc;
            do {
                rc = mg_cond_wait(p->cond, &w, -1, 0);
            } while (rc == MG_EINTR);
            while (mg_cond_restore(p->cond, me, saved, 0) == MG_EINTR) {
            }
        }
        if (p->consumed == p->total) {
            break;
        }
        p->items--;
        p->consumed++;
        if (p->consumed == p->total) {
            mg_cond_notify(p->cond, me, 1000);
        }
    }
    TCHECK(mg_sync_release(p->lock, me, 1) == MG_OK);
    return NULL;
}

CTEST(sync_condition_notify_loses_no_wakeup)
{
    pc p = {0};
    p.lock = mg_sync_new(MG_SYNC_RLOCK, 0, NULL);
    p.cond = mg_sync_new(MG_SYNC_CONDITION, 0, p.lock);
    p.total = (int)CT_ITERS(5000);
    mg_owner me = owner_of(0, 1);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        pthread_create(&t[i], NULL, cond_consumer, &p);
    }
    for (int i = 0; i < p.total; i++) {
        CHECK(acquire(p.lock, me, -1) == MG_OK);
        p.items++;
        CHECK(mg_cond_notify(p.cond, me, 1) == MG_OK);
        CHECK(mg_sync_release(p.lock, me, 1) == MG_OK);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(p.consumed == p.total);
    CHECK(mg_cond_notify(p.cond, me, 1) == MG_EEMPTY); /* not held */
    mg_sync_decref(p.cond); /* drops the lock's reference too */
    mg_sync_decref(p.lock);
}

CTEST(sync_condition_wait_times_out_and_unqueues)
{
    mg_sync *cond = mg_sync_new(MG_SYNC_CONDITION, 0,
                                mg_sync_new(MG_SYNC_LOCK, 0, NULL));
    mg_sync_decref(cond->lock); /* the condition keeps its own reference */
    mg_owner me = owner_of(0, 1);
    mg_cond_waiter w;
    int64_t saved;
    CHECK(mg_cond_begin(cond, me, &w, &saved) == MG_EEMPTY);
    CHECK(acquire(cond->lock, me, -1) == MG_OK);
    CHECK(mg_cond_begin(cond, me, &w, &saved) == MG_OK);
    CHECK(!mg_sync_locked(cond->lock)); /* released while waiting */
    CHECK(mg_cond_wait(cond, &w, mg_monotonic_ns() + 5000000, 0)
          == MG_ETIMEDOUT);
    CHECK(cond->whead == NULL);
    CHECK(mg_cond_restore(cond, me, saved, 0) == MG_OK);
    CHECK(mg_sync_locked(cond->lock));
    mg_sync_decref(cond);
}

static void *
event_waiter(void *arg)
{
    int rc;
    do {
        rc = mg_event_wait(arg, 0, -1, 0);
    } while (rc == MG_EINTR);
    TCHECK(rc == MG_OK);
    return NULL;
}

CTEST(sync_event_wakes_every_waiter)
{
    mg_sync *e = mg_sync_new(MG_SYNC_EVENT, 0, NULL);
    CHECK(mg_event_wait(e, mg_event_generation(e), 0, 0) == MG_ETIMEDOUT);
    /* A set and clear after the wait began still ends it (gh-57711). */
    int64_t gen = mg_event_generation(e);
    mg_event_set(e);
    mg_event_clear(e);
    CHECK(mg_event_wait(e, gen, 0, 0) == MG_OK);
    CHECK(mg_event_wait(e, mg_event_generation(e), 0, 0) == MG_ETIMEDOUT);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, event_waiter, e);
    }
    mg_event_set(e);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(mg_event_is_set(e));
    mg_event_clear(e);
    CHECK(!mg_event_is_set(e));
    mg_sync_decref(e);
}
