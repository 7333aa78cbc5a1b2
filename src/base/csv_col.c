/* csv_col.c - one column of one chunk, converted as its cells are read
 * (mg_csv_col_*, csv.h), and its emission into the final column.
 *
 * Owns: the per-cell type inference (the mask of types every non-null
 * cell still fits, tested only while a type is alive), the values of the
 * best type still alive (int64 widened in place to float64, days in place
 * to microseconds; any other change of type gives the values up and the
 * chunk's column is parsed again once its final type is known), the
 * chunk's string bytes and offsets, and a validity bitmap made at the
 * first null. Cells come a tape of rows at a time, one column after
 * another: run loops take a column's common cells (strings; ints or
 * floats once no other type is tested; empty nulls once the bitmap is
 * made) with its state in locals, every other cell goes through the full
 * per-cell step (col_add), which gives the same result. Plain C, no
 * locks, no global state, any thread; one column is used by one thread
 * at a time. Never allocates per cell: buffers are reserved for the
 * worst case (csv_mem.c, only touched pages count); never reads outside
 * the input the cells were cut from, or past a scratch cell's end.
 * Emission writes only the chunk's own rows, through the output's memfd
 * where it has one (pwrite, then the pages mapped in one call: faulting
 * fresh shared pages one by one cost more than the parse); the validity
 * bytes it shares with the neighbouring chunks are set with atomic OR.
 */
#define _GNU_SOURCE /* MADV_POPULATE_READ */
#include "csv.h"
#include "csv_num.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NUM_BITS ((1u << MG_CSV_STR) - 1)
#define BIT(t) (1u << (t))

static int
null_set_has_empty(const mg_csv_strset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->len[i] == 0) {
            return 1;
        }
    }
    return 0;
}

/* Buffer sizes for a capacity of rows / bytes. */
#define VALS_BYTES(rows) ((rows) * sizeof(mg_csv_num))
/* COPY_SLACK: a string cell of up to that many bytes is copied as that
 * many (a fixed-size copy, no call); the bytes past it are overwritten
 * by the next cell or never emitted. */
#define COPY_SLACK 64
#define DATA_BYTES(bytes) ((bytes) + COPY_SLACK)
#define OFFS_BYTES(rows) (((rows) + 1) * sizeof(int64_t))
#define VALID_BYTES(rows) ((rows) / 8 + 1)

static void
free_vals(mg_csv_col *c)
{
    mg_csv_mem_free(c->vals, VALS_BYTES(c->vcap), c->vmapped);
    c->vals = NULL;
    c->vcap = 0;
}

static void
free_text(mg_csv_col *c)
{
    mg_csv_mem_free(c->data, DATA_BYTES(c->dcap), c->dmapped);
    mg_csv_mem_free(c->offs, OFFS_BYTES(c->ocap), c->omapped);
    c->data = NULL;
    c->offs = NULL;
    c->dcap = c->ocap = 0;
}

static void
free_valid(mg_csv_col *c)
{
    mg_csv_mem_free(c->valbuf, VALID_BYTES(c->valcap), c->valmapped);
    c->valbuf = NULL;
    c->valcap = 0;
}

void
mg_csv_col_init(mg_csv_col *c, const mg_csv_values *v, unsigned want,
                size_t maxrows, size_t maxbytes)
{
    /* Buffers a previous use left that are large enough are kept: their
     * pages are touched already. */
    if (c->vals != NULL && c->vcap < maxrows) {
        free_vals(c);
    }
    if (c->data != NULL && (c->dcap < maxbytes || c->ocap < maxrows)) {
        free_text(c);
    }
    if (c->valbuf != NULL && c->valcap < maxrows) {
        free_valid(c);
    }
    c->v = v;
    c->mask = want & NUM_BITS;
    c->store = c->mask ? __builtin_ctz(c->mask) : MG_CSV_STR;
    c->inferred = c->mask == NUM_BITS;
    for (int t = 0; t < MG_CSV_NTYPES; t++) {
        c->first_bad[t] = SIZE_MAX;
    }
    c->n = c->nulls = c->len = 0;
    c->negzero = 0;
    c->valid = NULL;
    c->maxrows = maxrows;
    c->maxbytes = maxbytes;
    c->null_empty = null_set_has_empty(&v->nulls);
    c->null_other = v->nulls.n > (size_t)c->null_empty;
}

void
mg_csv_col_free(mg_csv_col *c)
{
    free_vals(c);
    free_text(c);
    free_valid(c);
    c->valid = NULL;
}

/* The capacity reserved for a need of n: an eighth more, so that the
 * next chunk a round hands these buffers to (about as large, seldom
 * exactly) finds them large enough and does not fault fresh pages. */
static size_t
padded(size_t n)
{
    return n + n / 8 + 64;
}

/* The buffers of the store type; -1 when out of memory. */
static int
store_buffers(mg_csv_col *c)
{
    if (c->store == MG_CSV_STR) {
        if (c->data == NULL) {
            c->dcap = padded(c->maxbytes);
            c->ocap = padded(c->maxrows);
            c->data = mg_csv_mem_alloc(DATA_BYTES(c->dcap), &c->dmapped);
            c->offs = mg_csv_mem_alloc(OFFS_BYTES(c->ocap), &c->omapped);
            if (c->data == NULL || c->offs == NULL) {
                free_text(c);
                return -1;
            }
        }
        c->offs[0] = 0;
        return 0;
    }
    if (c->store >= 0 && c->vals == NULL) {
        c->vcap = padded(c->maxrows);
        c->vals = mg_csv_mem_alloc(VALS_BYTES(c->vcap), &c->vmapped);
        if (c->vals == NULL) {
            c->vcap = 0;
            return -1;
        }
    }
    return 0;
}

static inline int
bit_of(const uint8_t *b, size_t r)
{
    return (b[r >> 3] >> (r & 7)) & 1;
}

static void
null_value(mg_csv_col *c, size_t r)
{
    if (c->store == MG_CSV_STR) {
        c->offs[r + 1] = (int64_t)c->len;
    }
    else if (c->store == MG_CSV_FLOAT) {
        c->vals[r].f = NAN;
    }
    else if (c->store >= 0) {
        c->vals[r].i = 0;
    }
}

/* Changes the store type at row r (rows [0, r) were added). */
static int
switch_store(mg_csv_col *c, int to, size_t r)
{
    int from = c->store;
    if (r == c->nulls) { /* nothing but nulls so far: start afresh */
        c->store = to;
        if (store_buffers(c) < 0) {
            return -1;
        }
        c->len = 0;
        for (size_t i = 0; i < r; i++) {
            null_value(c, i);
        }
        return 0;
    }
    if (from == MG_CSV_INT && to == MG_CSV_FLOAT && !c->negzero) {
        for (size_t i = 0; i < r; i++) {
            c->vals[i].f = c->valid != NULL && !bit_of(c->valid, i)
                               ? NAN : (double)c->vals[i].i;
        }
        c->store = to;
        return 0;
    }
    if (from == MG_CSV_DATE && to == MG_CSV_TS) {
        for (size_t i = 0; i < r; i++) {
            c->vals[i].i *= 86400000000LL;
        }
        c->store = to;
        return 0;
    }
    c->store = -1; /* given up: parsed again with the final type */
    return 0;
}

/* Tests the live types in bits on cell r. */
static void
test_types(mg_csv_col *c, unsigned bits, size_t r, const char *s, size_t n)
{
    while (bits) {
        int t = __builtin_ctz(bits);
        bits &= bits - 1;
        if (!mg_csv_cell_fits(c->v, t, s, n)) {
            c->mask &= ~BIT(t);
            c->first_bad[t] = r;
        }
    }
}

/* Stores cell r (non-null) as the store type; the cell fits it. */
static int
store_value(mg_csv_col *c, size_t r, const char *s, size_t n)
{
    switch (c->store) {
    case MG_CSV_INT:
        (void)mg_csv_parse_int(s, n, &c->vals[r].i);
        c->negzero |= c->vals[r].i == 0 && n && s[0] == '-';
        break;
    case MG_CSV_FLOAT:
        (void)mg_csv_parse_float(s, n, &c->vals[r].f);
        break;
    case MG_CSV_BOOL:
        c->vals[r].i = mg_csv_in_set(&c->v->trues, s, n);
        break;
    case MG_CSV_DATE: {
        int32_t d = 0;
        (void)mg_csv_parse_date(s, n, &d);
        c->vals[r].i = d;
        break;
    }
    case MG_CSV_TS:
        (void)mg_csv_parse_ts(s, n, &c->vals[r].i);
        break;
    case MG_CSV_STR:
        memcpy(c->data + c->len, s, n);
        c->len += n;
        c->offs[r + 1] = (int64_t)c->len;
        break;
    default:
        break;
    }
    return 0;
}

/* A cell the store type did not take (or none is stored): every live
 * type is tested, and the store follows the best one left. */
static int
add_slow(mg_csv_col *c, size_t r, const char *s, size_t n)
{
    test_types(c, c->mask, r, s, n);
    int best = c->mask ? __builtin_ctz(c->mask)
                       : (c->inferred ? MG_CSV_STR : -1);
    if (best != c->store && (c->store >= 0 || r == c->nulls)
        && switch_store(c, best, r) < 0) {
        return -1;
    }
    return store_value(c, r, s, n);
}

static int
add_null(mg_csv_col *c, size_t r)
{
    if (c->valid == NULL) { /* the first null: rows before are valid */
        if (c->valbuf == NULL) {
            size_t cap = padded(c->maxrows);
            c->valbuf = mg_csv_mem_alloc(VALID_BYTES(cap), &c->valmapped);
            if (c->valbuf == NULL) {
                return -1;
            }
            c->valcap = cap;
        }
        c->valid = c->valbuf;
        memset(c->valid, 0xFF, r / 8 + 1);
    }
    c->valid[r >> 3] &= (uint8_t)~(1u << (r & 7));
    c->nulls++;
    null_value(c, r);
    return 0;
}

/* Adds cell s[0, n); s[0, room) may be read (room >= n). */
static inline __attribute__((always_inline)) int
col_add(mg_csv_col *c, const char *s, size_t n, size_t room)
{
    size_t r = c->n++;
    if (r == 0 && store_buffers(c) < 0) {
        return -1;
    }
    int null = n == 0 ? c->null_empty
                      : c->null_other && mg_csv_in_set(&c->v->nulls, s, n);
    if (null) {
        return add_null(c, r);
    }
    if (c->valid != NULL) {
        c->valid[r >> 3] |= (uint8_t)(1u << (r & 7));
    }
    switch (c->store) {
    case MG_CSV_STR:
        memcpy(c->data + c->len, s, n);
        c->len += n;
        c->offs[r + 1] = (int64_t)c->len;
        return 0;
    case MG_CSV_INT: {
        int64_t x;
        if (!mg_csv_int_cell_wide(s, n, room, &x)) {
            break;
        }
        c->vals[r].i = x;
        c->negzero |= x == 0 && s[0] == '-';
        unsigned rest = c->mask & ~(BIT(MG_CSV_INT) | BIT(MG_CSV_FLOAT));
        if (rest) {
            test_types(c, rest, r, s, n);
        }
        return 0;
    }
    case MG_CSV_FLOAT: {
        double x;
        if (!mg_csv_float_cell_wide(s, n, room, &x)) {
            break;
        }
        c->vals[r].f = x;
        unsigned rest = c->mask & ~(BIT(MG_CSV_INT) | BIT(MG_CSV_FLOAT));
        if (rest) {
            test_types(c, rest, r, s, n);
        }
        return 0;
    }
    default:
        break;
    }
    return add_slow(c, r, s, n);
}

/* ---- runs of common cells ---- */

/* The cells of one column in a tape of rows (cell r at cell[r * stride])
 * and the bytes around them that may be read. */
typedef struct cells {
    const char *const *cell;
    const size_t *clen;
    size_t stride;
    const char *lo;
    uintptr_t span; /* hi - lo */
} cells;

/* Bytes readable from s, a cell of n bytes. */
static inline size_t
room_of(const cells *x, const char *s, size_t n)
{
    uintptr_t at = (uintptr_t)s - (uintptr_t)x->lo;
    return at < x->span ? (size_t)(x->span - at) : n;
}

#define VALID_SET(v, r) ((v)[(r) >> 3] |= (uint8_t)(1u << ((r) & 7)))
#define VALID_CLEAR(v, r) ((v)[(r) >> 3] &= (uint8_t)~(1u << ((r) & 7)))

/* The loops below take the cells of rows [r, nrows) while each needs
 * only its store type's own step (a value, or an empty cell that is a
 * null once the column has its bitmap), with the column's state in
 * locals; they return the first row they left to col_add (a first null,
 * a cell the store type does not take, the end). The caller has checked
 * that no null string but the empty one is set and, for numbers, that no
 * type but int and float is still tested. */
static size_t
str_run(mg_csv_col *c, const cells *x, size_t r, size_t nrows)
{
    const cells l = *x; /* in registers: the stores below may alias *x */
    size_t row = c->n, nulls = c->nulls, len = c->len;
    char *data = c->data;
    int64_t *offs = c->offs;
    uint8_t *valid = c->valid;
    const int null_empty = c->null_empty;
    for (; r < nrows; r++) {
        const char *s = l.cell[r * l.stride];
        size_t n = l.clen[r * l.stride];
        if (n == 0 && null_empty) {
            if (valid == NULL) {
                break;
            }
            VALID_CLEAR(valid, row);
            nulls++;
        }
        else {
            if (valid != NULL) {
                VALID_SET(valid, row);
            }
            if (n <= COPY_SLACK && room_of(&l, s, n) >= COPY_SLACK) {
                memcpy(data + len, s, COPY_SLACK);
            }
            else {
                memcpy(data + len, s, n);
            }
            len += n;
        }
        offs[++row] = (int64_t)len;
    }
    c->n = row;
    c->nulls = nulls;
    c->len = len;
    return r;
}

/* The run loop of a number column, int64 or float64 (is_float, a
 * constant where it is inlined: one loop each). */
static inline __attribute__((always_inline)) size_t
num_run(mg_csv_col *c, const cells *x, size_t r, size_t nrows, int is_float)
{
    const cells l = *x; /* in registers: the stores below may alias *x */
    size_t row = c->n, nulls = c->nulls;
    mg_csv_num *vals = c->vals;
    uint8_t *valid = c->valid;
    const int null_empty = c->null_empty;
    int negzero = c->negzero;
    for (; r < nrows; r++) {
        const char *s = l.cell[r * l.stride];
        size_t n = l.clen[r * l.stride];
        mg_csv_num v;
        if (n == 0 && null_empty) {
            if (valid == NULL) {
                break;
            }
            VALID_CLEAR(valid, row);
            nulls++;
            if (is_float) {
                v.f = NAN;
            }
            else {
                v.i = 0;
            }
        }
        else if (is_float
                     ? !mg_csv_float_cell_wide(s, n, room_of(&l, s, n), &v.f)
                     : !mg_csv_int_cell_wide(s, n, room_of(&l, s, n), &v.i)) {
            break;
        }
        else {
            if (valid != NULL) {
                VALID_SET(valid, row);
            }
            negzero |= !is_float && v.i == 0 && s[0] == '-';
        }
        vals[row++] = v;
    }
    c->n = row;
    c->nulls = nulls;
    c->negzero = negzero;
    return r;
}

static size_t
int_run(mg_csv_col *c, const cells *x, size_t r, size_t nrows)
{
    return num_run(c, x, r, nrows, 0);
}

static size_t
float_run(mg_csv_col *c, const cells *x, size_t r, size_t nrows)
{
    return num_run(c, x, r, nrows, 1);
}

/* The run loop for the column's state now, or NULL when every cell
 * needs col_add. */
static size_t (*run_for(const mg_csv_col *c))(mg_csv_col *, const cells *,
                                               size_t, size_t)
{
    if (c->n == 0 || c->null_other) {
        return NULL; /* the first cell makes the buffers */
    }
    if (c->store == MG_CSV_STR) {
        return str_run;
    }
    if (c->mask & ~(BIT(MG_CSV_INT) | BIT(MG_CSV_FLOAT))) {
        return NULL;
    }
    return c->store == MG_CSV_INT ? int_run
           : c->store == MG_CSV_FLOAT ? float_run : NULL;
}

/* The cells of rows [0, nrows) of one column: runs of common cells, each
 * other cell through col_add. */
static int
add_cells(mg_csv_col *c, const cells *x, size_t nrows, int plain)
{
    size_t r = 0;
    while (r < nrows) {
        size_t (*run)(mg_csv_col *, const cells *, size_t, size_t) =
            plain ? NULL : run_for(c);
        if (run != NULL) {
            r = run(c, x, r, nrows);
            if (r == nrows) {
                break;
            }
        }
        const char *s = x->cell[r * x->stride];
        size_t n = x->clen[r * x->stride];
        if (col_add(c, s, n, room_of(x, s, n)) < 0) {
            return -1;
        }
        r++;
    }
    return 0;
}

int
mg_csv_col_add_rows(mg_csv_col *cols, const int *dest, size_t nfields,
                    const char *const *cell, const size_t *clen,
                    size_t nrows, const char *lo, const char *hi,
                    int plain)
{
    for (size_t i = 0; i < nfields; i++) {
        int k = dest[i];
        if (k < 0) {
            continue;
        }
        cells x = {cell + i, clen + i, nfields, lo,
                   (uintptr_t)hi - (uintptr_t)lo};
        if (add_cells(&cols[k], &x, nrows, plain) < 0) {
            return -1;
        }
    }
    return 0;
}

int
mg_csv_col_can_emit(const mg_csv_col *c, mg_csv_type t)
{
    if (c->n == c->nulls && c->store >= 0) {
        return 1; /* only nulls: any type */
    }
    return c->store == (int)t
           || (c->store == MG_CSV_INT && t == MG_CSV_FLOAT && !c->negzero)
           || (c->store == MG_CSV_DATE && t == MG_CSV_TS);
}

/* ---- emission ---- */

static inline void
or_byte(uint8_t *p, uint8_t bits, int shared)
{
    if (!bits) {
        return;
    }
    if (shared) {
        __atomic_fetch_or(p, bits, __ATOMIC_RELAXED);
    }
    else {
        *p |= bits;
    }
}

/* Validity of rows [row0, row0 + n) from the chunk's bitmap (NULL: all
 * valid). */
static void
emit_validity(const mg_csv_col *c, const mg_csv_out *o)
{
    size_t n = c->n, row0 = o->row0;
    if (n == 0) {
        return;
    }
    size_t first = row0 >> 3, last = (row0 + n - 1) >> 3;
    unsigned sh = (unsigned)(row0 & 7);
    size_t nb = (n + 7) / 8;
    for (size_t i = 0; i < nb; i++) {
        uint8_t b = c->valid != NULL ? c->valid[i] : 0xFF;
        if (i == nb - 1 && (n & 7)) {
            b &= (uint8_t)((1u << (n & 7)) - 1);
        }
        size_t at = first + i;
        or_byte(&o->validity[at], (uint8_t)(b << sh),
                at == first || at == last);
        if (sh && at + 1 <= last) {
            or_byte(&o->validity[at + 1], (uint8_t)(b >> (8 - sh)),
                    at + 1 == last);
        }
    }
}

static int
is_null_row(const mg_csv_col *c, size_t r)
{
    return c->valid != NULL && !bit_of(c->valid, r);
}

/* ---- writing into an output ---- */

/* Where emitted bytes go: a mapping and, where it has one, its memfd. */
typedef struct sink {
    char *base;
    int fd;
} sink;

/* Maps the pages of base[off, off + n) that a pwrite filled (rounded out
 * to whole pages: the mapping is page-aligned and whole pages long), so
 * that the first reads of the result take no page fault either (and the
 * process's PSS shows them, as it would after a copy). */
static void
map_written(const sink *s, size_t off, size_t n)
{
#ifdef MADV_POPULATE_READ
    long ps = sysconf(_SC_PAGESIZE);
    const uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
    uintptr_t a = ((uintptr_t)s->base + off) & ~(page - 1);
    uintptr_t e = ((uintptr_t)s->base + off + n + page - 1) & ~(page - 1);
    (void)madvise((void *)a, e - a, MADV_POPULATE_READ);
#else
    (void)s;
    (void)off;
    (void)n;
#endif
}

/* Writes src[0, n) at s->base + off: through the memfd where there is
 * one (the rest, if a write fails, through the mapping). */
static void
sink_put(const sink *s, size_t off, const void *src, size_t n)
{
    const char *p = src;
    size_t left = n, at = off;
    while (s->fd >= 0 && left > 0) {
        ssize_t w = pwrite(s->fd, p, left, (off_t)at);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        p += w;
        at += (size_t)w;
        left -= (size_t)w;
    }
    if (left > 0) {
        memcpy(s->base + at, p, left);
    }
    if (s->fd >= 0 && left < n) {
        map_written(s, off, n - left);
    }
}

/* Values made row by row go through a small buffer. */
#define STAGE_BYTES 16384

typedef struct stage {
    const sink *s;
    size_t off;   /* where buf[0] goes */
    size_t len;
    union {
        char bytes[STAGE_BYTES];
        int64_t align;
    } buf;
} stage;

static inline void
stage_init(stage *g, const sink *s, size_t off)
{
    g->s = s;
    g->off = off;
    g->len = 0; /* buf is written before it is read */
}

static void
stage_flush(stage *g)
{
    if (g->len) {
        sink_put(g->s, g->off, g->buf.bytes, g->len);
        g->off += g->len;
        g->len = 0;
    }
}

static inline void *
stage_slot(stage *g, size_t size)
{
    if (STAGE_BYTES - g->len < size) {
        stage_flush(g);
    }
    void *p = g->buf.bytes + g->len;
    g->len += size;
    return p;
}

/* The string bytes, then the row offsets moved by the bytes before the
 * chunk, in place, in one write. */
static void
emit_strings(mg_csv_col *c, const mg_csv_out *o)
{
    sink bytes = {o->bytes, o->bytes_fd};
    sink offs = {(char *)o->offsets, o->offsets_fd};
    if (c->len) {
        sink_put(&bytes, (size_t)o->byte0, c->data, c->len);
    }
    size_t at = o->row0 * sizeof(int64_t);
    if (c->n == c->nulls && c->store != MG_CSV_STR) { /* no offsets kept */
        stage g;
        stage_init(&g, &offs, at);
        for (size_t r = 0; r < c->n; r++) {
            *(int64_t *)stage_slot(&g, sizeof(int64_t)) = o->byte0;
        }
        stage_flush(&g);
        return;
    }
    int64_t *v = c->offs;
    for (size_t r = 0; r < c->n; r++) {
        v[r] += o->byte0;
    }
    sink_put(&offs, at, v, c->n * sizeof(int64_t));
}

/* Row r of the chunk as type t, from the store type's values. */
static inline void
put_value(const mg_csv_col *c, mg_csv_type t, size_t r, void *dst)
{
    switch (t) {
    case MG_CSV_INT:
        *(int64_t *)dst = c->vals[r].i;
        break;
    case MG_CSV_TS: /* stored as TS, or days to microseconds */
        *(int64_t *)dst = c->store == MG_CSV_TS
                              ? c->vals[r].i : c->vals[r].i * 86400000000LL;
        break;
    case MG_CSV_FLOAT:
        *(double *)dst = c->store == MG_CSV_FLOAT ? c->vals[r].f
                         : is_null_row(c, r)      ? NAN
                                                  : (double)c->vals[r].i;
        break;
    case MG_CSV_BOOL:
        *(uint8_t *)dst = (uint8_t)c->vals[r].i;
        break;
    case MG_CSV_DATE:
        *(int32_t *)dst = (int32_t)c->vals[r].i;
        break;
    default:
        break;
    }
}

void
mg_csv_col_emit(mg_csv_col *c, mg_csv_type t, const mg_csv_out *o)
{
    size_t n = c->n;
    if (n == 0) {
        return;
    }
    if (o->validity != NULL) {
        emit_validity(c, o);
    }
    if (t == MG_CSV_STR) {
        emit_strings(c, o);
        return;
    }
    sink vals = {o->values, o->values_fd};
    size_t size = mg_csv_type_size(t);
    if (c->n == c->nulls && c->store != (int)t) {
        /* No values kept: NaN for floats, zero bytes for the rest (the
         * block may hold a freed block's bytes). */
        stage g;
        stage_init(&g, &vals, o->row0 * size);
        for (size_t r = 0; r < n; r++) {
            void *slot = stage_slot(&g, size);
            if (t == MG_CSV_FLOAT) {
                *(double *)slot = NAN;
            }
            else {
                memset(slot, 0, size);
            }
        }
        stage_flush(&g);
        return;
    }
    if (c->store == (int)t && size == sizeof(mg_csv_num)) {
        sink_put(&vals, o->row0 * size, c->vals, n * size);
        return;
    }
    stage g;
    stage_init(&g, &vals, o->row0 * size);
    for (size_t r = 0; r < n; r++) {
        put_value(c, t, r, stage_slot(&g, size));
    }
    stage_flush(&g);
}

size_t
mg_csv_col_bad_utf8(const mg_csv_col *c)
{
    if (c->store != MG_CSV_STR || c->n == c->nulls) {
        return SIZE_MAX;
    }
    size_t ascii = mg_csv_ascii_len(c->data, c->len);
    if (ascii == c->len) {
        return SIZE_MAX; /* ASCII only: nothing invalid, nothing cut */
    }
    const unsigned char *d = (const unsigned char *)c->data;
    /* the check goes on where the ASCII run ends (a character start) */
    int ok = mg_csv_utf8_ok(c->data + ascii, c->len - ascii);
    for (size_t r = 1; ok && r < c->n; r++) {
        size_t o = (size_t)c->offs[r];
        /* a character cut between two cells */
        ok = !(o < c->len && (size_t)c->offs[r + 1] > o
               && (d[o] & 0xC0) == 0x80);
    }
    if (ok) {
        return SIZE_MAX;
    }
    for (size_t r = 0; r < c->n; r++) {
        if (!mg_csv_utf8_ok(c->data + c->offs[r],
                            (size_t)(c->offs[r + 1] - c->offs[r]))) {
            return r;
        }
    }
    return SIZE_MAX;
}
