/* test_csv_chunk.c - one chunk's row loop (src/base/csv_chunk.c) where it
 * fails: rows that wait in the row parser's tape when the loop stops at a
 * bad row still reach their columns, and running out of memory while
 * they do is reported as such (not as the bad row after them). */
#include "ctest.h"
#include "csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

static const mg_csv_dialect dialect = {',', '"', 0, 0, 1, 0, 0, 1};

/* Parses buf[0, end) as two int columns, bad rows refused. */
static mg_csv_code
parse_two(const char *buf, size_t end, mg_csv_chunk *out)
{
    static const int keep[2] = {0, 1};
    static const unsigned want[2] = {1u << MG_CSV_INT, 1u << MG_CSV_INT};
    static mg_csv_values values; /* no null, true or false strings */
    mg_csv_parseopts o = {&dialect, &values, 2, keep, 2, want,
                          MG_CSV_BAD_ERROR, 0};
    memset(out, 0, sizeof(*out));
    return mg_csv_parse(&o, buf, 0, end, SIZE_MAX, -1, 0, out, 0);
}

CTEST(csv_rows_before_a_ragged_row_reach_the_columns)
{
    const char text[] = "1,2\n3,4\n5,6,7\n8,9\n";
    mg_csv_chunk out;
    CHECK(parse_two(text, sizeof(text) - 1, &out) == MG_CSV_ERAGGED);
    CHECK(out.nrows == 2);
    CHECK(out.cols[0].n == 2 && out.cols[1].n == 2);
    CHECK(out.cols[0].vals[1].i == 3 && out.cols[1].vals[1].i == 4);
    CHECK(out.err.pos == 8);
    mg_csv_chunk_free(&out);
}

#ifndef UNDER_SANITIZER
/* In a child: a chunk of 1 GiB (a sparse mapping, only its first bytes
 * written) whose columns cannot be reserved under a low address-space
 * limit, with a ragged third row: the rows before it are added only
 * when the loop stops there, and that must fail as out of memory. */
static int
ragged_after_rows_without_memory(void)
{
    size_t span = (size_t)1 << 30;
    char *buf = mmap(NULL, span, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (buf == MAP_FAILED) {
        return 2;
    }
    const char text[] = "1,2\n3,4\n5,6,7\n";
    memcpy(buf, text, sizeof(text) - 1);
    long vm_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%ld", &vm_pages) != 1) {
        return 2;
    }
    fclose(f);
    /* Room for the parser's own buffers, not for columns of 1 GiB. */
    rlim_t limit = (rlim_t)vm_pages * (rlim_t)sysconf(_SC_PAGESIZE)
                   + ((rlim_t)64 << 20);
    struct rlimit rl = {limit, limit};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        return 2;
    }
    mg_csv_chunk out;
    mg_csv_code rc = parse_two(buf, span, &out);
    return rc == MG_CSV_ENOMEM ? 0 : 1;
}
#endif

CTEST(csv_out_of_memory_adding_waiting_rows_is_reported)
{
#ifdef UNDER_SANITIZER
    /* A sanitizer's shadow memory does not fit under the limit. */
    fprintf(stderr, "  (skipped under a sanitizer)\n");
    return;
#else
    const char *pre = getenv("LD_PRELOAD");
    if (pre != NULL && (strstr(pre, "asan") || strstr(pre, "tsan"))) {
        /* A preloaded sanitizer runtime (the Python suite's ASan run)
         * allocates its own memory under the limit. */
        fprintf(stderr, "  (skipped under a preloaded sanitizer)\n");
        return;
    }
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        _exit(ragged_after_rows_without_memory());
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) != 2); /* the set-up worked */
    CHECK(WEXITSTATUS(status) == 0); /* ENOMEM, not ERAGGED */
#endif
}
