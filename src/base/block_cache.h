/* block_cache.h - the memfd mappings of freed large blocks, kept a short
 * while for the next large block (block.c is the only user).
 *
 * Why: a fresh memfd page costs the kernel an allocation when first
 * written and a free when the block goes (about 0.3 and 0.25 us a 4 KiB
 * page here). A table read again and again (a loop over files) paid that
 * for every column of every read, most of it in locks the two threads of
 * a read share. A cached mapping is written again in place. Bounded: at
 * most MULTIGIL_BLOCK_CACHE_MB of written pages (default: 1/16 of the
 * machine's memory, at most 512 MiB; 0 turns the cache off), given back
 * to the system after a second unused by a small thread of its own (which
 * ends when the cache is empty). A
 * mapping that another process may see (an inherited or handed-over
 * memfd) never comes here: block.c asks mg_block_cache_epoch.
 */
#ifndef MG_BLOCK_CACHE_H
#define MG_BLOCK_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* Offers the mapping data[0, len) of memfd fd, of a block that is gone
 * and was made in epoch made (mg_block_cache_epoch): 1 when the cache
 * took it (mapping and fd are now the cache's), 0 when the caller must
 * unmap and close them (a fork since, the cache full or off). Any
 * thread. */
int mg_block_cache_put(void *data, size_t len, int fd, unsigned long made,
                       uint64_t key);

/* A cached mapping made len bytes long (len a multiple of the page size),
 * its bytes zero when zero is 1, else as the last user left them: 1 and
 * *data, *fd set (both the caller's now), or 0 when none is cached. One
 * put with the same key (not 0) is preferred: the same role in a read
 * done again, which writes about as many pages as it left. */
int mg_block_cache_get(size_t len, int zero, uint64_t key, void **data,
                       int *fd);

/* Gives every cached mapping back to the system now. */
void mg_block_cache_release(void);

/* What is held, and counts since the process started, for tests. */
typedef struct mg_block_cache_stats {
    size_t held_bytes; /* written pages of the cached mappings */
    size_t entries;
    size_t limit_bytes;
    size_t puts;       /* mappings taken */
    size_t hits;       /* mappings given out again */
} mg_block_cache_stats;
void mg_block_cache_stats_get(mg_block_cache_stats *out);

/* Bumped by every fork (in parent and child): a block made in an earlier
 * epoch may be mapped by a child process and is never cached. */
unsigned long mg_block_cache_epoch(void);

#endif
