/* test_taskq.c - the task FIFO (src/base/taskq.c): order, many producers
 * and consumers, targeted tasks, close and drain, no lost wake-ups. */
#include "ctest.h"
#include "base.h"
#include "taskq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static mg_task *
task_with_id(long id, int target)
{
    mg_task *t = mg_task_new(MG_TASK_CALL, target);
    if (t != NULL && mg_buf_append(&t->payload, &id, sizeof(id)) != MG_OK) {
        mg_task_decref(t);
        return NULL;
    }
    return t;
}

static long
task_id(const mg_task *t)
{
    long id;
    memcpy(&id, t->payload.data, sizeof(id));
    return id;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

CTEST(taskq_is_fifo_and_close_refuses_pushes)
{
    mg_taskq q;
    CHECK(mg_taskq_init(&q) == MG_OK);
    for (long i = 0; i < 5; i++) {
        CHECK(mg_taskq_push(&q, task_with_id(i, -1)) == MG_OK);
    }
    CHECK(atomic_load(&q.nqueued) == 5);
    for (long i = 0; i < 3; i++) {
        mg_task *t = mg_taskq_pop(&q, 0, 0);
        CHECK(t != NULL && task_id(t) == i);
        mg_task_decref(t);
    }
    mg_taskq_close(&q);
    mg_task *late = task_with_id(99, -1);
    CHECK(mg_taskq_push(&q, late) == MG_ECLOSED);
    mg_task_decref(late);
    /* A closed queue still hands out what it holds, then NULL. */
    for (long i = 3; i < 5; i++) {
        mg_task *t = mg_taskq_pop(&q, 0, 0);
        CHECK(t != NULL && task_id(t) == i);
        mg_task_decref(t);
    }
    CHECK(mg_taskq_pop(&q, 0, 50000) == NULL);
    CHECK(mg_taskq_try_pop(&q, 0) == NULL);
    mg_taskq_fini(&q);
}

CTEST(taskq_waiting_skips_cancelled_tasks)
{
    mg_taskq q;
    CHECK(mg_taskq_init(&q) == MG_OK);
    CHECK(mg_taskq_waiting(&q) == 0);
    mg_task *ts[4];
    for (long i = 0; i < 4; i++) {
        ts[i] = task_with_id(i, -1);
        CHECK(ts[i] != NULL);
        mg_task_incref(ts[i]);
        CHECK(mg_taskq_push(&q, ts[i]) == MG_OK);
    }
    CHECK(mg_taskq_waiting(&q) == 4);
    atomic_store(&ts[1]->state, MG_TASK_CANCELLED);
    CHECK(mg_taskq_waiting(&q) == 3);
    CHECK(atomic_load(&q.nqueued) == 4); /* still in the list */
    mg_task *t = mg_taskq_pop(&q, 0, 0);
    CHECK(t == ts[0]);
    mg_task_decref(t);
    CHECK(mg_taskq_waiting(&q) == 2);
    mg_taskq_close(&q);
    while ((t = mg_taskq_try_pop(&q, 0)) != NULL) {
        mg_task_decref(t);
    }
    CHECK(mg_taskq_waiting(&q) == 0);
    for (int i = 0; i < 4; i++) {
        mg_task_decref(ts[i]);
    }
    mg_taskq_fini(&q);
}

CTEST(taskq_drain_detaches_everything)
{
    mg_taskq q;
    CHECK(mg_taskq_init(&q) == MG_OK);
    for (long i = 0; i < 4; i++) {
        CHECK(mg_taskq_push(&q, task_with_id(i, i % 2 ? 1 : -1)) == MG_OK);
    }
    mg_task *all = mg_taskq_drain(&q);
    CHECK(atomic_load(&q.nqueued) == 0);
    CHECK(mg_taskq_try_pop(&q, 0) == NULL);
    CHECK(mg_taskq_try_pop(&q, 1) == NULL);
    long n = 0;
    while (all != NULL) {
        mg_task *next = all->next;
        CHECK(task_id(all) == n);
        n++;
        mg_task_decref(all);
        all = next;
    }
    CHECK(n == 4);
    /* Still usable after a drain. */
    CHECK(mg_taskq_push(&q, task_with_id(7, -1)) == MG_OK);
    mg_task *t = mg_taskq_try_pop(&q, 3);
    CHECK(t != NULL && task_id(t) == 7);
    mg_task_decref(t);
    mg_taskq_fini(&q);
}

/* ---- many producers and consumers ---- */

enum { NPROD = 4, NCONS = 4 };

typedef struct {
    mg_taskq q;
    long per_producer;
    atomic_uchar *seen;     /* per task id: times popped */
    atomic_long popped;
    atomic_int wrong_worker;
    int targeted;           /* producers target id % NCONS (every 3rd) */
} mpmc;

typedef struct {
    mpmc *m;
    int index;
} role;

static void *
producer(void *arg)
{
    role *r = arg;
    mpmc *m = r->m;
    for (long i = 0; i < m->per_producer; i++) {
        long id = r->index * m->per_producer + i;
        int target = m->targeted && id % 3 == 0 ? (int)(id % NCONS) : -1;
        mg_task *t = task_with_id(id, target);
        TCHECK(t != NULL);
        TCHECK(mg_taskq_push(&m->q, t) == MG_OK);
    }
    return NULL;
}

static void *
consumer(void *arg)
{
    role *r = arg;
    mpmc *m = r->m;
    /* Half the consumers spin before sleeping, half never spin. */
    int64_t spin = r->index % 2 ? 20000 : 0;
    mg_task *t;
    while ((t = mg_taskq_pop(&m->q, r->index, spin)) != NULL) {
        if (t->target >= 0 && t->target != r->index) {
            atomic_fetch_add(&m->wrong_worker, 1);
        }
        atomic_fetch_add(&m->seen[task_id(t)], 1);
        atomic_fetch_add(&m->popped, 1);
        mg_task_decref(t);
    }
    return NULL;
}

static void
mpmc_run(int targeted)
{
    mpmc m;
    CHECK(mg_taskq_init(&m.q) == MG_OK);
    int old = mg_spin_set_global_cap(2);
    m.per_producer = CT_ITERS(20000);
    long total = NPROD * m.per_producer;
    m.seen = calloc((size_t)total, sizeof(*m.seen));
    CHECK(m.seen != NULL);
    atomic_init(&m.popped, 0);
    atomic_init(&m.wrong_worker, 0);
    m.targeted = targeted;
    pthread_t pt[NPROD], ct[NCONS];
    role pr[NPROD], cr[NCONS];
    for (int i = 0; i < NCONS; i++) {
        cr[i] = (role){&m, i};
        CHECK(pthread_create(&ct[i], NULL, consumer, &cr[i]) == 0);
    }
    for (int i = 0; i < NPROD; i++) {
        pr[i] = (role){&m, i};
        CHECK(pthread_create(&pt[i], NULL, producer, &pr[i]) == 0);
    }
    for (int i = 0; i < NPROD; i++) {
        pthread_join(pt[i], NULL);
    }
    /* Every task must be taken before close: wait for the consumers to
     * empty the queue (a lost wake-up would leave tasks queued here). */
    for (int i = 0; i < 20000 && atomic_load(&m.popped) < total; i++) {
        sleep_ms(1);
    }
    CHECK(atomic_load(&m.popped) == total);
    mg_taskq_close(&m.q);
    for (int i = 0; i < NCONS; i++) {
        pthread_join(ct[i], NULL);
    }
    mg_spin_set_global_cap(old);
    for (long i = 0; i < total; i++) {
        CHECK(atomic_load(&m.seen[i]) == 1);
    }
    CHECK(atomic_load(&m.wrong_worker) == 0);
    CHECK(atomic_load(&m.q.nqueued) == 0);
    free(m.seen);
    mg_taskq_fini(&m.q);
}

CTEST(taskq_many_producers_consumers_each_task_once)
{
    mpmc_run(0);
}

CTEST(taskq_targeted_tasks_reach_only_their_worker)
{
    mpmc_run(1);
}

/* ---- close wakes every sleeper ---- */

typedef struct {
    mg_taskq *q;
    int index;
    atomic_int *returned;
} sleeper;

static void *
pop_until_closed(void *arg)
{
    sleeper *s = arg;
    mg_task *t = mg_taskq_pop(s->q, s->index, s->index == 0 ? 50000 : 0);
    TCHECK(t == NULL);
    atomic_fetch_add(s->returned, 1);
    return NULL;
}

CTEST(taskq_close_wakes_every_waiting_worker)
{
    enum { N = 6 };
    mg_taskq q;
    CHECK(mg_taskq_init(&q) == MG_OK);
    atomic_int returned;
    atomic_init(&returned, 0);
    pthread_t t[N];
    sleeper s[N];
    for (int i = 0; i < N; i++) {
        s[i] = (sleeper){&q, i, &returned};
        CHECK(pthread_create(&t[i], NULL, pop_until_closed, &s[i]) == 0);
    }
    for (int i = 0; i < 2000 && atomic_load(&q.ready.nsleepers) < N; i++) {
        sleep_ms(1);
    }
    CHECK(atomic_load(&returned) == 0);
    mg_taskq_close(&q);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(atomic_load(&returned) == N);
    mg_taskq_fini(&q);
}

/* ---- a targeted task for a sleeping worker while another spins ---- */

typedef struct {
    mg_taskq q;
    atomic_long got[2];
    long rounds;
} handoff;

static void *
handoff_worker(void *arg)
{
    void **a = arg;
    handoff *h = a[0];
    int index = (int)(intptr_t)a[1];
    mg_task *t;
    /* Worker 0 spins (and takes the site's one spin slot), worker 1
     * sleeps: every task is for worker 1, so a push that woke nobody
     * because a spinner was there would leave it stuck. */
    while ((t = mg_taskq_pop(&h->q, index, index == 0 ? 1000000 : 0))
           != NULL) {
        TCHECK(t->target == index);
        atomic_fetch_add(&h->got[index], 1);
        mg_task_decref(t);
    }
    return NULL;
}

CTEST(taskq_targeted_task_wakes_its_sleeping_worker)
{
    handoff h;
    CHECK(mg_taskq_init(&h.q) == MG_OK);
    int old = mg_spin_set_global_cap(2);
    atomic_init(&h.got[0], 0);
    atomic_init(&h.got[1], 0);
    h.rounds = CT_ITERS(2000);
    pthread_t t[2];
    void *args[2][2] = {{&h, (void *)0}, {&h, (void *)1}};
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_create(&t[i], NULL, handoff_worker, args[i]) == 0);
    }
    for (long r = 1; r <= h.rounds; r++) {
        CHECK(mg_taskq_push(&h.q, task_with_id(r, 1)) == MG_OK);
        /* One at a time: the next push only once this one arrived. */
        for (int i = 0; i < 10000 && atomic_load(&h.got[1]) < r; i++) {
            if (i > 100) {
                sleep_ms(1);
            }
        }
        CHECK(atomic_load(&h.got[1]) == r);
    }
    mg_taskq_close(&h.q);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(atomic_load(&h.got[0]) == 0);
    mg_spin_set_global_cap(old);
    mg_taskq_fini(&h.q);
}

/* ---- ping-pong through two queues, like a caller and one worker ---- */

typedef struct {
    mg_taskq req, rep;
    long rounds;
} rt;

static void *
echo_worker(void *arg)
{
    rt *r = arg;
    mg_task *t;
    while ((t = mg_taskq_pop(&r->req, 0, 50000)) != NULL) {
        TCHECK(mg_taskq_push(&r->rep, t) == MG_OK);
    }
    return NULL;
}

CTEST(taskq_round_trips_lose_no_wakeup)
{
    rt r;
    CHECK(mg_taskq_init(&r.req) == MG_OK);
    CHECK(mg_taskq_init(&r.rep) == MG_OK);
    r.rounds = CT_ITERS(20000);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, echo_worker, &r) == 0);
    for (long i = 0; i < r.rounds; i++) {
        CHECK(mg_taskq_push(&r.req, task_with_id(i, -1)) == MG_OK);
        /* Alternate spinning and sleeping waits on the reply side. */
        mg_task *back = mg_taskq_pop(&r.rep, 0, i % 2 ? 50000 : 0);
        CHECK(back != NULL && task_id(back) == i);
        mg_task_decref(back);
    }
    mg_taskq_close(&r.req);
    pthread_join(t, NULL);
    mg_taskq_fini(&r.req);
    mg_taskq_fini(&r.rep);
}
