/* csv_par.c - the CSV reader's fan-out of independent tasks over threads
 * (mg_csv_parallel, csv.h).
 *
 * Owns: short-lived pthreads that take task indexes from one atomic
 * counter until none is left; the caller joins them before it returns.
 * No locks (the counter is atomic), no global state. The tasks are plain C
 * and never call into Python; a thread that cannot start is simply not
 * there, the others (and the calling thread) take its tasks.
 */
#include "csv.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_THREADS 256

typedef struct fanout {
    atomic_size_t next;
    size_t n;
    void (*fn)(void *, size_t);
    void *ctx;
} fanout;

static void *
worker(void *arg)
{
    fanout *f = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&f->next, 1);
        if (i >= f->n) {
            return NULL;
        }
        f->fn(f->ctx, i);
    }
}

int
mg_csv_parallel(size_t n, int nthreads, void (*fn)(void *, size_t),
                void *ctx)
{
    fanout f;
    atomic_init(&f.next, 0);
    f.n = n;
    f.fn = fn;
    f.ctx = ctx;
    if (nthreads > MAX_THREADS) {
        nthreads = MAX_THREADS;
    }
    if ((size_t)nthreads > n) {
        nthreads = (int)n;
    }
    pthread_t th[MAX_THREADS];
    int started = 0;
    for (int i = 1; i < nthreads; i++) {
        if (pthread_create(&th[started], NULL, worker, &f) != 0) {
            break;
        }
        started++;
    }
    (void)worker(&f);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    return nthreads > 1 && started == 0 ? MG_ESYS : MG_OK;
}
