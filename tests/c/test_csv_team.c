/* test_csv_team.c - the CSV reader's team of threads (src/base/csv_par.c):
 * every task of every stage runs exactly once, a stage's writes are seen
 * by the caller when run returns and by the helpers in the next stage,
 * and teams of any size start and stop cleanly, many times over. */
#include "ctest.h"
#include "csv.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define NTASKS 64

typedef struct counts {
    atomic_int ran[NTASKS];
    int value[NTASKS]; /* plain: written by a task, read after the stage */
    int stage;
} counts;

static void
count_task(void *ctx, size_t i)
{
    counts *c = ctx;
    atomic_fetch_add(&c->ran[i], 1);
    /* Reads the previous stage's plain write of the same slot. */
    c->value[i] = c->value[i] + c->stage;
}

CTEST(csv_team_runs_every_task_once_per_stage)
{
    for (int nthreads = 1; nthreads <= 5; nthreads++) {
        mg_csv_team *t = mg_csv_team_new(nthreads);
        CHECK(t != NULL);
        CHECK(mg_csv_team_size(t) == nthreads);
        counts c;
        memset(&c, 0, sizeof(c));
        int want = 0;
        for (int stage = 1; stage <= 300; stage++) {
            size_t n = (size_t)(stage % NTASKS) + 1;
            c.stage = stage;
            mg_csv_team_run(t, n, count_task, &c);
            for (size_t i = 0; i < NTASKS; i++) {
                int expect = 0;
                for (int s = 1; s <= stage; s++) {
                    expect += (size_t)(s % NTASKS) + 1 > i;
                }
                CHECK(atomic_load(&c.ran[i]) == expect);
            }
            want += stage;
        }
        /* Task 0 ran in every stage: the sum of the stage numbers. */
        CHECK(c.value[0] == want);
        mg_csv_team_free(t);
    }
}

CTEST(csv_team_starts_and_stops_many_times)
{
    for (int k = 0; k < CT_ITERS(200); k++) {
        mg_csv_team *t = mg_csv_team_new(1 + k % 4);
        CHECK(t != NULL);
        counts c;
        memset(&c, 0, sizeof(c));
        c.stage = 1;
        if (k % 3 == 0) {
            mg_csv_team_run(t, NTASKS, count_task, &c);
            CHECK(atomic_load(&c.ran[NTASKS - 1]) == 1);
        }
        mg_csv_team_free(t); /* also a team that never ran a stage */
    }
    /* A NULL team (out of memory) runs the tasks on the caller. */
    counts c;
    memset(&c, 0, sizeof(c));
    mg_csv_team_run(NULL, 3, count_task, &c);
    CHECK(atomic_load(&c.ran[2]) == 1);
    CHECK(mg_csv_team_size(NULL) == 1);
}

typedef struct masks {
    pthread_t caller;
    atomic_int helper_tasks, helper_unblocked;
} masks;

static void
mask_task(void *ctx, size_t i)
{
    masks *m = ctx;
    (void)i;
    if (pthread_equal(pthread_self(), m->caller)) {
        return;
    }
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    atomic_fetch_add(&m->helper_tasks, 1);
    if (!sigismember(&cur, SIGINT) || !sigismember(&cur, SIGTERM)) {
        atomic_fetch_add(&m->helper_unblocked, 1);
    }
    usleep(1000); /* long enough that the helper takes some tasks */
}

CTEST(csv_team_helpers_block_signals)
{
    sigset_t before, after;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    mg_csv_team *t = mg_csv_team_new(3);
    CHECK(t != NULL);
    masks m = {pthread_self(), 0, 0};
    for (int k = 0; k < 20 && atomic_load(&m.helper_tasks) == 0; k++) {
        mg_csv_team_run(t, 16, mask_task, &m);
    }
    mg_csv_team_free(t);
    CHECK(atomic_load(&m.helper_tasks) > 0);
    CHECK(atomic_load(&m.helper_unblocked) == 0);
    /* The caller's own mask is as it was. */
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    CHECK(sigismember(&before, SIGINT) == sigismember(&after, SIGINT));
}
