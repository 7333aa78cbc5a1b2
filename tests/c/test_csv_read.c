/* test_csv_read.c - whole reads (src/base/csv_read.c) on a team of
 * threads: a wide table of int, float and string columns (nulls, quoted
 * delimiters and newlines) over three file-mapped segments, cut into
 * small chunks, read with 1 to 4 threads, gives every value where it
 * belongs. It drives the emission stage (many tasks per round, several
 * threads writing one column's memfd) and the drops of parsed input
 * between segments; under ThreadSanitizer it checks the stages' claims.
 * And a read of a big file-mapped segment leaves little of it mapped in
 * the process (the parsed input is dropped in batches as the read goes).
 */
#include "ctest.h"
#include "csv_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NCOLS 12
#define NSEGS 3

static const mg_csv_dialect dialect = {',', '"', 0, 0, 1, 0, 0, 1};

static int
is_null(size_t r, size_t k)
{
    return (r + k) % 11 == 0;
}

static int64_t
int_of(size_t r, size_t k)
{
    return (int64_t)(r * 7 + k) - 5000;
}

static double
float_of(size_t r, size_t k)
{
    return (double)r * 0.25 + (double)k;
}

/* The string of row r, column k: some quoted, with a comma and a
 * newline inside. */
static int
str_of(size_t r, size_t k, char *out, size_t cap)
{
    if (r % 13 == 0) {
        return snprintf(out, cap, "a,b\nc%zu_%zu", r, k);
    }
    return snprintf(out, cap, "s%zu_%zu", r, k);
}

static size_t
put_cell(char *p, size_t r, size_t k)
{
    char s[64];
    if (is_null(r, k)) {
        return 0;
    }
    switch (k % 3) {
    case 0:
        return (size_t)sprintf(p, "%lld", (long long)int_of(r, k));
    case 1:
        return (size_t)sprintf(p, "%.2f", float_of(r, k));
    default:
        str_of(r, k, s, sizeof(s));
        if (r % 13 == 0) {
            return (size_t)sprintf(p, "\"%s\"", s);
        }
        return (size_t)sprintf(p, "%s", s);
    }
}

/* Rows [r0, r1) as CSV text in a temporary file, mapped read-only. */
static char *
map_rows(size_t r0, size_t r1, size_t *len)
{
    size_t cap = (r1 - r0) * NCOLS * 40 + 1;
    if (cap < 64) {
        cap = 64;
    }
    char *text = malloc(cap), *p = text;
    if (text == NULL) {
        return NULL;
    }
    for (size_t r = r0; r < r1; r++) {
        for (size_t k = 0; k < NCOLS; k++) {
            p += put_cell(p, r, k);
            *p++ = k + 1 < NCOLS ? ',' : '\n';
        }
    }
    *len = (size_t)(p - text);
    FILE *f = tmpfile();
    char *m = MAP_FAILED;
    if (f != NULL && fwrite(text, 1, *len, f) == *len && fflush(f) == 0) {
        m = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    }
    if (f != NULL) {
        fclose(f); /* the mapping keeps the file */
    }
    free(text);
    return m == MAP_FAILED ? NULL : m;
}

static int
valid_at(const mg_csv_colout *c, size_t r)
{
    if (c->validity == NULL) {
        return 1;
    }
    const uint8_t *v = c->validity->data;
    return (v[r / 8] >> (r % 8)) & 1;
}

/* Every cell of the read's output as written; 0 when one differs. */
static int
check_output(const mg_csv_job *j, size_t nrows)
{
    if (j->nrows != nrows) {
        return 0;
    }
    for (size_t k = 0; k < NCOLS; k++) {
        const mg_csv_colout *c = &j->cols[k];
        mg_csv_type want = k % 3 == 0 ? MG_CSV_INT
                           : k % 3 == 1 ? MG_CSV_FLOAT : MG_CSV_STR;
        if (c->type != want) {
            return 0;
        }
        for (size_t r = 0; r < nrows; r++) {
            if (valid_at(c, r) != !is_null(r, k)) {
                return 0;
            }
            if (is_null(r, k)) {
                continue;
            }
            if (want == MG_CSV_INT
                && ((const int64_t *)c->values->data)[r] != int_of(r, k)) {
                return 0;
            }
            if (want == MG_CSV_FLOAT
                && ((const double *)c->values->data)[r] != float_of(r, k)) {
                return 0;
            }
            if (want == MG_CSV_STR) {
                const int64_t *off = c->values->data;
                char s[64];
                int n = str_of(r, k, s, sizeof(s));
                if (off[r + 1] - off[r] != n
                    || memcmp((const char *)c->bytes->data + off[r], s,
                              (size_t)n) != 0) {
                    return 0;
                }
            }
        }
    }
    return 1;
}

/* A read of the NCOLS columns of segs, types inferred, "" the null. */
static void
job_init(mg_csv_job *j, const mg_csv_segment *segs, size_t nsegs,
         size_t chunk, int threads)
{
    static const int forced[NCOLS] = {-1, -1, -1, -1, -1, -1,
                                      -1, -1, -1, -1, -1, -1};
    static const int keep[NCOLS] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    *j = (mg_csv_job){.dialect = &dialect, .segs = segs, .nsegs = nsegs,
                      .nfields = NCOLS, .keep = keep, .ncols = NCOLS,
                      .forced = forced, .bad_lines = MG_CSV_BAD_ERROR,
                      .n_rows = SIZE_MAX, .chunk_size = chunk,
                      .nthreads = threads};
    j->values.nulls.n = 1;
    j->values.nulls.s[0] = "";
    j->values.nulls.len[0] = 0;
}

CTEST(csv_read_wide_table_on_a_team_puts_every_value_in_place)
{
    const size_t per_seg = ctest_slow() ? 300 : 1500;
    mg_csv_segment segs[NSEGS];
    size_t lens[NSEGS];
    for (size_t s = 0; s < NSEGS; s++) {
        char *m = map_rows(s * per_seg, (s + 1) * per_seg, &lens[s]);
        CHECK(m != NULL);
        segs[s] = (mg_csv_segment){m, 0, lens[s], 1};
    }
    int ok = 1;
    for (int threads = 1; threads <= 4 && ok; threads++) {
        for (size_t chunk = 700; chunk <= 70000 && ok; chunk *= 10) {
            mg_csv_job j;
            job_init(&j, segs, NSEGS, chunk, threads);
            ok = mg_csv_read(&j) == MG_CSV_OK
                 && check_output(&j, NSEGS * per_seg);
            if (!ok) {
                fprintf(stderr, "  threads %d chunk %zu\n", threads, chunk);
            }
            mg_csv_job_free(&j);
        }
    }
    for (size_t s = 0; s < NSEGS; s++) {
        munmap((void *)segs[s].buf, lens[s]);
    }
    CHECK(ok);
}

/* Resident KiB of the mapping that starts at p (/proc/self/smaps), or
 * -1 when not found. */
static long
mapped_kib(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) {
        return -1;
    }
    char line[512];
    int in = 0;
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-')
            && line[0] != ' ' && strncmp(line, "Rss:", 4) != 0) {
            in = lo == (unsigned long)(uintptr_t)p;
            continue;
        }
        if (in && sscanf(line, "Rss: %ld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

CTEST(csv_read_of_a_big_mapped_file_drops_what_it_parsed)
{
    size_t len, rows = 200000; /* about 23 MB */
    char *m = map_rows(0, rows, &len);
    CHECK(m != NULL);
    /* All of it resident in the mapping, as a read would leave it
     * without drops. */
    volatile char sink = 0;
    for (size_t i = 0; i < len; i += 4096) {
        sink ^= m[i];
    }
    (void)sink;
    CHECK(mapped_kib(m) >= (long)(len / 1024) - 8);
    mg_csv_segment seg = {m, 0, len, 1};
    mg_csv_job j;
    job_init(&j, &seg, 1, (size_t)1 << 20, 2);
    int ok = mg_csv_read(&j) == MG_CSV_OK && check_output(&j, rows);
    mg_csv_job_free(&j);
    /* What is still mapped: the batch not yet dropped (under 8 MiB) and
     * the last rounds (4 chunks of 1 MiB each). */
    long left = mapped_kib(m);
    munmap(m, len);
    CHECK(ok);
    CHECK(left >= 0 && left <= 16 * 1024);
}
