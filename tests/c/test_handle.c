/* test_handle.c - refcounted handles (src/base/handle.c): the last
 * reference, dropped on any thread, destroys the handle exactly once.
 * handle.{c,h} come from the codec branch: without them this file
 * compiles to nothing and `make ctest` runs the other tests. */
#if __has_include("handle.h")
#include "ctest.h"
#include "base.h"
#include "handle.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    mg_handle h; /* first: the kind's destroy gets &h */
    int payload;
} thing;

static atomic_int destroyed;
static atomic_int destroyed_payload;

static void
thing_destroy(mg_handle *h)
{
    thing *t = (thing *)h;
    atomic_fetch_add(&destroyed, 1);
    atomic_store(&destroyed_payload, t->payload);
    free(t);
}

static const mg_handle_kind thing_kind = {"test.thing", 0x7e57, thing_destroy};

static thing *
thing_new(int payload)
{
    thing *t = malloc(sizeof(*t));
    if (t != NULL) {
        mg_handle_init(&t->h, &thing_kind);
        t->payload = payload;
    }
    return t;
}

CTEST(handle_init_incref_decref)
{
    atomic_store(&destroyed, 0);
    thing *t = thing_new(41);
    CHECK(t != NULL);
    CHECK(mg_handle_refcnt(&t->h) == 1);
    CHECK(t->h.kind == &thing_kind);
    mg_handle_incref(&t->h);
    mg_handle_incref(&t->h);
    CHECK(mg_handle_refcnt(&t->h) == 3);
    mg_handle_decref(&t->h);
    mg_handle_decref(&t->h);
    CHECK(atomic_load(&destroyed) == 0);
    CHECK(mg_handle_refcnt(&t->h) == 1);
    mg_handle_decref(&t->h); /* the last: destroys */
    CHECK(atomic_load(&destroyed) == 1);
    CHECK(atomic_load(&destroyed_payload) == 41);
}

typedef struct {
    mg_handle *h;
    int n;
    int keep; /* references this thread drops at the end */
} holder;

static void *
hold_and_drop(void *arg)
{
    holder *hd = arg;
    for (int i = 0; i < hd->n; i++) {
        mg_handle_incref(hd->h);
        mg_handle_decref(hd->h);
    }
    for (int i = 0; i < hd->keep; i++) {
        mg_handle_decref(hd->h);
    }
    return NULL;
}

CTEST(handle_last_decref_on_any_thread_destroys_once)
{
    enum { N = 8 };
    for (int round = 0; round < CT_ITERS(200); round++) {
        atomic_store(&destroyed, 0);
        thing *t = thing_new(round);
        CHECK(t != NULL);
        /* Each thread owns one reference and drops it when done; the
         * creator's reference goes first, so the last drop happens on
         * whichever thread finishes last. */
        for (int i = 0; i < N; i++) {
            mg_handle_incref(&t->h);
        }
        holder hd = {&t->h, CT_ITERS(1000), 1};
        pthread_t th[N];
        for (int i = 0; i < N; i++) {
            CHECK(pthread_create(&th[i], NULL, hold_and_drop, &hd) == 0);
        }
        mg_handle_decref(&t->h);
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
        }
        CHECK(atomic_load(&destroyed) == 1);
        CHECK(atomic_load(&destroyed_payload) == round);
    }
}
#else
typedef int mg_test_handle_absent; /* ISO C wants a declaration */
#endif
