/* wait.h - the wait primitive of the core: event words and adaptive
 * spinning.
 *
 * An mg_wait is an event word: a sequence number that every wake bumps,
 * plus a count of sleepers. A waiter reads the sequence, checks its own
 * condition (under whatever protects it), and only then waits for the
 * sequence to move:
 *
 *     for (;;) {
 *         uint32_t seen = mg_wait_seq(&w);
 *         if (condition()) break;
 *         mg_wait_changed(&w, seen, timeout_ns, &spinner);
 *     }
 *
 * A wake after the read of `seen` is never lost: the wait returns at once
 * when the sequence already moved. Waits may return early (spurious wake,
 * timeout): callers always re-check their condition. A wake costs one
 * atomic add, plus a futex syscall only when some thread sleeps.
 *
 * An mg_spinner is the spin policy of one wait site (a queue, a pool's
 * results): how long a waiter spins before it sleeps. It spins only while
 * recent spins paid off, backs off to not spinning when they did not (the
 * thread it waits for shares its CPU, or the wait is long), and re-probes
 * now and then. Process-wide, no more threads spin at once than there are
 * CPUs less one. Spinners pause, never sched_yield (see wait.c).
 */
#ifndef MG_WAIT_H
#define MG_WAIT_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>

#if defined(__linux__) && !defined(MG_WAIT_NO_FUTEX)
#define MG_WAIT_FUTEX 1
#else
#define MG_WAIT_FUTEX 0
#include <pthread.h>
#endif

#define MG_WAKE_ALL INT_MAX
/* The longest spin a budget may ask for (10 ms): more is never useful. */
#define MG_SPIN_MAX_NS ((int64_t)10 * 1000 * 1000)
/* Slice of an interruptible wait: Ctrl-C is seen within this. */
#define MG_WAIT_SLICE_NS ((int64_t)50 * 1000 * 1000)

typedef struct mg_wait {
    atomic_uint seq;       /* bumped by every wake (wraps) */
    atomic_uint nsleepers; /* threads in, or entering, the sleep */
#if !MG_WAIT_FUTEX
    pthread_mutex_t mu;    /* portable fallback: guards nothing but cv */
    pthread_cond_t cv;
#endif
} mg_wait;

typedef struct mg_spinner {
    atomic_llong budget_ns; /* the longest spin; 0 = never spin */
    atomic_int max_here;    /* most threads spinning at this site at once */
    atomic_int nspinning;   /* threads spinning at this site now */
    atomic_uint fails;      /* spins in a row that did not pay off */
    atomic_uint skip;       /* waits left that do not spin (backing off) */
    atomic_uint probes;     /* spins left in the probe window after that */
    atomic_uint backoff;    /* length of the pause; doubles per failed
                               window */
    struct mg_spinner *partner; /* the site that waits for this one's
                                   waiters, or NULL (see mg_spinner_pair) */
    /* Statistics (tests, debugging): spins started, spins that saw the
     * change, waits that did not spin (policy or cap). */
    atomic_ullong nspins, nwins, nskipped;
} mg_spinner;

int mg_wait_init(mg_wait *w);
void mg_wait_fini(mg_wait *w);
/* The sequence now (acquire): read it before checking the condition. */
uint32_t mg_wait_seq(mg_wait *w);
/* Bumps the sequence (release) and wakes up to n sleepers (MG_WAKE_ALL:
 * all); the syscall is made only when some thread sleeps. */
void mg_wait_wake(mg_wait *w, int n);
/* The two halves of mg_wait_wake, for a waker that decides how many to
 * wake by state it reads after the bump (the bump must come first). */
void mg_wait_bump(mg_wait *w);
void mg_wait_wake_sleepers(mg_wait *w, int n);
/* Waits until the sequence differs from seen, at most timeout_ns (< 0:
 * forever). Spins first when sp allows it (sp may be NULL: no spin).
 * MG_OK when the sequence moved (or maybe moved: re-check),
 * MG_ETIMEDOUT when the time ran out. Call with no GIL held. */
int mg_wait_changed(mg_wait *w, uint32_t seen, int64_t timeout_ns,
                    mg_spinner *sp);
/* The interruptible form: waits until deadline_ns (mg_monotonic_ns()
 * clock; < 0: none), but returns MG_EINTR after each slice_ns of sleep
 * (<= 0: MG_WAIT_SLICE_NS) so that the caller can check for signals and
 * call again (spinning only on the first call: pass sp == NULL after). */
int mg_wait_until(mg_wait *w, uint32_t seen, int64_t deadline_ns,
                  int64_t slice_ns, mg_spinner *sp);
/* Only the spin: MG_OK if the sequence moved during it, MG_ETIMEDOUT if
 * the spin ran out or the policy said not to spin. For waiters that sleep
 * by other means. */
int mg_spin_changed(mg_wait *w, uint32_t seen, mg_spinner *sp);

/* A spin site with this budget (clamped to [0, MG_SPIN_MAX_NS]) and at
 * most max_here spinners at once (<= 0: no per-site limit). */
void mg_spinner_init(mg_spinner *sp, int64_t budget_ns, int max_here);
/* Pairs two sites whose threads wait for each other (a pool's callers
 * wait for its workers, the workers for the callers' next task): when
 * both stopped spinning, a spin of one pays only once the other spins
 * again, so a win at one ends the other's pause. Set before use. */
void mg_spinner_pair(mg_spinner *a, mg_spinner *b);
void mg_spinner_set_budget(mg_spinner *sp, int64_t budget_ns);
int64_t mg_spinner_budget(mg_spinner *sp);
/* A budget in microseconds as a user gives it (MULTIGIL_SPIN_US), made
 * safe: NaN and negatives give 0, huge values MG_SPIN_MAX_NS. */
int64_t mg_spin_ns_from_us(double us);
/* Whether the next wait at this site would spin (tests, debugging). */
int mg_spinner_would_spin(mg_spinner *sp);
/* Records the outcome of a spin (won: the change came during it); the
 * wait functions call it, tests may feed it directly. */
void mg_spinner_record(mg_spinner *sp, int won);

/* How many threads of the process may spin at once (CPUs online less
 * one, at least 0); the tests may lower it. Returns the previous cap. */
int mg_spin_set_global_cap(int cap);
int mg_spin_global_cap(void);
/* Threads spinning now, process-wide. */
int mg_spin_global_count(void);

int64_t mg_monotonic_ns(void);

#endif /* MG_WAIT_H */
