/* test_wait.c - the event word and the spin policy (src/base/wait.c):
 * no lost wake-ups under ping-pong, timeouts, wake-all, interruptible
 * slices, the policy's back-off and the spinner caps. */
#include "ctest.h"
#include "base.h"
#include "wait.h"

#include <math.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define MS ((int64_t)1000000)
/* A wait the tests expect to end: a lost wake-up shows as this timeout
 * (a failure) instead of a hang. */
#define WATCHDOG_NS ((int64_t)10000 * MS)

CTEST(wait_seq_moves_on_every_wake)
{
    mg_wait w;
    CHECK(mg_wait_init(&w) == MG_OK);
    uint32_t s0 = mg_wait_seq(&w);
    mg_wait_wake(&w, 1);
    CHECK(mg_wait_seq(&w) == s0 + 1);
    mg_wait_wake(&w, MG_WAKE_ALL);
    mg_wait_bump(&w);
    CHECK(mg_wait_seq(&w) == s0 + 3);
    /* Already moved: returns at once, with or without a timeout. */
    CHECK(mg_wait_changed(&w, s0, 0, NULL) == MG_OK);
    CHECK(mg_wait_changed(&w, s0, -1, NULL) == MG_OK);
    CHECK(mg_spin_changed(&w, s0, NULL) == MG_OK);
    /* Not moved, no time: a poll. */
    CHECK(mg_wait_changed(&w, s0 + 3, 0, NULL) == MG_ETIMEDOUT);
    mg_wait_fini(&w);
}

CTEST(wait_timeout_is_honoured)
{
    mg_wait w;
    mg_spinner sp;
    CHECK(mg_wait_init(&w) == MG_OK);
    mg_spinner_init(&sp, 50 * 1000, 0);
    uint32_t seen = mg_wait_seq(&w);
    for (int i = 0; i < 3; i++) {
        int64_t t0 = mg_monotonic_ns();
        CHECK(mg_wait_changed(&w, seen, 20 * MS, &sp) == MG_ETIMEDOUT);
        int64_t dt = mg_monotonic_ns() - t0;
        CHECK(dt >= 20 * MS);         /* never early */
        CHECK(dt < WATCHDOG_NS);      /* and it does end */
    }
    mg_wait_fini(&w);
}

CTEST(wait_until_returns_eintr_per_slice_then_times_out)
{
    mg_wait w;
    CHECK(mg_wait_init(&w) == MG_OK);
    uint32_t seen = mg_wait_seq(&w);
    int64_t deadline = mg_monotonic_ns() + 60 * MS;
    int slices = 0, rc;
    while ((rc = mg_wait_until(&w, seen, deadline, 10 * MS, NULL))
           == MG_EINTR) {
        slices++;
        CHECK(slices < 1000);
    }
    CHECK(rc == MG_ETIMEDOUT);
    CHECK(mg_monotonic_ns() >= deadline);
    CHECK(slices >= 1); /* 60 ms in slices of 10 ms */
    /* A past deadline: no wait at all. */
    CHECK(mg_wait_until(&w, seen, 0, 0, NULL) == MG_ETIMEDOUT);
    mg_wait_wake(&w, 1);
    CHECK(mg_wait_until(&w, seen, -1, 0, NULL) == MG_OK);
    mg_wait_fini(&w);
}

/* ---- ping-pong: two threads hand a counter back and forth ---- */

typedef struct {
    mg_wait w[2];        /* w[i]: "it is side i's turn" */
    atomic_long turn[2]; /* the round side i may play */
    mg_spinner sp[2];
    long rounds;
    int use_spin;
} pingpong;

/* Waits until p->turn[side] >= round. */
static int
pp_wait_turn(pingpong *p, int side, long round)
{
    for (;;) {
        uint32_t seen = mg_wait_seq(&p->w[side]);
        if (atomic_load(&p->turn[side]) >= round) {
            return 1;
        }
        int rc = mg_wait_changed(&p->w[side], seen, WATCHDOG_NS,
                                 p->use_spin ? &p->sp[side] : NULL);
        if (rc == MG_ETIMEDOUT) {
            return 0;
        }
    }
}

static void *
pp_side(void *arg)
{
    void **a = arg;
    pingpong *p = a[0];
    int side = (int)(intptr_t)a[1];
    for (long r = 1; r <= p->rounds; r++) {
        TCHECK(pp_wait_turn(p, side, r));
        atomic_store(&p->turn[1 - side], side == 0 ? r : r + 1);
        mg_wait_wake(&p->w[1 - side], 1);
    }
    return NULL;
}

static void
pingpong_run(int use_spin, long rounds)
{
    pingpong p;
    for (int i = 0; i < 2; i++) {
        CHECK(mg_wait_init(&p.w[i]) == MG_OK);
        atomic_init(&p.turn[i], 0);
        mg_spinner_init(&p.sp[i], 20 * 1000, 0);
    }
    atomic_store(&p.turn[0], 1);
    p.rounds = rounds;
    p.use_spin = use_spin;
    pthread_t t[2];
    void *args[2][2] = {{&p, (void *)0}, {&p, (void *)1}};
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_create(&t[i], NULL, pp_side, args[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(atomic_load(&p.turn[1]) == rounds);
    CHECK(atomic_load(&p.turn[0]) == rounds + 1);
    for (int i = 0; i < 2; i++) {
        CHECK(atomic_load(&p.w[i].nsleepers) == 0);
        mg_wait_fini(&p.w[i]);
    }
}

CTEST(wait_pingpong_sleeping_loses_no_wakeup)
{
    pingpong_run(0, CT_ITERS(20000));
}

CTEST(wait_pingpong_spinning_loses_no_wakeup)
{
    int old = mg_spin_set_global_cap(2);
    pingpong_run(1, CT_ITERS(50000));
    mg_spin_set_global_cap(old);
}

/* ---- wake-all and wake-one ---- */

typedef struct {
    mg_wait w;
    atomic_int go;
    atomic_int woke;
    atomic_int asleep;
} crowd;

static void *
crowd_member(void *arg)
{
    crowd *c = arg;
    for (;;) {
        uint32_t seen = mg_wait_seq(&c->w);
        if (atomic_load(&c->go)) {
            break;
        }
        atomic_fetch_add(&c->asleep, 1);
        int rc = mg_wait_changed(&c->w, seen, WATCHDOG_NS, NULL);
        atomic_fetch_sub(&c->asleep, 1);
        TCHECK(rc == MG_OK);
    }
    atomic_fetch_add(&c->woke, 1);
    return NULL;
}

CTEST(wait_wake_all_wakes_every_sleeper)
{
    enum { N = 8 };
    crowd c;
    CHECK(mg_wait_init(&c.w) == MG_OK);
    atomic_init(&c.go, 0);
    atomic_init(&c.woke, 0);
    atomic_init(&c.asleep, 0);
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        CHECK(pthread_create(&t[i], NULL, crowd_member, &c) == 0);
    }
    /* Let them go to sleep (not needed for correctness: a late one sees
     * go set, or the moved sequence). */
    int64_t until = mg_monotonic_ns() + 2000 * MS;
    while (atomic_load(&c.w.nsleepers) < N && mg_monotonic_ns() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&c.go, 1);
    mg_wait_wake(&c.w, MG_WAKE_ALL);
    /* Woken by the wake, not by their own (much later) timeout. */
    until = mg_monotonic_ns() + WATCHDOG_NS / 2;
    while (atomic_load(&c.woke) < N && mg_monotonic_ns() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int woke = atomic_load(&c.woke);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(woke == N);
    CHECK(atomic_load(&c.w.nsleepers) == 0);
    mg_wait_fini(&c.w);
}

typedef struct {
    mg_wait w;
    atomic_int tokens; /* each wake(1) hands out one */
    atomic_int taken;
    int per_thread;
} tokens;

static void *
token_taker(void *arg)
{
    tokens *k = arg;
    for (int got = 0; got < k->per_thread;) {
        uint32_t seen = mg_wait_seq(&k->w);
        int n = atomic_load(&k->tokens), took = 0;
        while (n > 0 && !took) { /* a failed CAS reloads n: retry */
            took = atomic_compare_exchange_weak(&k->tokens, &n, n - 1);
        }
        if (took) {
            got++;
            atomic_fetch_add(&k->taken, 1);
            continue;
        }
        TCHECK(mg_wait_changed(&k->w, seen, WATCHDOG_NS, NULL) == MG_OK);
    }
    return NULL;
}

CTEST(wait_wake_one_per_token_reaches_every_token)
{
    enum { N = 4 };
    tokens k;
    CHECK(mg_wait_init(&k.w) == MG_OK);
    atomic_init(&k.tokens, 0);
    atomic_init(&k.taken, 0);
    k.per_thread = CT_ITERS(2000);
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        CHECK(pthread_create(&t[i], NULL, token_taker, &k) == 0);
    }
    for (int i = 0; i < N * k.per_thread; i++) {
        atomic_fetch_add(&k.tokens, 1);
        mg_wait_wake(&k.w, 1); /* one sleeper per token, never all */
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(atomic_load(&k.taken) == N * k.per_thread);
    CHECK(atomic_load(&k.tokens) == 0);
    mg_wait_fini(&k.w);
}

/* ---- the policy ---- */

CTEST(spin_budget_from_user_values_is_clamped)
{
    CHECK(mg_spin_ns_from_us(NAN) == 0);
    CHECK(mg_spin_ns_from_us(-NAN) == 0);
    CHECK(mg_spin_ns_from_us(-1.0) == 0);
    CHECK(mg_spin_ns_from_us(-INFINITY) == 0);
    CHECK(mg_spin_ns_from_us(0.0) == 0);
    CHECK(mg_spin_ns_from_us(50.0) == 50000);
    CHECK(mg_spin_ns_from_us(0.5) == 500);
    CHECK(mg_spin_ns_from_us(1e300) == MG_SPIN_MAX_NS);
    CHECK(mg_spin_ns_from_us(INFINITY) == MG_SPIN_MAX_NS);
    CHECK(mg_spin_ns_from_us(1e19) == MG_SPIN_MAX_NS);
    mg_spinner sp;
    mg_spinner_init(&sp, -5, 0);
    CHECK(mg_spinner_budget(&sp) == 0);
    CHECK(!mg_spinner_would_spin(&sp));
    mg_spinner_set_budget(&sp, INT64_MAX);
    CHECK(mg_spinner_budget(&sp) == MG_SPIN_MAX_NS);
    mg_spinner_set_budget(&sp, INT64_MIN);
    CHECK(mg_spinner_budget(&sp) == 0);
}

CTEST(spin_zero_budget_never_spins)
{
    mg_wait w;
    mg_spinner sp;
    CHECK(mg_wait_init(&w) == MG_OK);
    mg_spinner_init(&sp, 0, 0);
    uint32_t seen = mg_wait_seq(&w);
    for (int i = 0; i < 10; i++) {
        CHECK(mg_spin_changed(&w, seen, &sp) == MG_ETIMEDOUT);
    }
    CHECK(atomic_load(&sp.nspins) == 0);
    CHECK(atomic_load(&sp.nskipped) == 10);
    mg_wait_fini(&w);
}

/* The policy's decisions for n waits that never see the word move: 'S'
 * for a wait that spun, '-' for one that did not. */
static void
pattern(mg_wait *w, mg_spinner *sp, int n, char *out)
{
    uint32_t seen = mg_wait_seq(w);
    for (int i = 0; i < n; i++) {
        unsigned long long before = atomic_load(&sp->nspins);
        (void)mg_spin_changed(w, seen, sp);
        out[i] = atomic_load(&sp->nspins) != before ? 'S' : '-';
    }
    out[n] = 0;
}

CTEST(spin_backs_off_when_spins_do_not_pay_and_recovers)
{
    mg_wait w;
    mg_spinner sp;
    char got[128];
    CHECK(mg_wait_init(&w) == MG_OK);
    int old = mg_spin_set_global_cap(1);
    mg_spinner_init(&sp, 2000, 0); /* 2 us spins */
    CHECK(mg_spinner_would_spin(&sp));
    /* Two wasted spins stop spinning for 4 waits; then a window of 8
     * probe spins; each window without a win doubles the pause. */
    pattern(&w, &sp, 2 + 4 + 8 + 8 + 8 + 16 + 8 + 2, got);
    CHECK(strcmp(got, "SS" "----" "SSSSSSSS" "--------" "SSSSSSSS"
                      "----------------" "SSSSSSSS" "--") == 0);
    /* A spin that pays, even in a window, resets it all. */
    atomic_store(&sp.skip, 0);
    mg_spinner_record(&sp, 1);
    CHECK(mg_spinner_would_spin(&sp));
    pattern(&w, &sp, 2 + 4 + 8, got);
    CHECK(strcmp(got, "SS" "----" "SSSSSSSS") == 0);
    /* Outcomes fed directly: every other spin paying keeps it spinning. */
    mg_spinner_init(&sp, 2000, 0);
    for (int i = 0; i < 100; i++) {
        mg_spinner_record(&sp, i % 2);
        CHECK(mg_spinner_would_spin(&sp));
    }
    mg_spinner_record(&sp, 0);
    mg_spinner_record(&sp, 0);
    CHECK(!mg_spinner_would_spin(&sp));
    /* The pause stops growing at its cap. */
    mg_spinner_init(&sp, 2000, 0);
    int longest = 0, run = 0;
    for (int i = 0; i < 20000; i++) {
        pattern(&w, &sp, 1, got);
        run = got[0] == '-' ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    CHECK(longest == 256);
    mg_spin_set_global_cap(old);
    mg_wait_fini(&w);
}

CTEST(spin_win_at_one_site_ends_its_partners_pause)
{
    mg_spinner a, b, c;
    mg_spinner_init(&a, 2000, 0);
    mg_spinner_init(&b, 2000, 0);
    mg_spinner_init(&c, 2000, 0);
    mg_spinner_pair(&a, &b);
    for (int i = 0; i < 2; i++) {
        mg_spinner_record(&a, 0);
        mg_spinner_record(&c, 0);
    }
    CHECK(!mg_spinner_would_spin(&a));
    CHECK(!mg_spinner_would_spin(&c));
    mg_spinner_record(&b, 1); /* b's waiters are served: a's are next */
    CHECK(mg_spinner_would_spin(&a));
    CHECK(!mg_spinner_would_spin(&c)); /* not paired: still paused */
    /* a is in its probe window now: its back-off goes on from there. */
    CHECK(atomic_load(&a.probes) > 0);
}

typedef struct {
    mg_wait *w;
    atomic_int started;
} late_waker;

static void *
wake_soon(void *arg)
{
    late_waker *lw = arg;
    while (!atomic_load(&lw->started)) {
        /* the spinner announces itself just before it spins */
    }
    struct timespec ts = {0, 200000}; /* 0.2 ms */
    nanosleep(&ts, NULL);
    mg_wait_wake(lw->w, 1);
    return NULL;
}

CTEST(spin_sees_a_wake_from_another_thread_and_counts_the_win)
{
    mg_wait w;
    mg_spinner sp;
    CHECK(mg_wait_init(&w) == MG_OK);
    int old = mg_spin_set_global_cap(1);
    mg_spinner_init(&sp, MG_SPIN_MAX_NS, 0);
    int oks = 0;
    /* On a loaded machine the waker may come after the spin: try again,
     * and check that the counters say what the return values said. */
    for (int i = 0; i < 50 && oks == 0; i++) {
        late_waker lw = {&w, 0};
        uint32_t seen = mg_wait_seq(&w);
        pthread_t t;
        CHECK(pthread_create(&t, NULL, wake_soon, &lw) == 0);
        atomic_store(&lw.started, 1);
        atomic_store(&sp.skip, 0);
        int rc = mg_spin_changed(&w, seen, &sp);
        pthread_join(t, NULL);
        CHECK(rc == MG_OK || rc == MG_ETIMEDOUT);
        oks += rc == MG_OK;
    }
    CHECK(oks == 1);
    CHECK(atomic_load(&sp.nwins) == 1);
    CHECK(atomic_load(&sp.nspins) >= 1);
    mg_spin_set_global_cap(old);
    mg_wait_fini(&w);
}

/* ---- caps: per site and process-wide ---- */

typedef struct {
    mg_wait w;
    mg_spinner sp;
    atomic_int stop;
    atomic_int max_global;
    atomic_int max_here;
} capped;

static void *
cap_spinner(void *arg)
{
    capped *c = arg;
    uint32_t seen = mg_wait_seq(&c->w);
    while (!atomic_load(&c->stop)) {
        (void)mg_spin_changed(&c->w, seen, &c->sp);
        atomic_store(&c->sp.skip, 0); /* keep the policy spinning */
        atomic_store(&c->sp.fails, 0);
    }
    return NULL;
}

/* Spinners hold a slot at the site, then one process-wide: the counters
 * also count a thread that took the first and is giving it back. */
static void
cap_run(int global_cap, int max_here, int *seen_global, int *seen_here,
        unsigned long long *nspins)
{
    enum { N = 6 };
    capped c;
    *seen_global = *seen_here = -1;
    CHECK(mg_wait_init(&c.w) == MG_OK);
    mg_spinner_init(&c.sp, 20 * 1000, max_here);
    atomic_init(&c.stop, 0);
    int old = mg_spin_set_global_cap(global_cap);
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        CHECK(pthread_create(&t[i], NULL, cap_spinner, &c) == 0);
    }
    int mg = 0, mh = 0;
    int64_t until = mg_monotonic_ns() + 100 * MS;
    while (mg_monotonic_ns() < until) {
        int g = mg_spin_global_count(), h = atomic_load(&c.sp.nspinning);
        mg = g > mg ? g : mg;
        mh = h > mh ? h : mh;
    }
    atomic_store(&c.stop, 1);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
    }
    mg_spin_set_global_cap(old);
    CHECK(mg_spin_global_count() == 0);
    *seen_global = mg;
    *seen_here = mh;
    *nspins = atomic_load(&c.sp.nspins);
    mg_wait_fini(&c.w);
}

CTEST(spin_never_more_spinners_than_the_caps)
{
    int g, h;
    unsigned long long spins;
    cap_run(2, 0, &g, &h, &spins);
    CHECK(g >= 0 && g <= 2);
    CHECK(spins > 0);
    cap_run(3, 1, &g, &h, &spins);
    CHECK(h >= 0 && h <= 1);
    CHECK(g <= 1);
    cap_run(0, 0, &g, &h, &spins); /* one CPU: nobody spins */
    CHECK(g == 0);
    CHECK(spins == 0);
}

CTEST(spin_global_cap_defaults_to_cpus_less_one)
{
    int cap = mg_spin_global_cap();
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(cap == (n > 1 ? n - 1 : 0));
}
