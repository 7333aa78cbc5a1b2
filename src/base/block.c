/* block.c - process-global refcounted memory blocks (see block.h).
 *
 * Owns the memory of blocks: heap for small ones, a memfd mapped
 * MAP_SHARED for large ones (a child process maps the same pages), or
 * anonymous private pages where memfd_create is missing; and the mapping
 * of a memfd another process handed over (mg_block_from_fd). The mapping
 * of a large block that goes is offered to block_cache.c, and a new large
 * block takes one from there first, unless another process may map it
 * (its fd was shared, or a fork happened since it was made).
 * Never calls the Python C API that needs a thread state: a block may be
 * released by any thread, with or without an interpreter attached. No
 * locks: the refcount and the access word (frozen bit + writable-export
 * count) are atomics; freeze and export_begin are compare-and-swap loops
 * on the same word, so a freeze never slips past a writable export.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include "base.h"
#include "block.h"
#include "block_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h> /* mmap, munmap, memfd_create */
#include <sys/stat.h> /* fstat */
#include <fcntl.h>    /* fallocate */
#include <unistd.h>   /* sysconf, ftruncate, close */

/* Blocks this large come straight from mmap (of a memfd): the kernel
 * hands out zeroed pages lazily, so a big zero-filled array costs nothing
 * until touched, and freeing it returns the memory to the system at once
 * (once no other process maps it). */
#define MG_BLOCK_MMAP_MIN MG_BLOCK_SHARED_MIN

static size_t
page_round(size_t nbytes)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t ps = page > 0 ? (size_t)page : 4096;
    size_t len = (nbytes + ps - 1) / ps * ps;
    return len < nbytes ? 0 : len;
}

/* A memfd of len bytes, or -1 (no memfd_create here, or out of memory). */
static int
block_memfd(size_t len)
{
#ifdef MFD_CLOEXEC
    int fd = memfd_create("multigil-block", MFD_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    if (ftruncate(fd, (off_t)len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
#else
    (void)len;
    return -1;
#endif
}

static void *
block_map(size_t nbytes, int zero, uint64_t key, size_t *mapped, int *fd,
          int *recycled)
{
    size_t len = page_round(nbytes);
    if (len == 0) {
        return NULL;
    }
    void *c;
    if (mg_block_cache_get(len, zero, key, &c, fd)) {
        *mapped = len;
        *recycled = 1;
        return c;
    }
    *fd = block_memfd(len);
    void *p = *fd >= 0
        ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0)
        : mmap(NULL, len, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        return NULL;
    }
    *mapped = len;
    return p;
}

static atomic_size_t live_blocks;

#ifdef MG_POISON_UNINIT
/* Fuzz builds: an uninitialised block is filled with a byte that changes
 * from block to block, so that a byte its writer left unwritten differs
 * between two reads of one input (tests/fuzz/fuzz_csv.c compares them). */
static atomic_uint poison_seq;

static void
poison(void *data, size_t n)
{
    unsigned seq = atomic_fetch_add(&poison_seq, 1);
    memset(data, (int)(0xA5u ^ (seq * 37u)) & 0xff, n);
}
#endif

mg_block *
mg_block_new_for(size_t nbytes, int zero, uint64_t key)
{
    mg_block *b = malloc(sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    void *data = NULL;
    /* Round up so that aligned_alloc gets a multiple of the alignment, and
     * allocate at least one line so an empty array has a valid pointer. */
    size_t alloc = (nbytes + 63) & ~(size_t)63;
    if (alloc < nbytes) {
        free(b);
        return NULL;
    }
    if (alloc == 0) {
        alloc = 64;
    }
    b->mapped = 0;
    b->fd = -1;
    b->recycled = 0;
    b->epoch = mg_block_cache_epoch();
    b->key = key;
    if (alloc >= MG_BLOCK_MMAP_MIN) {
        data = block_map(alloc, zero, key, &b->mapped, &b->fd,
                         &b->recycled);
        if (data == NULL) {
            free(b);
            return NULL;
        }
    }
    else if (posix_memalign(&data, 64, alloc) == 0) {
        memset(data, 0, alloc);
    }
    else {
        free(b);
        return NULL;
    }
#ifdef MG_POISON_UNINIT
    if (!zero) {
        poison(data, nbytes);
    }
#endif
    mg_handle_init(&b->h, &mg_block_kind);
    atomic_init(&b->access, 0);
    atomic_init(&b->reusable, b->fd >= 0);
    b->nbytes = nbytes;
    b->data = data;
    atomic_fetch_add(&live_blocks, 1);
    return b;
}

mg_block *
mg_block_new(size_t nbytes)
{
    return mg_block_new_for(nbytes, 1, 0);
}

mg_block *
mg_block_new_uninit(size_t nbytes)
{
    return mg_block_new_for(nbytes, 0, 0);
}

void
mg_block_trim(mg_block *b, size_t used)
{
    size_t from = page_round(used);
    if (!b->recycled || b->fd < 0 || used > b->mapped) {
        return;
    }
    memset((char *)b->data + used, 0, from - used); /* the last page's tail */
    if (from >= b->mapped) {
        return;
    }
    (void)fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    (off_t)from, (off_t)(b->mapped - from));
}

/* The kind's destroy: runs once, after the last reference went. */
static void
block_destroy(mg_handle *h)
{
    mg_block *b = (mg_block *)h;
    if (b->mapped && atomic_load(&b->reusable)
        && mg_block_cache_put(b->data, b->mapped, b->fd, b->epoch, b->key)) {
        /* the cache owns the mapping and the fd now */
    }
    else if (b->mapped) {
        munmap(b->data, b->mapped);
        if (b->fd >= 0) {
            close(b->fd);
        }
    }
    else {
        free(b->data);
    }
    free(b);
    atomic_fetch_sub(&live_blocks, 1);
}

mg_block *
mg_block_from_fd(int fd, size_t nbytes, int readonly)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return NULL;
    }
    size_t len = page_round(nbytes ? nbytes : 1);
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || len == 0
        || (size_t)st.st_size < len) {
        errno = EINVAL; /* mapping past the end would fault on access */
        return NULL;
    }
    mg_block *b = malloc(sizeof(*b));
    if (b == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int prot = readonly ? PROT_READ : PROT_READ | PROT_WRITE;
    void *p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        free(b);
        errno = e;
        return NULL;
    }
    mg_handle_init(&b->h, &mg_block_kind);
    atomic_init(&b->access, readonly ? (size_t)1 : 0); /* 1: frozen */
    atomic_init(&b->reusable, 0); /* another process's memfd */
    b->recycled = 0;
    b->key = 0;
    b->epoch = mg_block_cache_epoch();
    b->nbytes = nbytes;
    b->data = p;
    b->mapped = len;
    b->fd = fd;
    atomic_fetch_add(&live_blocks, 1);
    return b;
}

int
mg_block_fd(const mg_block *b)
{
    return b->fd;
}

int
mg_block_share_fd(mg_block *b)
{
    atomic_store(&b->reusable, 0);
    return b->fd;
}

const mg_handle_kind mg_block_kind = {"block", MG_HANDLE_KIND_BLOCK,
                                      block_destroy};

void
mg_block_incref(mg_block *b)
{
    mg_handle_incref(&b->h);
}

void
mg_block_decref(mg_block *b)
{
    mg_handle_decref(b ? &b->h : NULL);
}

mg_block *
mg_block_from_handle(mg_handle *h)
{
    return h != NULL && h->kind == &mg_block_kind ? (mg_block *)h : NULL;
}

#define MG_BLOCK_FROZEN ((size_t)1)
#define MG_BLOCK_EXPORT ((size_t)2)

int
mg_block_is_frozen(mg_block *b)
{
    return (atomic_load(&b->access) & MG_BLOCK_FROZEN) != 0;
}

int
mg_block_export_begin(mg_block *b)
{
    size_t s = atomic_load(&b->access);
    do {
        if (s & MG_BLOCK_FROZEN) {
            return -1;
        }
    } while (!atomic_compare_exchange_weak(&b->access, &s,
                                           s + MG_BLOCK_EXPORT));
    return 0;
}

void
mg_block_export_end(mg_block *b)
{
    atomic_fetch_sub(&b->access, MG_BLOCK_EXPORT);
}

int
mg_block_freeze(mg_block *b, size_t *nexports)
{
    size_t s = atomic_load(&b->access);
    do {
        *nexports = s / MG_BLOCK_EXPORT;
        if (s & MG_BLOCK_FROZEN) {
            return 0;
        }
        if (*nexports != 0) {
            return -1;
        }
    } while (!atomic_compare_exchange_weak(&b->access, &s,
                                           s | MG_BLOCK_FROZEN));
    return 0;
}

size_t
mg_block_live_count(void)
{
    return atomic_load(&live_blocks);
}
