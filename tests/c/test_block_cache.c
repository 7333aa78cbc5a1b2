/* test_block_cache.c - large blocks made and freed by many threads at once
 * through the cache of freed mappings (src/base/block_cache.c): each new
 * zeroed block reads as zeros whatever the last user left, the cache
 * never holds more than its limit, trimming gives pages back, and a
 * block whose fd was shared never comes back. */
#include "ctest.h"
#include "base.h"
#include "block.h"
#include "block_cache.h"

#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MIB ((size_t)1 << 20)

typedef struct {
    int seed;
    int iters;
} churn;

static void *
make_and_free(void *arg)
{
    churn *c = arg;
    unsigned x = (unsigned)c->seed * 2654435761u + 1;
    for (int i = 0; i < c->iters; i++) {
        x = x * 1103515245u + 12345u;
        size_t n = MIB + (x >> 8) % (3 * MIB); /* 1-4 MiB */
        int zeroed = (x >> 4) & 1;
        mg_block *b = zeroed ? mg_block_new(n) : mg_block_new_uninit(n);
        TCHECK(b != NULL && b->fd >= 0);
        unsigned char *d = b->data;
        if (zeroed) {
            for (size_t at = 0; at < n; at += 4096) {
                TCHECK(d[at] == 0);
            }
            TCHECK(d[n - 1] == 0);
        }
        memset(d, 0xA5, n); /* what the next user must not see */
        mg_block_decref(b);
        mg_block_cache_stats s;
        mg_block_cache_stats_get(&s);
        TCHECK(s.held_bytes <= s.limit_bytes && s.entries <= 32);
    }
    return NULL;
}

CTEST(block_cache_many_threads_zeroed_and_bounded)
{
    enum { N = 4 };
    mg_block_cache_release();
    size_t live = mg_block_live_count();
    pthread_t t[N];
    churn c[N];
    for (int i = 0; i < N; i++) {
        c[i] = (churn){i + 1, CT_ITERS(200)};
        CHECK(pthread_create(&t[i], NULL, make_and_free, &c[i]) == 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(mg_block_live_count() == live);
    mg_block_cache_stats s;
    mg_block_cache_stats_get(&s);
    CHECK(s.hits > 0 && s.entries > 0);
    mg_block_cache_release();
    mg_block_cache_stats_get(&s);
    CHECK(s.entries == 0 && s.held_bytes == 0);
}

static size_t
written_bytes(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (size_t)st.st_blocks * 512 : SIZE_MAX;
}

CTEST(block_cache_trim_gives_back_what_a_former_user_wrote)
{
    mg_block_cache_release();
    mg_block *a = mg_block_new(8 * MIB);
    CHECK(a != NULL && a->fd >= 0 && !a->recycled);
    memset(a->data, 1, 8 * MIB);
    mg_block_decref(a);
    mg_block *b = mg_block_new_uninit(8 * MIB);
    CHECK(b != NULL && b->recycled);
    CHECK(written_bytes(b->fd) >= 8 * MIB);
    mg_block_trim(b, 10000);
    CHECK(written_bytes(b->fd) <= 16384);
    CHECK(((unsigned char *)b->data)[9999] == 1); /* kept: the used part */
    CHECK(((unsigned char *)b->data)[10000] == 0); /* the last page's tail */
    CHECK(((unsigned char *)b->data)[12287] == 0);
    CHECK(((unsigned char *)b->data)[8 * MIB - 1] == 0); /* a hole now */
    mg_block_decref(b);
    mg_block_cache_release();
}

CTEST(block_cache_skips_a_block_whose_fd_was_shared)
{
    mg_block_cache_release();
    mg_block_cache_stats s0, s1;
    mg_block_cache_stats_get(&s0);
    mg_block *a = mg_block_new(2 * MIB);
    CHECK(a != NULL && mg_block_share_fd(a) >= 0);
    mg_block_decref(a);
    mg_block_cache_stats_get(&s1);
    CHECK(s1.puts == s0.puts && s1.entries == 0);
    mg_block *b = mg_block_new(2 * MIB); /* an unshared one is kept */
    CHECK(b != NULL && mg_block_fd(b) >= 0);
    mg_block_decref(b);
    mg_block_cache_stats_get(&s1);
    CHECK(s1.puts == s0.puts + 1 && s1.entries == 1);
    mg_block_cache_release();
}

static double
seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *
churn_for(void *arg)
{
    double until = *(double *)arg;
    while (seconds() < until) {
        mg_block *b = mg_block_new(MIB);
        TCHECK(b != NULL && ((unsigned char *)b->data)[100] == 0);
        ((unsigned char *)b->data)[100] = 1;
        mg_block_decref(b);
    }
    return NULL;
}

/* The reaper gives back what sits unused, while others put and get. */
CTEST(block_cache_reaper_runs_beside_puts_and_gets)
{
    mg_block_cache_release();
    mg_block *keep = mg_block_new(3 * MIB); /* a size nobody else asks */
    CHECK(keep != NULL);
    memset(keep->data, 1, 3 * MIB);
    mg_block_decref(keep);
    double until = seconds() + 1.5;
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_create(&t[i], NULL, churn_for, &until) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    mg_block_cache_stats s;
    double deadline = seconds() + 10;
    do {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        mg_block_cache_stats_get(&s);
    } while (s.entries > 0 && seconds() < deadline);
    CHECK(s.entries == 0 && s.held_bytes == 0);
}

/* A small block does not shrink a much larger cached mapping. */
CTEST(block_cache_keeps_a_much_larger_mapping_for_a_larger_block)
{
    mg_block_cache_release();
    mg_block *big = mg_block_new(16 * MIB);
    CHECK(big != NULL);
    memset(big->data, 1, 16 * MIB);
    mg_block_decref(big);
    mg_block *small = mg_block_new(MIB);
    CHECK(small != NULL && !small->recycled);
    mg_block_cache_stats s;
    mg_block_cache_stats_get(&s);
    CHECK(s.entries == 1 && s.held_bytes >= 16 * MIB);
    mg_block_decref(small);
    mg_block *again = mg_block_new(12 * MIB);
    CHECK(again != NULL && again->recycled);
    CHECK(((unsigned char *)again->data)[12 * MIB - 1] == 0);
    mg_block_decref(again);
    mg_block_cache_release();
}

/* A block takes the mapping its role left, not another of the same size:
 * a column read again writes the pages it wrote before. */
CTEST(block_cache_prefers_the_mapping_of_the_same_role)
{
    mg_block_cache_release();
    mg_block *a = mg_block_new_for(8 * MIB, 0, 11);
    mg_block *b = mg_block_new_for(8 * MIB, 0, 22);
    CHECK(a != NULL && b != NULL);
    memset(a->data, 0xAA, 8 * MIB);      /* a big column */
    memset(b->data, 0xBB, MIB);          /* a small one */
    mg_block_decref(a);
    mg_block_decref(b);
    /* The big column first: by written pages alone it would take b's. */
    mg_block *a2 = mg_block_new_for(8 * MIB, 0, 11);
    mg_block *b2 = mg_block_new_for(8 * MIB, 0, 22);
    CHECK(b2 != NULL && a2 != NULL && a2->recycled && b2->recycled);
    CHECK(((unsigned char *)b2->data)[0] == 0xBB);
    CHECK(((unsigned char *)a2->data)[0] == 0xAA);
    mg_block_decref(a2);
    mg_block_decref(b2);
    /* Without a key, the one with fewer written pages goes first. */
    mg_block_cache_release();
    a = mg_block_new_for(8 * MIB, 0, 0);
    b = mg_block_new_for(8 * MIB, 0, 0);
    CHECK(a != NULL && b != NULL);
    memset(a->data, 0xAA, 8 * MIB);
    memset(b->data, 0xBB, MIB);
    mg_block_decref(a);
    mg_block_decref(b);
    mg_block *c = mg_block_new_uninit(8 * MIB);
    CHECK(c != NULL && ((unsigned char *)c->data)[0] == 0xBB);
    mg_block_decref(c);
    mg_block_cache_release();
}
