/* registry.c - every live C pool of the process, by owner interpreter.
 *
 * Owns: the list of pools whose worker threads may still run Python. An
 * interpreter's exit path (multigil/pool.py, via _core._live_pools) walks
 * its own pools here, orphans included (a pool whose owner object died on
 * one of its own workers), and ends them before the interpreter finalizes.
 * A pool enters when it starts and leaves when its threads are done and
 * its owner object is gone (or has joined it).
 * Locks: registry_mu only, never nested with any other lock, held only to
 * link, unlink or copy the list (no user code, no waiting, no GIL needed).
 */
#include "engine.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static mg_pool *registry_head; /* under registry_mu; oldest first */
static mg_pool *registry_tail;

void
mg_registry_add(mg_pool *p)
{
    mg_pool_incref(p);
    pthread_mutex_lock(&registry_mu);
    p->reg_next = NULL;
    p->reg_prev = registry_tail;
    if (registry_tail != NULL) {
        registry_tail->reg_next = p;
    }
    else {
        registry_head = p;
    }
    registry_tail = p;
    pthread_mutex_unlock(&registry_mu);
}

void
mg_registry_remove(mg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int was = !p->unregistered;
    p->unregistered = 1;
    pthread_mutex_unlock(&p->mu);
    if (!was) {
        return;
    }
    pthread_mutex_lock(&registry_mu);
    if (p->reg_prev != NULL) {
        p->reg_prev->reg_next = p->reg_next;
    }
    else {
        registry_head = p->reg_next;
    }
    if (p->reg_next != NULL) {
        p->reg_next->reg_prev = p->reg_prev;
    }
    else {
        registry_tail = p->reg_prev;
    }
    p->reg_prev = p->reg_next = NULL;
    pthread_mutex_unlock(&registry_mu);
    mg_pool_decref(p);
}

mg_pool **
mg_registry_snapshot(int64_t owner_id, size_t *n)
{
    mg_pool **out = NULL;
    size_t count = 0, cap = 0;
    pthread_mutex_lock(&registry_mu);
    for (mg_pool *p = registry_head; p != NULL; p = p->reg_next) {
        if (p->owner_id != owner_id) {
            continue;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            mg_pool **grown = MG_RAW_REALLOC(out, ncap * sizeof(*out));
            if (grown == NULL) {
                break; /* the caller gets what fitted */
            }
            out = grown;
            cap = ncap;
        }
        mg_pool_incref(p);
        out[count++] = p;
    }
    pthread_mutex_unlock(&registry_mu);
    *n = count;
    if (count == 0) {
        MG_RAW_FREE(out);
        return NULL;
    }
    return out;
}
