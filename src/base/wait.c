/* wait.c - event words (futex, or a condvar where there is none) and the
 * adaptive spin policy (see wait.h).
 *
 * Owns: the sleep/wake protocol of mg_wait, the spin loop, each site's
 * spin state, and the process-wide count of spinning threads.
 * Locks: none on Linux (atomics and the futex); the portable fallback
 * takes w->mu only around its condvar, never with another lock.
 * Never calls the Python C API, never sleeps while holding anything, and
 * never spins without a bound: every spin ends within its budget.
 *
 * No lost wake-up: a sleeper increments nsleepers, then sleeps only while
 * seq == seen (the futex checks it atomically); a waker bumps seq, then
 * reads nsleepers. With both sequentially consistent, either the waker
 * sees the sleeper (and wakes it) or the sleeper sees the new seq.
 */
#include "base.h"
#include "wait.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#if MG_WAIT_FUTEX
#include <linux/futex.h>
#include <sys/syscall.h>
_Static_assert(sizeof(atomic_uint) == sizeof(uint32_t),
               "the futex word is the 32-bit sequence");
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h> /* _mm_pause */
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

/* Spin policy constants. The spin loop only pauses; it never calls
 * sched_yield(): a yield hands the CPU to whatever else is runnable there
 * (a CPU-bound neighbour) for a whole time slice, and the yielder, not
 * being asleep, is not woken when its event comes: round trips of 0.5 to
 * 1 ms were measured that way beside one busy process. A waiter sharing
 * its CPU with the thread it waits for is handled by the policy instead:
 * its spins fail, and it stops spinning. */
/* A spin that finds every slot taken may wait this long for one (slots
 * change hands within a microsecond in a ping-pong between two threads). */
#define MG_SPIN_GRACE_NS 2000
/* This many spins in a row that did not pay off stop spinning for
 * `backoff` waits; then a probe window of MG_SPIN_PROBES waits spins
 * again. A win anywhere turns spinning back on; a window without one
 * doubles the pause, up to MG_SPIN_MAX_BACKOFF. A window rather than one
 * probe: two threads that wait for each other (a caller and a worker)
 * both stop spinning after a bad spell, and then a spin pays only once
 * the other side is awake again, which takes a few rounds. */
#define MG_SPIN_MAX_FAILS 2
#define MG_SPIN_PROBES 8
#define MG_SPIN_MIN_BACKOFF 4
#define MG_SPIN_MAX_BACKOFF 256

int64_t
mg_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the event word ---- */

#if MG_WAIT_FUTEX

int
mg_wait_init(mg_wait *w)
{
    atomic_init(&w->seq, 0);
    atomic_init(&w->nsleepers, 0);
    return MG_OK;
}

void
mg_wait_fini(mg_wait *w)
{
    (void)w;
}

/* Sleeps while w->seq == seen, at most rel_ns (< 0: no limit). */
static void
word_sleep(mg_wait *w, uint32_t seen, int64_t rel_ns)
{
    struct timespec ts, *tp = NULL;
    if (rel_ns >= 0) {
        ts.tv_sec = (time_t)(rel_ns / 1000000000);
        ts.tv_nsec = (long)(rel_ns % 1000000000);
        tp = &ts;
    }
    /* EAGAIN (seq moved), EINTR, ETIMEDOUT: the caller re-checks. */
    (void)syscall(SYS_futex, (uint32_t *)&w->seq, FUTEX_WAIT_PRIVATE, seen,
                  tp, NULL, 0);
}

static void
word_wake(mg_wait *w, int n)
{
    (void)syscall(SYS_futex, (uint32_t *)&w->seq, FUTEX_WAKE_PRIVATE, n,
                  NULL, NULL, 0);
}

#else /* portable fallback: a condvar beside the word */

int
mg_wait_init(mg_wait *w)
{
    atomic_init(&w->seq, 0);
    atomic_init(&w->nsleepers, 0);
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        return MG_ESYS;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_destroy(&w->mu);
        return MG_ESYS;
    }
    return MG_OK;
}

void
mg_wait_fini(mg_wait *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

static void
word_sleep(mg_wait *w, uint32_t seen, int64_t rel_ns)
{
    pthread_mutex_lock(&w->mu);
    if (atomic_load(&w->seq) == seen) {
        if (rel_ns < 0) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        else {
            int64_t at = mg_monotonic_ns() + rel_ns;
            struct timespec ts = {(time_t)(at / 1000000000),
                                  (long)(at % 1000000000)};
            (void)pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
    }
    pthread_mutex_unlock(&w->mu);
}

static void
word_wake(mg_wait *w, int n)
{
    pthread_mutex_lock(&w->mu);
    if (n == 1) {
        pthread_cond_signal(&w->cv);
    }
    else {
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

#endif

uint32_t
mg_wait_seq(mg_wait *w)
{
    return atomic_load_explicit(&w->seq, memory_order_acquire);
}

void
mg_wait_bump(mg_wait *w)
{
    atomic_fetch_add(&w->seq, 1); /* seq_cst: see the header comment */
}

void
mg_wait_wake_sleepers(mg_wait *w, int n)
{
    if (n > 0 && atomic_load(&w->nsleepers) > 0) {
        word_wake(w, n);
    }
}

void
mg_wait_wake(mg_wait *w, int n)
{
    mg_wait_bump(w);
    mg_wait_wake_sleepers(w, n);
}

/* Sleeps until w->seq != seen or until deadline_ns (< 0: none). */
static int
wait_sleep(mg_wait *w, uint32_t seen, int64_t deadline_ns)
{
    int rc = MG_OK;
    atomic_fetch_add(&w->nsleepers, 1); /* seq_cst */
    while (atomic_load(&w->seq) == seen) {
        int64_t rel = -1;
        if (deadline_ns >= 0) {
            rel = deadline_ns - mg_monotonic_ns();
            if (rel <= 0) {
                rc = MG_ETIMEDOUT;
                break;
            }
        }
        word_sleep(w, seen, rel);
    }
    atomic_fetch_sub(&w->nsleepers, 1);
    return rc;
}

/* ---- spin slots: per site and process-wide ---- */

static atomic_int global_spinners;
static atomic_int global_cap = -1; /* -1: not read from the system yet */

int
mg_spin_global_cap(void)
{
    int cap = atomic_load_explicit(&global_cap, memory_order_relaxed);
    if (cap < 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cap = n > 1 ? (int)(n - 1 > INT_MAX ? INT_MAX : n - 1) : 0;
        int expected = -1;
        if (!atomic_compare_exchange_strong(&global_cap, &expected, cap)) {
            cap = expected; /* set meanwhile (by the tests) */
        }
    }
    return cap;
}

int
mg_spin_set_global_cap(int cap)
{
    int old = mg_spin_global_cap();
    atomic_store(&global_cap, cap < 0 ? 0 : cap);
    return old;
}

int
mg_spin_global_count(void)
{
    return atomic_load(&global_spinners);
}

/* Takes one of a counter's slots if fewer than cap are taken. */
static int
slot_take(atomic_int *count, int cap)
{
    int c = atomic_load_explicit(count, memory_order_relaxed);
    while (c < cap) {
        if (atomic_compare_exchange_weak(count, &c, c + 1)) {
            return 1;
        }
    }
    return 0;
}

/* A slot at the site and one process-wide, or neither. */
static int
slots_take(mg_spinner *sp)
{
    int here = atomic_load_explicit(&sp->max_here, memory_order_relaxed);
    if (!slot_take(&sp->nspinning, here > 0 ? here : INT_MAX)) {
        return 0;
    }
    if (!slot_take(&global_spinners, mg_spin_global_cap())) {
        atomic_fetch_sub(&sp->nspinning, 1);
        return 0;
    }
    return 1;
}

static void
slots_give(mg_spinner *sp)
{
    atomic_fetch_sub(&global_spinners, 1);
    atomic_fetch_sub(&sp->nspinning, 1);
}

/* ---- the policy ---- */

int64_t
mg_spin_ns_from_us(double us)
{
    if (!(us > 0)) { /* NaN, zero, negative */
        return 0;
    }
    if (us >= (double)MG_SPIN_MAX_NS / 1000.0) {
        return MG_SPIN_MAX_NS;
    }
    return (int64_t)(us * 1000.0);
}

static int64_t
clamp_budget(int64_t ns)
{
    return ns < 0 ? 0 : ns > MG_SPIN_MAX_NS ? MG_SPIN_MAX_NS : ns;
}

void
mg_spinner_init(mg_spinner *sp, int64_t budget_ns, int max_here)
{
    atomic_init(&sp->budget_ns, clamp_budget(budget_ns));
    atomic_init(&sp->max_here, max_here);
    atomic_init(&sp->nspinning, 0);
    atomic_init(&sp->fails, 0);
    atomic_init(&sp->skip, 0);
    atomic_init(&sp->probes, 0);
    atomic_init(&sp->backoff, MG_SPIN_MIN_BACKOFF);
    sp->partner = NULL;
    atomic_init(&sp->nspins, 0);
    atomic_init(&sp->nwins, 0);
    atomic_init(&sp->nskipped, 0);
}

void
mg_spinner_pair(mg_spinner *a, mg_spinner *b)
{
    a->partner = b;
    b->partner = a;
}

void
mg_spinner_set_budget(mg_spinner *sp, int64_t budget_ns)
{
    budget_ns = clamp_budget(budget_ns);
    if (atomic_load_explicit(&sp->budget_ns, memory_order_relaxed)
        != budget_ns) {
        atomic_store_explicit(&sp->budget_ns, budget_ns,
                              memory_order_relaxed);
    }
}

int64_t
mg_spinner_budget(mg_spinner *sp)
{
    return atomic_load_explicit(&sp->budget_ns, memory_order_relaxed);
}

int
mg_spinner_would_spin(mg_spinner *sp)
{
    return mg_spinner_budget(sp) > 0
           && atomic_load_explicit(&sp->skip, memory_order_relaxed) == 0;
}

/* Whether this wait may spin, by the site's recent record. The state is
 * shared by the site's threads; its updates race benignly (relaxed
 * atomics: a lost update only shifts one probe). */
static int
policy_admits(mg_spinner *sp)
{
    if (mg_spinner_budget(sp) <= 0) {
        return 0;
    }
    unsigned skip = atomic_load_explicit(&sp->skip, memory_order_relaxed);
    if (skip > 0) {
        atomic_store_explicit(&sp->skip, skip - 1, memory_order_relaxed);
        return 0;
    }
    return 1;
}

void
mg_spinner_record(mg_spinner *sp, int won)
{
    atomic_fetch_add_explicit(&sp->nspins, 1, memory_order_relaxed);
    if (won) {
        atomic_fetch_add_explicit(&sp->nwins, 1, memory_order_relaxed);
        atomic_store_explicit(&sp->fails, 0, memory_order_relaxed);
        atomic_store_explicit(&sp->probes, 0, memory_order_relaxed);
        atomic_store_explicit(&sp->backoff, MG_SPIN_MIN_BACKOFF,
                              memory_order_relaxed);
        mg_spinner *other = sp->partner;
        if (other != NULL
            && atomic_load_explicit(&other->skip, memory_order_relaxed)) {
            atomic_store_explicit(&other->skip, 0, memory_order_relaxed);
        }
        return;
    }
    unsigned probes = atomic_load_explicit(&sp->probes, memory_order_relaxed);
    unsigned backoff = atomic_load_explicit(&sp->backoff,
                                            memory_order_relaxed);
    if (probes > 0) { /* in a probe window */
        atomic_store_explicit(&sp->probes, probes - 1, memory_order_relaxed);
        if (probes > 1) {
            return;
        }
        if (backoff < MG_SPIN_MAX_BACKOFF) {
            backoff *= 2;
            atomic_store_explicit(&sp->backoff, backoff,
                                  memory_order_relaxed);
        }
    }
    else if (atomic_fetch_add_explicit(&sp->fails, 1, memory_order_relaxed)
             + 1 < MG_SPIN_MAX_FAILS) {
        return;
    }
    atomic_store_explicit(&sp->fails, 0, memory_order_relaxed);
    atomic_store_explicit(&sp->probes, MG_SPIN_PROBES, memory_order_relaxed);
    atomic_store_explicit(&sp->skip, backoff, memory_order_relaxed);
}

/* Spins until w->seq != seen (1) or the budget is spent (0). */
static int
spin_loop(mg_wait *w, uint32_t seen, int64_t budget_ns)
{
    int64_t until = mg_monotonic_ns() + budget_ns;
    for (unsigned n = 1;; n++) {
        if (atomic_load_explicit(&w->seq, memory_order_acquire) != seen) {
            return 1;
        }
        cpu_relax();
        if ((n & 15) == 0 && mg_monotonic_ns() >= until) {
            return 0;
        }
    }
}

/* Waits up to MG_SPIN_GRACE_NS for spin slots: 1 with slots taken, 0
 * without (and *moved set if the word moved meanwhile). */
static int
slots_take_or_grace(mg_spinner *sp, mg_wait *w, uint32_t seen, int *moved)
{
    if (slots_take(sp)) {
        return 1;
    }
    int64_t until = mg_monotonic_ns() + MG_SPIN_GRACE_NS;
    for (unsigned n = 1;; n++) {
        if (atomic_load_explicit(&w->seq, memory_order_acquire) != seen) {
            *moved = 1;
            return 0;
        }
        cpu_relax();
        if ((n & 7) == 0) {
            if (slots_take(sp)) {
                return 1;
            }
            if (mg_monotonic_ns() >= until) {
                return 0;
            }
        }
    }
}

/* The spin phase of a wait, at most limit_ns: 1 if the word moved. */
static int
wait_spin(mg_wait *w, uint32_t seen, mg_spinner *sp, int64_t limit_ns)
{
    if (sp == NULL || !policy_admits(sp)) {
        if (sp != NULL) {
            atomic_fetch_add_explicit(&sp->nskipped, 1, memory_order_relaxed);
        }
        return 0;
    }
    int moved = 0;
    if (!slots_take_or_grace(sp, w, seen, &moved)) {
        atomic_fetch_add_explicit(&sp->nskipped, 1, memory_order_relaxed);
        return moved;
    }
    int64_t budget = mg_spinner_budget(sp);
    if (limit_ns >= 0 && limit_ns < budget) {
        budget = limit_ns;
    }
    int won = spin_loop(w, seen, budget);
    slots_give(sp);
    mg_spinner_record(sp, won);
    return won;
}

int
mg_spin_changed(mg_wait *w, uint32_t seen, mg_spinner *sp)
{
    if (mg_wait_seq(w) != seen) {
        return MG_OK;
    }
    return wait_spin(w, seen, sp, -1) ? MG_OK : MG_ETIMEDOUT;
}

int
mg_wait_changed(mg_wait *w, uint32_t seen, int64_t timeout_ns,
                mg_spinner *sp)
{
    if (mg_wait_seq(w) != seen) {
        return MG_OK;
    }
    if (timeout_ns == 0) {
        return MG_ETIMEDOUT;
    }
    int64_t deadline = timeout_ns < 0 ? -1 : mg_monotonic_ns() + timeout_ns;
    if (wait_spin(w, seen, sp, timeout_ns)) {
        return MG_OK;
    }
    return wait_sleep(w, seen, deadline);
}

int
mg_wait_until(mg_wait *w, uint32_t seen, int64_t deadline_ns,
              int64_t slice_ns, mg_spinner *sp)
{
    if (mg_wait_seq(w) != seen) {
        return MG_OK;
    }
    if (slice_ns <= 0) {
        slice_ns = MG_WAIT_SLICE_NS;
    }
    int64_t now = mg_monotonic_ns();
    if (deadline_ns >= 0 && now >= deadline_ns) {
        return MG_ETIMEDOUT;
    }
    int64_t left = deadline_ns < 0 ? -1 : deadline_ns - now;
    if (wait_spin(w, seen, sp, left)) {
        return MG_OK;
    }
    int64_t slice_end = mg_monotonic_ns() + slice_ns;
    int last = deadline_ns >= 0 && deadline_ns <= slice_end;
    int rc = wait_sleep(w, seen, last ? deadline_ns : slice_end);
    if (rc == MG_ETIMEDOUT && !last) {
        return MG_EINTR;
    }
    return rc;
}
