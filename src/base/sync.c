/* sync.c - the threading primitives shared by every interpreter
 * (sync.h): Event, Lock, RLock, (Bounded)Semaphore, Barrier, Condition.
 *
 * Owns: mg_sync objects (their handle kind and destroy) and every state
 * change of them.
 * Locking: s->mu guards all fields of s; it is never held while waiting
 * or waking. A Condition takes its own mu, and inside it (only in
 * mg_cond_begin) its lock's mu: the order is condition, then lock. No
 * lost wake-up: waiters read s->w's sequence before checking their
 * condition under s->mu; every change bumps s->w after it (wait.h).
 * Never: call Python; block with a mutex held.
 */
#include "base.h"
#include "sync.h"

#include <string.h>

#define SYNC_SPIN_NS ((int64_t)20 * 1000)

static void sync_destroy(mg_handle *h);

const mg_handle_kind mg_sync_kind = {"sync", MG_HANDLE_KIND_SYNC,
                                     sync_destroy};

mg_sync *
mg_sync_new(mg_sync_type type, int64_t value, mg_sync *lock)
{
    mg_sync *s = MG_RAW_CALLOC(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        MG_RAW_FREE(s);
        return NULL;
    }
    if (mg_wait_init(&s->w) != MG_OK) {
        pthread_mutex_destroy(&s->mu);
        MG_RAW_FREE(s);
        return NULL;
    }
    mg_spinner_init(&s->spin, SYNC_SPIN_NS, 1);
    s->type = type;
    s->reset_gen = -1;
    s->timeout_ns = -1;
    if (type == MG_SYNC_SEMAPHORE || type == MG_SYNC_BOUNDED) {
        s->value = value;
        s->bound = value;
    }
    else if (type == MG_SYNC_BARRIER) {
        s->bound = value;
    }
    if (lock != NULL) {
        mg_handle_incref(&lock->h);
        s->lock = lock;
    }
    mg_handle_init(&s->h, &mg_sync_kind);
    return s;
}

static void
sync_destroy(mg_handle *h)
{
    mg_sync *s = (mg_sync *)h;
    mg_sync_decref(s->lock);
    if (s->action != NULL) {
        mg_buf_release(s->action);
        MG_RAW_FREE(s->action);
    }
    mg_wait_fini(&s->w);
    pthread_mutex_destroy(&s->mu);
    MG_RAW_FREE(s);
}

mg_sync *
mg_sync_from_handle(mg_handle *h)
{
    return h != NULL && h->kind == &mg_sync_kind ? (mg_sync *)h : NULL;
}

void
mg_sync_decref(mg_sync *s)
{
    if (s != NULL) {
        mg_handle_decref(&s->h);
    }
}

/* Waits until pred(s, arg) holds under s->mu (pred may change s then).
 * MG_OK, MG_ETIMEDOUT, MG_EINTR. */
static int
sync_wait_for(mg_sync *s, int (*pred)(mg_sync *, void *), void *arg,
              int64_t deadline_ns, int64_t slice_ns, mg_spinner *sp)
{
    for (;;) {
        uint32_t seen = mg_wait_seq(&s->w);
        pthread_mutex_lock(&s->mu);
        int done = pred(s, arg);
        pthread_mutex_unlock(&s->mu);
        if (done) {
            return MG_OK;
        }
        int rc = mg_wait_until(&s->w, seen, deadline_ns, slice_ns, sp);
        sp = NULL;
        if (rc == MG_EINTR) {
            return rc;
        }
        if (rc == MG_ETIMEDOUT) {
            pthread_mutex_lock(&s->mu);
            done = pred(s, arg);
            pthread_mutex_unlock(&s->mu);
            return done ? MG_OK : MG_ETIMEDOUT;
        }
    }
}

static void
sync_changed(mg_sync *s)
{
    mg_wait_wake(&s->w, MG_WAKE_ALL);
}

/* ---- Event ---- */

/* set() also bumps generation, so a waiter that was blocked when the
 * event was set returns True even if it is cleared before the waiter
 * runs (as threading.Event: gh-57711). */
static void
event_store(mg_sync *s, int64_t v)
{
    pthread_mutex_lock(&s->mu);
    s->value = v;
    if (v) {
        s->generation++;
    }
    pthread_mutex_unlock(&s->mu);
    if (v) {
        sync_changed(s);
    }
}

void
mg_event_set(mg_sync *s)
{
    event_store(s, 1);
}

void
mg_event_clear(mg_sync *s)
{
    event_store(s, 0);
}

int
mg_event_is_set(mg_sync *s)
{
    pthread_mutex_lock(&s->mu);
    int v = s->value != 0;
    pthread_mutex_unlock(&s->mu);
    return v;
}

int64_t
mg_event_generation(mg_sync *s)
{
    pthread_mutex_lock(&s->mu);
    int64_t g = s->generation;
    pthread_mutex_unlock(&s->mu);
    return g;
}

static int
event_pred(mg_sync *s, void *arg)
{
    return s->value != 0 || s->generation != *(int64_t *)arg;
}

int
mg_event_wait(mg_sync *s, int64_t gen, int64_t deadline_ns, int64_t slice_ns)
{
    return sync_wait_for(s, event_pred, &gen, deadline_ns, slice_ns, NULL);
}

/* ---- Lock, RLock, semaphores ---- */

static int
same_owner(mg_owner a, mg_owner b)
{
    return a.interp == b.interp && a.thread == b.thread;
}

/* Takes s for *me if free (under s->mu): 1 if taken. */
static int
acquire_pred(mg_sync *s, void *arg)
{
    const mg_owner *me = arg;
    switch (s->type) {
    case MG_SYNC_RLOCK:
        if (s->value == 0) {
            s->owner = *me;
        }
        else if (!same_owner(s->owner, *me)) {
            return 0;
        }
        s->value++;
        return 1;
    case MG_SYNC_SEMAPHORE:
    case MG_SYNC_BOUNDED:
        if (s->value <= 0) {
            return 0;
        }
        s->value--;
        return 1;
    default: /* Lock */
        if (s->value != 0) {
            return 0;
        }
        s->value = 1;
        return 1;
    }
}

int
mg_sync_acquire(mg_sync *s, mg_owner me, int64_t deadline_ns,
                int64_t slice_ns, int spin)
{
    return sync_wait_for(s, acquire_pred, &me, deadline_ns, slice_ns,
                         spin ? &s->spin : NULL);
}

int
mg_sync_release(mg_sync *s, mg_owner me, int64_t n)
{
    int rc = MG_OK;
    pthread_mutex_lock(&s->mu);
    switch (s->type) {
    case MG_SYNC_RLOCK:
        if (s->value == 0 || !same_owner(s->owner, me)) {
            rc = MG_EEMPTY;
        }
        else {
            s->value--;
        }
        break;
    case MG_SYNC_BOUNDED:
        if (s->value + n > s->bound) {
            rc = MG_EFULL;
            break;
        }
        /* fall through */
    case MG_SYNC_SEMAPHORE:
        s->value += n;
        break;
    default:
        if (s->value == 0) {
            rc = MG_EEMPTY;
        }
        else {
            s->value = 0;
        }
    }
    /* An RLock frees only when its depth reaches 0. */
    int wake = rc == MG_OK && (s->type != MG_SYNC_RLOCK || s->value == 0);
    pthread_mutex_unlock(&s->mu);
    if (wake) {
        sync_changed(s);
    }
    return rc;
}

int
mg_sync_locked(mg_sync *s)
{
    pthread_mutex_lock(&s->mu);
    int v = s->type == MG_SYNC_SEMAPHORE || s->type == MG_SYNC_BOUNDED
                ? s->value == 0 : s->value != 0;
    pthread_mutex_unlock(&s->mu);
    return v;
}

int
mg_sync_owned(mg_sync *s, mg_owner me)
{
    pthread_mutex_lock(&s->mu);
    int v = s->value != 0
            && (s->type != MG_SYNC_RLOCK || same_owner(s->owner, me));
    pthread_mutex_unlock(&s->mu);
    return v;
}

int64_t
mg_rlock_count(mg_sync *s, mg_owner me)
{
    pthread_mutex_lock(&s->mu);
    int64_t n = s->value != 0 && same_owner(s->owner, me) ? s->value : 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- Barrier ---- */

int
mg_barrier_enter(mg_sync *s, int64_t *index, int64_t *gen, int *released)
{
    int rc = MG_OK;
    *released = 0;
    pthread_mutex_lock(&s->mu);
    if (s->broken) {
        rc = MG_EBROKEN;
    }
    else if (s->acting) {
        rc = MG_EFULL; /* the last arrival runs the action: wait_idle */
    }
    else {
        *gen = s->generation;
        *index = s->count++;
        if (s->count == s->bound && s->has_action) {
            s->acting = 1;
            *released = 2;
        }
        else if (s->count == s->bound) {
            s->count = 0;
            s->generation++;
            *released = 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (*released == 1) {
        sync_changed(s);
    }
    return rc;
}

int
mg_barrier_set_action(mg_sync *s, mg_buf *action)
{
    mg_buf *b = MG_RAW_CALLOC(1, sizeof(*b));
    if (b == NULL) {
        return MG_ENOMEM;
    }
    mg_buf_move(b, action);
    pthread_mutex_lock(&s->mu);
    int first = s->action == NULL;
    if (first) {
        s->action = b; /* never changes again: readers need no lock */
    }
    pthread_mutex_unlock(&s->mu);
    if (!first) {
        mg_buf_release(b);
        MG_RAW_FREE(b);
    }
    return MG_OK;
}

const mg_buf *
mg_barrier_action(mg_sync *s)
{
    pthread_mutex_lock(&s->mu);
    const mg_buf *b = s->action;
    pthread_mutex_unlock(&s->mu);
    return b;
}

/* The action of generation gen is over: release its waiters (ok) or break
 * the barrier. A reset or abort during the action wins: generation gen is
 * already over then, and only acting is cleared. */
void
mg_barrier_finish(mg_sync *s, int64_t gen, int ok)
{
    pthread_mutex_lock(&s->mu);
    s->acting = 0;
    if (s->generation == gen && !s->broken) {
        if (ok) {
            s->count = 0;
            s->generation++;
        }
        else {
            s->broken = 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    sync_changed(s);
}

static int
barrier_idle_pred(mg_sync *s, void *arg)
{
    (void)arg;
    return !s->acting || s->broken;
}

int
mg_barrier_wait_idle(mg_sync *s, int64_t deadline_ns, int64_t slice_ns)
{
    return sync_wait_for(s, barrier_idle_pred, NULL, deadline_ns, slice_ns,
                         NULL);
}

/* 1 once generation *gen is over (released, reset or broken); *gen
 * becomes the verdict: 0 released, 1 broken. */
static int
barrier_pred(mg_sync *s, void *arg)
{
    int64_t *gen = arg;
    if (s->broken || s->reset_gen == *gen) {
        *gen = 1;
        return 1;
    }
    if (s->generation != *gen) {
        *gen = 0;
        return 1;
    }
    return 0;
}

int
mg_barrier_wait_gen(mg_sync *s, int64_t gen, int64_t deadline_ns,
                    int64_t slice_ns)
{
    int64_t g = gen;
    int rc = sync_wait_for(s, barrier_pred, &g, deadline_ns, slice_ns, NULL);
    if (rc == MG_ETIMEDOUT) {
        mg_barrier_abort(s);
        return MG_EBROKEN;
    }
    if (rc == MG_OK && g == 1) {
        return MG_EBROKEN;
    }
    return rc;
}

void
mg_barrier_abort(mg_sync *s)
{
    pthread_mutex_lock(&s->mu);
    s->broken = 1;
    pthread_mutex_unlock(&s->mu);
    sync_changed(s);
}

void
mg_barrier_reset(mg_sync *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->count > 0) {
        s->reset_gen = s->generation; /* its waiters see it broken */
    }
    s->generation++;
    s->count = 0;
    s->broken = 0;
    pthread_mutex_unlock(&s->mu);
    sync_changed(s);
}

int64_t
mg_barrier_n_waiting(mg_sync *s)
{
    pthread_mutex_lock(&s->mu);
    int64_t n = s->broken ? 0 : s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int
mg_barrier_broken(mg_sync *s)
{
    pthread_mutex_lock(&s->mu);
    int b = s->broken;
    pthread_mutex_unlock(&s->mu);
    return b;
}

/* ---- Condition ---- */

int
mg_cond_begin(mg_sync *c, mg_owner me, mg_cond_waiter *w, int64_t *saved)
{
    mg_sync *l = c->lock;
    int rc = MG_OK;
    w->next = NULL;
    w->notified = 0;
    pthread_mutex_lock(&c->mu);
    pthread_mutex_lock(&l->mu);
    if (l->value == 0
        || (l->type == MG_SYNC_RLOCK && !same_owner(l->owner, me))) {
        rc = MG_EEMPTY;
    }
    else {
        *saved = l->value;
        l->value = 0;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc == MG_OK) {
        if (c->wtail != NULL) {
            c->wtail->next = w;
        }
        else {
            c->whead = w;
        }
        c->wtail = w;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc == MG_OK) {
        sync_changed(l);
    }
    return rc;
}

static int
notified_pred(mg_sync *c, void *arg)
{
    (void)c;
    return ((mg_cond_waiter *)arg)->notified;
}

/* Unlinks w if still queued; c->mu is held. */
static void
cond_unlink_locked(mg_sync *c, mg_cond_waiter *w)
{
    mg_cond_waiter *prev = NULL;
    for (mg_cond_waiter *it = c->whead; it != NULL; prev = it, it = it->next) {
        if (it != w) {
            continue;
        }
        if (prev != NULL) {
            prev->next = w->next;
        }
        else {
            c->whead = w->next;
        }
        if (c->wtail == w) {
            c->wtail = prev;
        }
        return;
    }
}

int
mg_cond_wait(mg_sync *c, mg_cond_waiter *w, int64_t deadline_ns,
             int64_t slice_ns)
{
    int rc = sync_wait_for(c, notified_pred, w, deadline_ns, slice_ns, NULL);
    if (rc == MG_ETIMEDOUT) {
        pthread_mutex_lock(&c->mu);
        if (w->notified) {
            rc = MG_OK; /* notified with the deadline: a wake, not lost */
        }
        else {
            cond_unlink_locked(c, w);
        }
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

typedef struct {
    mg_owner me;
    int64_t saved;
} restore_arg;

static int
restore_pred(mg_sync *l, void *arg)
{
    const restore_arg *r = arg;
    if (l->value != 0) {
        return 0;
    }
    l->owner = r->me;
    l->value = r->saved;
    return 1;
}

int
mg_cond_restore(mg_sync *c, mg_owner me, int64_t saved, int64_t slice_ns)
{
    restore_arg r = {me, saved};
    return sync_wait_for(c->lock, restore_pred, &r, -1, slice_ns, NULL);
}

int
mg_cond_notify(mg_sync *c, mg_owner me, int64_t n)
{
    if (!mg_sync_owned(c->lock, me)) {
        return MG_EEMPTY;
    }
    pthread_mutex_lock(&c->mu);
    for (int64_t i = 0; i < n && c->whead != NULL; i++) {
        mg_cond_waiter *w = c->whead;
        c->whead = w->next;
        if (c->whead == NULL) {
            c->wtail = NULL;
        }
        w->next = NULL;
        w->notified = 1;
    }
    pthread_mutex_unlock(&c->mu);
    sync_changed(c);
    return MG_OK;
}
