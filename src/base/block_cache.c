/* block_cache.c - freed memfd mappings kept for reuse (see block_cache.h).
 *
 * Owns: the cache (a few slots, each a mapping, its memfd, the bytes of
 * its written pages and when it came in), its limit, and the reaper: a
 * thread of this file's own, started by a put when none runs, that gives
 * back every mapping unused for IDLE_NS and ends once the cache is empty.
 * Also the fork epoch: at a fork the child gives back every cached
 * mapping (the parent may write them again) and both sides bump the
 * epoch. (Mappings another thread had taken out at the fork, to free or
 * to hand out, stay mapped in the child for its life.)
 * Locks: one mutex, cache.mu, a leaf: held only to move entries in or out
 * and to read the counters; munmap, close, ftruncate, mremap and the
 * zeroing run with it released. Never calls user code or Python.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap, fallocate, SEEK_DATA */
#endif
#include "base.h"
#include "block_cache.h"
#include "thread.h"
#include "wait.h" /* mg_monotonic_ns */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 32
#define IDLE_NS 1000000000LL /* a mapping unused this long goes back */
#define DEFAULT_MAX ((size_t)512 << 20)

typedef struct entry {
    void *data;
    size_t len;    /* mapped bytes (the memfd's size) */
    int fd;
    size_t held;   /* bytes of its written pages */
    int64_t since; /* CLOCK_MONOTONIC ns when it came in */
    uint64_t key;  /* its last user's role (0: none) */
} entry;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the reaper waits here (CLOCK_MONOTONIC) */
    entry e[SLOTS];
    size_t n, held, limit, puts, hits;
    int reaper; /* 1 while the reaper thread runs (in this process) */
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static atomic_ulong epoch;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
cond_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&cache.cv, &a);
    pthread_condattr_destroy(&a);
}

static void
free_entries(entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        munmap(e[i].data, e[i].len);
        close(e[i].fd);
    }
}

/* The index of the entry that came in first (cache.mu held, n > 0). */
static size_t
oldest(void)
{
    size_t old = 0;
    for (size_t i = 1; i < cache.n; i++) {
        if (cache.e[i].since < cache.e[old].since) {
            old = i;
        }
    }
    return old;
}

/* Takes entry i out (cache.mu held): *out gets it. */
static void
take_out(size_t i, entry *out)
{
    *out = cache.e[i];
    cache.held -= out->held;
    cache.e[i] = cache.e[--cache.n];
}

/* ---- fork ---- */

static void
before_fork(void)
{
    pthread_mutex_lock(&cache.mu);
}

static void
after_fork_parent(void)
{
    atomic_fetch_add(&epoch, 1);
    pthread_mutex_unlock(&cache.mu);
}

/* The child: one thread, the mutex held by it; the reaper is not here. */
static void
after_fork_child(void)
{
    atomic_fetch_add(&epoch, 1);
    free_entries(cache.e, cache.n);
    cache.n = 0;
    cache.held = 0;
    cache.reaper = 0;
    cond_init(); /* the parent's waiters are not in this process */
    pthread_mutex_unlock(&cache.mu);
}

/* ---- set-up ---- */

static size_t
default_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long ps = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || ps <= 0) {
        return 0;
    }
    size_t sixteenth = (size_t)pages / 16 * (size_t)ps;
    return sixteenth < DEFAULT_MAX ? sixteenth : DEFAULT_MAX;
}

static void
init(void)
{
    cache.limit = default_limit();
    const char *s = getenv("MULTIGIL_BLOCK_CACHE_MB");
    if (s != NULL && *s != '\0') {
        char *end;
        errno = 0;
        unsigned long long mb = strtoull(s, &end, 10);
        if (errno == 0 && *end == '\0' && mb <= (SIZE_MAX >> 20)) {
            cache.limit = (size_t)mb << 20;
        }
    }
    cond_init();
}

/* At load, not in init: a fork while another thread runs init would
 * run it again in the child (pthread_once restarts there), registering
 * the handlers twice. */
__attribute__((constructor)) static void
register_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* ---- the reaper ---- */

/* Waits until the oldest entry is due and gives back all that are, until
 * the cache is empty: then it ends, so that a process whose cache is
 * empty has no thread of it (Python warns at a fork of a process with
 * threads). */
static void *
reaper_main(void *unused)
{
    (void)unused;
    entry due[SLOTS];
    pthread_mutex_lock(&cache.mu);
    while (cache.n > 0) {
        int64_t d = cache.e[oldest()].since + IDLE_NS;
        int64_t t = mg_monotonic_ns();
        if (t < d) {
            struct timespec ts = {(time_t)(d / 1000000000LL),
                                  (long)(d % 1000000000LL)};
            pthread_cond_timedwait(&cache.cv, &cache.mu, &ts);
            continue;
        }
        size_t nd = 0;
        for (size_t i = cache.n; i-- > 0;) {
            if (cache.e[i].since + IDLE_NS <= t) {
                take_out(i, &due[nd++]);
            }
        }
        pthread_mutex_unlock(&cache.mu);
        free_entries(due, nd);
        pthread_mutex_lock(&cache.mu);
    }
    cache.reaper = 0; /* the next put starts another */
    pthread_mutex_unlock(&cache.mu);
    return NULL;
}

/* Starts the reaper (cache.mu held): 0 or -1. */
static int
start_reaper(void)
{
    if (cache.reaper) {
        return 0;
    }
    if (mg_thread_start_quiet(reaper_main, NULL, 64 * 1024) != 0) {
        return -1;
    }
    cache.reaper = 1;
    return 0;
}

/* ---- put and get ---- */

int
mg_block_cache_put(void *data, size_t len, int fd, unsigned long made,
                   uint64_t key)
{
    pthread_once(&once, init);
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_blocks < 0) {
        return 0;
    }
    size_t held = (size_t)st.st_blocks * 512;
    entry out[SLOTS];
    size_t nout = 0;
    int kept = 0;
    pthread_mutex_lock(&cache.mu);
    /* The epoch is read under the lock that before_fork holds across a
     * fork, so a block alive at a fork is never taken. */
    if (made == atomic_load(&epoch) && cache.limit > 0
        && held <= cache.limit && start_reaper() == 0) {
        /* Room: the oldest go first. */
        while (cache.n == SLOTS || cache.held + held > cache.limit) {
            take_out(oldest(), &out[nout++]);
        }
        cache.e[cache.n++] = (entry){data, len, fd, held, mg_monotonic_ns(), key};
        cache.held += held;
        cache.puts++;
        kept = 1;
        pthread_cond_signal(&cache.cv);
    }
    pthread_mutex_unlock(&cache.mu);
    free_entries(out, nout);
    return kept;
}

/* Zeroes the written pages of fd's mapping data[0, len): a hole reads as
 * zero already, and writing it would allocate it. */
static void
zero_written(void *data, int fd, size_t len)
{
    off_t at = 0;
    while ((size_t)at < len) {
        off_t d = lseek(fd, at, SEEK_DATA);
        if (d < 0) {
            if (errno != ENXIO) { /* no SEEK_DATA: every byte, then */
                memset((char *)data + at, 0, len - (size_t)at);
            }
            return;
        }
        if ((size_t)d >= len) {
            return;
        }
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0 || (size_t)h > len) {
            h = (off_t)len;
        }
        memset((char *)data + d, 0, (size_t)(h - d));
        at = h;
    }
}

/* Entry e made len bytes long: 0, or -1 (e given back). */
static int
resize(entry *e, size_t len)
{
    if (e->len == len) {
        return 0;
    }
    if (ftruncate(e->fd, (off_t)len) != 0) {
        free_entries(e, 1);
        return -1;
    }
    if (len < e->len) {
        munmap((char *)e->data + len, e->len - len);
        e->len = len;
        return 0;
    }
    void *q = mremap(e->data, e->len, len, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {
        free_entries(e, 1);
        return -1;
    }
    e->data = q;
    e->len = len;
    return 0;
}

/* 1 when entry a serves a block of len bytes with key better than b:
 * its key, then the smaller mapping, then the fewer written pages (the
 * fewer left over from its last user). */
static int
better(const entry *a, const entry *b, uint64_t key)
{
    int ak = key != 0 && a->key == key, bk = key != 0 && b->key == key;
    if (ak != bk) {
        return ak;
    }
    if (a->len != b->len) {
        return a->len < b->len;
    }
    return a->held < b->held;
}

int
mg_block_cache_get(size_t len, int zero, uint64_t key, void **data, int *fd)
{
    pthread_once(&once, init);
    entry e;
    pthread_mutex_lock(&cache.mu);
    size_t best = SIZE_MAX, big = SIZE_MAX;
    for (size_t i = 0; i < cache.n; i++) {
        size_t l = cache.e[i].len;
        /* Not one much larger than asked: shrinking it frees pages (as
         * costly as new ones) that a larger block could use. */
        if (l >= len && l / 4 <= len
            && (best == SIZE_MAX
                || better(&cache.e[i], &cache.e[best], key))) {
            best = i;
        }
        if (big == SIZE_MAX || l > cache.e[big].len) {
            big = i;
        }
    }
    if (best == SIZE_MAX && big != SIZE_MAX && cache.e[big].len < len) {
        best = big; /* none large enough: the largest, grown */
    }
    if (best == SIZE_MAX) {
        pthread_mutex_unlock(&cache.mu);
        return 0;
    }
    take_out(best, &e);
    cache.hits++;
    pthread_mutex_unlock(&cache.mu);
    if (resize(&e, len) != 0) {
        return 0;
    }
    if (zero) {
        zero_written(e.data, e.fd, len);
    }
    *data = e.data;
    *fd = e.fd;
    return 1;
}

void
mg_block_cache_release(void)
{
    pthread_once(&once, init);
    entry out[SLOTS];
    pthread_mutex_lock(&cache.mu);
    size_t n = cache.n;
    memcpy(out, cache.e, n * sizeof(entry));
    cache.n = 0;
    cache.held = 0;
    pthread_cond_signal(&cache.cv); /* the reaper ends */
    pthread_mutex_unlock(&cache.mu);
    free_entries(out, n);
}

void
mg_block_cache_stats_get(mg_block_cache_stats *out)
{
    pthread_once(&once, init);
    pthread_mutex_lock(&cache.mu);
    out->held_bytes = cache.held;
    out->entries = cache.n;
    out->limit_bytes = cache.limit;
    out->puts = cache.puts;
    out->hits = cache.hits;
    pthread_mutex_unlock(&cache.mu);
}

unsigned long
mg_block_cache_epoch(void)
{
    return atomic_load(&epoch);
}
