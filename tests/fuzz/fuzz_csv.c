/* fuzz_csv.c - libFuzzer target for the pure-C CSV reader (src/base/csv*).
 *
 * The first 4 bytes choose the dialect (quote, escape, comment,
 * doublequote), on_bad_lines and the null strings (none, "", or "" and
 * "NA"), the chunk size, the sync window (0: the default, else 1 to 7
 * bytes, so that the full-scan fallback of the split runs too), the
 * thread count and a forced type; the rest is the CSV input. Oracle:
 * reading it as one chunk with every cell through the per-cell path and
 * reading it split into tiny chunks on several threads with the run
 * loops must give the same result (error code and position, or row
 * count, types, null counts, values, validity and string bytes); the row
 * parser with and without its structural fast path (with each block
 * loader) must cut every row the same; and ASan/UBSan must stay quiet.
 * No Python: links only src/base.
 */
#include "csv_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct result {
    mg_csv_code code;
    mg_csv_job job;
} result;

static size_t
col_bytes(const mg_csv_job *j, const mg_csv_colout *c)
{
    switch (c->type) {
    case MG_CSV_BOOL:
        return j->nrows;
    case MG_CSV_DATE:
        return j->nrows * 4;
    case MG_CSV_STR:
        return (j->nrows + 1) * 8;
    default:
        return j->nrows * 8;
    }
}

static void
same(const result *a, const result *b)
{
    if (a->code != b->code) {
        fprintf(stderr, "codes %d vs %d\n", a->code, b->code);
        abort();
    }
    if (a->code != MG_CSV_OK) {
        if (a->job.err.pos != b->job.err.pos
            || a->job.err.field != b->job.err.field) {
            fprintf(stderr, "error at %zu/%zu vs %zu/%zu\n",
                    a->job.err.pos, a->job.err.field, b->job.err.pos,
                    b->job.err.field);
            abort();
        }
        return;
    }
    const mg_csv_job *x = &a->job, *y = &b->job;
    if (x->nrows != y->nrows || x->nskipped != y->nskipped) {
        fprintf(stderr, "rows %zu vs %zu\n", x->nrows, y->nrows);
        abort();
    }
    for (size_t k = 0; k < x->ncols; k++) {
        const mg_csv_colout *c = &x->cols[k], *d = &y->cols[k];
        if (c->type != d->type || c->nulls != d->nulls
            || memcmp(c->values->data, d->values->data, col_bytes(x, c))) {
            fprintf(stderr, "column %zu differs\n", k);
            abort();
        }
        if ((c->validity == NULL) != (d->validity == NULL)
            || (c->validity != NULL
                && memcmp(c->validity->data, d->validity->data,
                          (x->nrows + 7) / 8))) {
            fprintf(stderr, "validity %zu differs\n", k);
            abort();
        }
        if (c->type == MG_CSV_STR) {
            size_t nb = (size_t)((int64_t *)c->values->data)[x->nrows];
            if (memcmp(c->bytes->data, d->bytes->data, nb)) {
                fprintf(stderr, "strings %zu differ\n", k);
                abort();
            }
        }
    }
}

/* One read; nnulls: the first 0, 1 or 2 of the null strings "" and "NA"
 * (with "NA" the run loops of csv_col.c are off, without it on); plain:
 * every cell through the per-cell path (the reference for the run
 * loops). */
static void
run(result *r, const mg_csv_dialect *d, const mg_csv_segment *seg,
    size_t nfields, const int *keep, const int *forced, int bad,
    size_t chunk, size_t window, int threads, size_t nnulls, int plain)
{
    static const char *nulls[] = {"", "NA"};
    static const char *trues[] = {"true"}, *falses[] = {"false"};
    memset(r, 0, sizeof(*r));
    mg_csv_job *j = &r->job;
    j->dialect = d;
    j->segs = seg;
    j->nsegs = 1;
    j->nfields = nfields;
    j->keep = keep;
    j->ncols = nfields;
    j->forced = forced;
    j->values.nulls.n = nnulls;
    for (size_t i = 0; i < nnulls; i++) {
        j->values.nulls.s[i] = nulls[i];
        j->values.nulls.len[i] = strlen(nulls[i]);
    }
    j->values.trues.n = j->values.falses.n = 1;
    j->values.trues.s[0] = trues[0];
    j->values.trues.len[0] = 4;
    j->values.falses.s[0] = falses[0];
    j->values.falses.len[0] = 5;
    j->bad_lines = bad;
    j->n_rows = SIZE_MAX;
    j->chunk_size = chunk;
    j->sync_window = window;
    j->nthreads = threads;
    j->plain_cells = plain;
    r->code = mg_csv_read(j);
}

/* The row parser with its structural fast path and without it (the
 * byte-wise parser alone) cut every row of buf[pos, len) into the same
 * fields, row starts and errors. wide: the fast path's blocks loaded
 * with AVX-512BW (where the CPU has it) or with SSE2. */
static void
same_rows(const mg_csv_dialect *d, const char *buf, size_t pos, size_t len,
          size_t nfields, int wide)
{
    mg_csv_rowp fast, slow;
    if (mg_csv_rowp_init(&fast, d, buf, len, nfields) < 0) {
        return;
    }
    if (mg_csv_rowp_init(&slow, d, buf, len, nfields) < 0) {
        mg_csv_rowp_free(&fast);
        return;
    }
    slow.fast = 0;
    fast.wide = wide && fast.wide;
    for (;;) {
        pos = mg_csv_skip_blank(d, buf, pos, len);
        if (pos >= len) {
            break;
        }
        size_t nf_next = 0, ns_next = 0;
        mg_csv_error ef, es;
        memset(&ef, 0, sizeof(ef));
        memset(&es, 0, sizeof(es));
        long nf = mg_csv_rowp_parse(&fast, pos, &nf_next, &ef);
        long ns = mg_csv_rowp_parse(&slow, pos, &ns_next, &es);
        if (nf != ns || (nf < 0 && (ef.code != es.code || ef.pos != es.pos
                                    || ef.field != es.field))) {
            fprintf(stderr, "row at %zu: %ld vs %ld fields\n", pos, nf, ns);
            abort();
        }
        if (nf < 0) {
            break;
        }
        if (nf_next != ns_next) {
            fprintf(stderr, "row at %zu: next %zu vs %zu\n", pos, nf_next,
                    ns_next);
            abort();
        }
        size_t kept = (size_t)nf < nfields ? (size_t)nf : nfields;
        for (size_t i = 0; i < kept; i++) {
            if (fast.clen[i] != slow.clen[i]
                || memcmp(fast.cell[i], slow.cell[i], fast.clen[i])) {
                fprintf(stderr, "row at %zu: field %zu differs\n", pos, i);
                abort();
            }
        }
        pos = nf_next;
    }
    mg_csv_rowp_free(&fast);
    mg_csv_rowp_free(&slow);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > (1u << 16)) {
        return 0;
    }
    mg_csv_dialect d;
    memset(&d, 0, sizeof(d));
    d.delim = ',';
    d.has_quote = (data[0] & 1) == 0;
    d.quote = '"';
    d.has_escape = (data[0] & 2) != 0;
    d.escape = '\\';
    d.has_comment = (data[0] & 4) != 0;
    d.comment = '#';
    d.doublequote = (data[0] & 8) == 0;
    int bad = (data[0] & 16) ? MG_CSV_BAD_SKIP : MG_CSV_BAD_ERROR;
    size_t nnulls = (size_t)(data[0] >> 5) % 3;
    size_t chunk = (size_t)data[1] % 32 + 1;
    size_t window = (size_t)data[1] >> 5;
    int threads = data[2] % 4 + 1;
    int ftype = data[3] % (MG_CSV_NTYPES + 1) - 1;
    const char *buf = (const char *)data + 4;
    size_t len = size - 4;

    mg_csv_piece head;
    size_t next;
    mg_csv_error err;
    long nf = mg_csv_row(&d, buf, 0, len, &head, &next, &err);
    mg_csv_piece_free(&head);
    if (nf <= 0 || nf > 64) {
        return 0;
    }
    int keep[64], forced[64];
    for (long i = 0; i < nf; i++) {
        keep[i] = (int)i;
        forced[i] = i == 0 ? ftype : -1;
    }
    same_rows(&d, buf, next, len, (size_t)nf, 0);
    same_rows(&d, buf, next, len, (size_t)nf, 1);
    mg_csv_segment seg = {buf, next, len};
    result whole, split;
    /* One chunk, every cell through col_add, against tiny chunks on
     * threads with the run loops. */
    run(&whole, &d, &seg, (size_t)nf, keep, forced, bad, len + 1, 0, 1,
        nnulls, 1);
    run(&split, &d, &seg, (size_t)nf, keep, forced, bad, chunk, window,
        threads, nnulls, 0);
    same(&whole, &split);
    mg_csv_job_free(&whole.job);
    mg_csv_job_free(&split.job);
    return 0;
}
