/* sync.h - mg_sync: the threading primitives (Event, Lock, RLock,
 * Semaphore, BoundedSemaphore, Barrier, Condition) as one handle kind
 * (id 3) that threads of every interpreter share.
 *
 * One struct serves every type (the fields a type does not use stay 0).
 * An owner (RLock, Condition over an RLock) is the pair (interpreter id,
 * thread id): one OS thread may run several interpreters, and each of its
 * interpreters is a different owner. Blocking calls take a deadline
 * (mg_monotonic_ns clock; < 0 none; 0 do not wait) and return MG_EINTR
 * after each slice so the caller can check signals and call again.
 * Call with no GIL held.
 */
#ifndef MG_SYNC_H
#define MG_SYNC_H

#include <pthread.h>
#include <stdint.h>
#include "buf.h"
#include "handle.h"
#include "wait.h"

#define MG_HANDLE_KIND_SYNC 3u
extern const mg_handle_kind mg_sync_kind;

typedef enum mg_sync_type {
    MG_SYNC_EVENT = 0,
    MG_SYNC_LOCK,
    MG_SYNC_RLOCK,
    MG_SYNC_SEMAPHORE,
    MG_SYNC_BOUNDED,
    MG_SYNC_BARRIER,
    MG_SYNC_CONDITION,
    MG_SYNC_NTYPES
} mg_sync_type;

typedef struct mg_owner {
    int64_t interp;
    uint64_t thread;
} mg_owner;

/* A Condition waiter: lives on the waiting thread's stack while queued. */
typedef struct mg_cond_waiter {
    struct mg_cond_waiter *next;
    int notified; /* under the condition's mu */
} mg_cond_waiter;

typedef struct mg_sync {
    mg_handle h;
    mg_sync_type type;
    pthread_mutex_t mu; /* guards every field below */
    mg_wait w;          /* bumped by every change a waiter waits for */
    mg_spinner spin;
    int64_t value;      /* event: set; lock: held; rlock: depth;
                           semaphore: counter */
    int64_t bound;      /* bounded semaphore: initial value; barrier:
                           parties */
    mg_owner owner;     /* rlock */
    int64_t count;      /* barrier: threads arrived in this generation */
    int64_t generation; /* barrier: bumped by each release and reset;
                           event: by each set */
    int64_t reset_gen;  /* barrier: the generation a reset broke, or -1 */
    int broken;         /* barrier */
    int64_t timeout_ns; /* barrier: default wait timeout (< 0: none) */
    int has_action;     /* barrier: the last arrival runs an action */
    mg_buf *action;     /* barrier: the encoded action (owned), set once
                           when the barrier first leaves its interpreter */
    int acting;         /* barrier: the last arrival is running action */
    struct mg_sync *lock;          /* condition: its lock (a reference) */
    mg_cond_waiter *whead, *wtail; /* condition: waiters in FIFO order */
} mg_sync;

/* A new primitive of type with one reference, or NULL. value: the
 * semaphore's start value, or the barrier's parties; lock: the lock of a
 * condition (a Lock or RLock; it takes a reference). */
mg_sync *mg_sync_new(mg_sync_type type, int64_t value, mg_sync *lock);
mg_sync *mg_sync_from_handle(mg_handle *h);
void mg_sync_decref(mg_sync *s);

/* Event */
void mg_event_set(mg_sync *s);
void mg_event_clear(mg_sync *s);
int mg_event_is_set(mg_sync *s);
/* Waits until the event is set, or was set since generation gen (read
 * with mg_event_generation when the wait began). */
int64_t mg_event_generation(mg_sync *s);
int mg_event_wait(mg_sync *s, int64_t gen, int64_t deadline_ns,
                  int64_t slice_ns);

/* Lock, RLock, Semaphore, BoundedSemaphore. acquire: MG_OK, MG_ETIMEDOUT,
 * MG_EINTR. release: MG_OK, or MG_EEMPTY (not held / not the owner) or
 * MG_EFULL (a bounded semaphore released too many times). */
int mg_sync_acquire(mg_sync *s, mg_owner me, int64_t deadline_ns,
                    int64_t slice_ns, int spin);
int mg_sync_release(mg_sync *s, mg_owner me, int64_t n);
/* Lock/semaphore: held (value 0 for a semaphore); rlock: held by anyone. */
int mg_sync_locked(mg_sync *s);
/* Lock: held; rlock: held by me. */
int mg_sync_owned(mg_sync *s, mg_owner me);
/* RLock: its depth if me holds it, else 0. */
int64_t mg_rlock_count(mg_sync *s, mg_owner me);

/* Barrier. enter: MG_OK with *index and *gen; the last to arrive releases
 * the others (*released = 1) and need not wait, or, when the barrier has
 * an action, must run it first (*released = 2) and then call finish with
 * ok = 1 (release) or 0 (the action failed: the barrier breaks). While an
 * action runs, enter gives MG_EFULL: wait_idle, then enter again.
 * wait_gen waits for the release: MG_OK, MG_EBROKEN (aborted, reset, or
 * timed out: the barrier breaks), MG_EINTR. has_action is set at creation;
 * set_action moves the encoded action out of *action into the barrier the
 * first time (later calls drop theirs), and action() returns it (NULL
 * before): it never changes once set. */
int mg_barrier_enter(mg_sync *s, int64_t *index, int64_t *gen,
                     int *released);
int mg_barrier_set_action(mg_sync *s, mg_buf *action);
const mg_buf *mg_barrier_action(mg_sync *s);
void mg_barrier_finish(mg_sync *s, int64_t gen, int ok);
int mg_barrier_wait_idle(mg_sync *s, int64_t deadline_ns, int64_t slice_ns);
int mg_barrier_wait_gen(mg_sync *s, int64_t gen, int64_t deadline_ns,
                        int64_t slice_ns);
void mg_barrier_abort(mg_sync *s);
void mg_barrier_reset(mg_sync *s);
int64_t mg_barrier_n_waiting(mg_sync *s);
int mg_barrier_broken(mg_sync *s);

/* Condition. begin: queues w and releases the lock fully (its state into
 * *saved); MG_EEMPTY if me does not hold it. wait: waits for w's notify
 * (MG_OK, MG_ETIMEDOUT: w is unqueued, MG_EINTR). Then restore re-takes
 * the lock with saved (blocking; MG_EINTR: call again). */
int mg_cond_begin(mg_sync *c, mg_owner me, mg_cond_waiter *w,
                  int64_t *saved);
int mg_cond_wait(mg_sync *c, mg_cond_waiter *w, int64_t deadline_ns,
                 int64_t slice_ns);
int mg_cond_restore(mg_sync *c, mg_owner me, int64_t saved,
                    int64_t slice_ns);
/* Wakes up to n waiters (MG_EEMPTY if me does not hold the lock). */
int mg_cond_notify(mg_sync *c, mg_owner me, int64_t n);

#endif
