/* block.h - process-global, atomically refcounted memory blocks.
 *
 * A block is plain C memory that every interpreter may see. Interpreters
 * never share the wrapper objects, only the block: each wraps it in its own
 * object that holds one reference. The last reference frees the memory.
 * A block is a handle (handle.h) of kind mg_block_kind: buffers carry it
 * like any other handle; incref/decref are the handle's.
 *
 * Blocks of MG_BLOCK_SHARED_MIN bytes or more live in a memfd (an
 * anonymous file, mapped MAP_SHARED): a child process given the fd maps
 * the same memory (mg_block_from_fd). A memfd has no name in /dev/shm
 * or anywhere else: its memory goes when the last fd and the last
 * mapping, in any process, are gone, so a killed process leaks nothing.
 * Smaller blocks are plain heap memory (fd -1): creating them stays a
 * malloc; they cross to a process by copy (multigil/_fallback.py).
 */
#ifndef MG_BLOCK_H
#define MG_BLOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "handle.h"

/* The handle kind of blocks (id 1). */
#define MG_HANDLE_KIND_BLOCK 1u
extern const mg_handle_kind mg_block_kind;

typedef struct mg_block {
    mg_handle h;    /* first: a block is a handle (refcount, kind) */
    size_t nbytes;  /* usable size of data */
    void *data;     /* owned; aligned to 64 bytes */
    /* One word, so that freeze and a writable export cannot race: bit 0
     * (MG_BLOCK_FROZEN) is set once the memory is read-only and never
     * cleared; the rest counts the live buffer exports that may write
     * (MG_BLOCK_EXPORT each). Use the functions below, not the field. */
    atomic_size_t access;
    size_t mapped;     /* bytes mmap'd for data (large blocks), else 0 */
    int fd;            /* the memfd behind data (owned), or -1 */
    /* 1 while the mapping may go to block_cache.c when the block goes:
     * a memfd of this process's that no other process was given. */
    atomic_int reusable;
    int recycled;        /* 1: the mapping came from the cache */
    unsigned long epoch; /* mg_block_cache_epoch() when made */
    uint64_t key;        /* its role, for the cache (0: none) */
} mg_block;

/* Blocks at least this large are memfd-backed where the system allows. */
#define MG_BLOCK_SHARED_MIN ((size_t)1 << 20)

/* A new zero-filled block with one reference, or NULL when out of memory. */
mg_block *mg_block_new(size_t nbytes);
/* The same, its bytes unspecified (a large one may hold what a freed
 * block left): for a writer that writes every byte anyone will read. */
mg_block *mg_block_new_uninit(size_t nbytes);
/* Either (zero 1 or 0), for a role named by key (not 0): a large block
 * takes first the mapping of a freed block of the same role, such as the
 * same column of a read done again, so that it writes the pages that the
 * former left (block_cache.h). */
mg_block *mg_block_new_for(size_t nbytes, int zero, uint64_t key);
/* Gives back the pages of a large block past its first used bytes, which
 * a recycled mapping may still hold (a fresh one has none there). */
void mg_block_trim(mg_block *b, size_t used);
void mg_block_incref(mg_block *b);
void mg_block_decref(mg_block *b); /* NULL-safe */
/* The block a handle of kind mg_block_kind is, else NULL. */
mg_block *mg_block_from_handle(mg_handle *h);
/* 1 once the block was frozen, else 0. */
int mg_block_is_frozen(mg_block *b);
/* Start a writable export: 0 (one more counted) or -1 if frozen. */
int mg_block_export_begin(mg_block *b);
/* End an export that mg_block_export_begin counted. */
void mg_block_export_end(mg_block *b);
/* Make the block read-only for good: 0 (also if it already was), or -1,
 * changing nothing, while writable exports exist (*nexports: how many). */
int mg_block_freeze(mg_block *b, size_t *nexports);
/* The memfd behind the block (still owned by it), or -1 for heap memory,
 * for this process's own writes. */
int mg_block_fd(const mg_block *b);
/* The same, for handing to another process: the block's mapping is then
 * never reused after it goes (the other process may still map it). */
int mg_block_share_fd(mg_block *b);
/* A block over the memfd fd that another process created, with one
 * reference: maps its first nbytes (PROT_READ only when readonly, and the
 * block is then frozen) and takes ownership of fd. NULL, fd left open and
 * errno set, when fd is not a file of at least nbytes bytes (EINVAL) or
 * the mapping fails. */
mg_block *mg_block_from_fd(int fd, size_t nbytes, int readonly);
/* Number of blocks alive in the process (for leak tests). */
size_t mg_block_live_count(void);

#endif
