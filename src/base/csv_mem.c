/* csv_mem.c - the CSV reader's large scratch buffers (csv.h mg_csv_mem_*).
 *
 * Owns: buffers of 1 MiB or more come from mmap (reserved, not committed:
 * MAP_NORESERVE, so a piece may reserve its worst case and touch only what
 * it fills), with transparent huge pages requested from 16 MiB, and grow
 * with mremap;
 * smaller ones are plain malloc. Faulting 4 KiB pages one by one was a
 * third of the read's time. Also drops the pages of a parsed range of a
 * file mapping from this process (mg_csv_mem_drop). No locks, no global
 * state; any thread.
 * Never: touch Python objects (pure C); drop pages of memory that is not
 * a read-only file mapping (the caller says which).
 */
#define _GNU_SOURCE
#include "csv.h"

#include <string.h>
#include <sys/mman.h>

#define BIG ((size_t)1 << 20)
/* Huge pages only from here: a touched huge page is 2 MiB of RSS, which
 * the tail of every smaller buffer would mostly waste. */
#define HUGE ((size_t)16 << 20)

static void
advise(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    if (n >= HUGE) {
        (void)madvise(p, n, MADV_HUGEPAGE);
    }
#else
    (void)p;
    (void)n;
#endif
}

void
mg_csv_mem_advise(void *p, size_t n)
{
    advise(p, n);
}

void *
mg_csv_mem_alloc(size_t n, int *mapped)
{
    *mapped = 0;
    if (n < BIG) {
        return MG_RAW_MALLOC(n ? n : 1);
    }
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return MG_RAW_MALLOC(n);
    }
    advise(p, n);
    *mapped = 1;
    return p;
}

void *
mg_csv_mem_grow(void *p, size_t old, size_t n, int *mapped)
{
#ifdef MREMAP_MAYMOVE
    if (*mapped) {
        void *q = mremap(p, old, n, MREMAP_MAYMOVE);
        if (q == MAP_FAILED) {
            return NULL;
        }
        advise(q, n);
        return q;
    }
#endif
    if (*mapped || n >= BIG) {
        int m;
        void *q = mg_csv_mem_alloc(n, &m);
        if (q == NULL) {
            return NULL;
        }
        memcpy(q, p, old < n ? old : n);
        mg_csv_mem_free(p, old, *mapped);
        *mapped = m;
        return q;
    }
    return MG_RAW_REALLOC(p, n);
}

void
mg_csv_mem_free(void *p, size_t n, int mapped)
{
    if (p == NULL) {
        return;
    }
    if (mapped) {
        munmap(p, n);
    }
    else {
        MG_RAW_FREE(p);
    }
}

void
mg_csv_mem_drop(const void *p, size_t n)
{
#ifdef MADV_DONTNEED
    const size_t page = 4096;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
    if (e > a) {
        (void)madvise((void *)a, e - a, MADV_DONTNEED);
    }
#else
    (void)p;
    (void)n;
#endif
}
