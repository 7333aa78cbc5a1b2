/* csv_read.c - one CSV read, start to end (mg_csv_read, csv_read.h): the
 * split of every input segment into chunks, the exact row range of each
 * chunk, and the parallel stages (parse each chunk into typed columns in
 * one pass; parse again the columns whose final type the chunk's values
 * cannot give; emit into the output columns) with the serial unification
 * of types between them. With a row limit (n_rows) the chunks are parsed
 * a wave at a time and the read stops once it has the rows.
 *
 * Correctness never depends on where a chunk boundary falls: a chunk's
 * rows are those that start at or after its first row start and before
 * the next chunk's, and that first row start is exact. It is found by
 * running the automaton from every state at once from the boundary until
 * the states converge (mg_csv_sync, a few bytes in practice: a converged
 * state is the true one whatever the boundary's state was); where they do
 * not converge within sync_window, every chunk is scanned from every
 * state (mg_csv_scan) and the states are composed from the start of the
 * segment (a row start), so the state at every boundary is exact.
 * Plain C, no Python; the threads run only csv_*.c code. Outputs are
 * mg_blocks (one reference each, owned by the job until taken).
 */
#include "csv_read.h"

#include <string.h>

typedef struct chunk {
    size_t seg;
    size_t b, e;        /* split range */
    size_t rs, re;      /* exact row range */
    uint8_t trans[MG_CSV_NSTATES];
    mg_csv_chunk tok;
    size_t row0;        /* first output row */
    int64_t *byte0;     /* ncols: first string byte */
    size_t *bad_utf8;   /* ncols: first bad row of a string column */
} chunk;

typedef struct run {
    mg_csv_job *j;
    mg_csv_dfa dfa;
    mg_csv_parseopts popts;
    unsigned *want;           /* per column */
    chunk *ch;
    size_t nch;
    size_t wave0;             /* first chunk of the wave being parsed */
    size_t max_rows;          /* per chunk of that wave */
    int sync_failed;
    const mg_csv_type *types; /* final, per column */
} run;

static void
task_sync(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[i];
    const mg_csv_segment *s = &r->j->segs[c->seg];
    if (i == 0 || r->ch[i - 1].seg != c->seg) {
        c->rs = s->start;
        return;
    }
    size_t w = r->j->sync_window ? r->j->sync_window : (size_t)1 << 16;
    c->rs = mg_csv_sync(&r->dfa, r->j->dialect, s->buf, c->b, s->end, w);
    if (c->rs == SIZE_MAX) {
        __atomic_store_n(&r->sync_failed, 1, __ATOMIC_RELAXED);
    }
}

static void
task_scan(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[i];
    if (i + 1 == r->nch || r->ch[i + 1].seg != c->seg) {
        return; /* the state after a segment's last chunk is not needed */
    }
    const mg_csv_segment *s = &r->j->segs[c->seg];
    mg_csv_scan(&r->dfa, s->buf + c->b, c->e - c->b, c->trans);
}

static void
task_parse(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[r->wave0 + i];
    const mg_csv_segment *s = &r->j->segs[c->seg];
    (void)mg_csv_parse(&r->popts, s->buf, c->rs, c->re, r->max_rows, -1, 0,
                       &c->tok);
    if (s->droppable) {
        mg_csv_mem_drop(s->buf + c->rs, c->re - c->rs);
    }
}

/* Parses column k of chunk c again, as type t, over the rows it keeps. */
static int
reparse_column(run *r, chunk *c, size_t k, mg_csv_type t)
{
    mg_csv_chunk tmp;
    unsigned want = t == MG_CSV_STR ? 0u : 1u << t;
    mg_csv_code rc = mg_csv_parse(&r->popts, r->j->segs[c->seg].buf, c->rs,
                                  c->re, c->tok.nrows, (long)k, want, &tmp);
    if (rc != MG_CSV_OK) {
        mg_csv_chunk_free(&tmp);
        return -1;
    }
    mg_csv_col_free(&c->tok.cols[k]);
    c->tok.cols[k] = tmp.cols[k];
    memset(&tmp.cols[k], 0, sizeof(tmp.cols[k]));
    mg_csv_chunk_free(&tmp);
    return 0;
}

/* Columns whose values cannot be emitted as their final type are parsed
 * again; then string columns are checked for UTF-8. */
static void
task_finish(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[i];
    for (size_t k = 0; k < r->j->ncols; k++) {
        mg_csv_col *col = &c->tok.cols[k];
        mg_csv_type t = r->types[k];
        c->bad_utf8[k] = SIZE_MAX;
        if (!(col->mask & (1u << t)) && t != MG_CSV_STR) {
            continue; /* a forced type it does not fit: an error */
        }
        if (!mg_csv_col_can_emit(col, t) && reparse_column(r, c, k, t) < 0) {
            c->tok.err.code = MG_CSV_ENOMEM;
            return;
        }
        if (t == MG_CSV_STR) {
            c->bad_utf8[k] = mg_csv_col_bad_utf8(&c->tok.cols[k]);
        }
    }
}

static void
task_emit(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[i];
    for (size_t k = 0; k < r->j->ncols; k++) {
        mg_csv_colout *col = &r->j->cols[k];
        mg_csv_out o;
        memset(&o, 0, sizeof(o));
        o.row0 = c->row0;
        o.validity = col->validity ? col->validity->data : NULL;
        if (r->types[k] == MG_CSV_STR) {
            o.offsets = col->values->data;
            o.bytes = col->bytes->data;
            o.byte0 = c->byte0[k];
        }
        else {
            o.values = col->values->data;
        }
        mg_csv_col_emit(&c->tok.cols[k], r->types[k], &o);
        mg_csv_col_free(&c->tok.cols[k]);
    }
}

/* Split every segment into chunks of about chunk_size bytes. */
static int
make_chunks(run *r)
{
    mg_csv_job *j = r->j;
    size_t cs = j->chunk_size ? j->chunk_size : 1;
    size_t n = 0;
    for (size_t s = 0; s < j->nsegs; s++) {
        size_t len = j->segs[s].end - j->segs[s].start;
        n += len / cs + 1;
    }
    r->ch = MG_RAW_CALLOC(n, sizeof(chunk));
    if (r->ch == NULL) {
        return -1;
    }
    size_t k = 0;
    for (size_t s = 0; s < j->nsegs; s++) {
        size_t b = j->segs[s].start, end = j->segs[s].end;
        do {
            chunk *c = &r->ch[k++];
            c->seg = s;
            c->b = b;
            c->e = end - b > cs ? b + cs : end;
            b = c->e;
        } while (b < end);
    }
    r->nch = k;
    for (size_t i = 0; i < r->nch; i++) {
        r->ch[i].byte0 = MG_RAW_CALLOC(j->ncols ? j->ncols : 1,
                                       sizeof(int64_t));
        r->ch[i].bad_utf8 = MG_RAW_CALLOC(j->ncols ? j->ncols : 1,
                                          sizeof(size_t));
        if (r->ch[i].byte0 == NULL || r->ch[i].bad_utf8 == NULL) {
            return -1;
        }
    }
    return 0;
}

/* Each chunk's end is the next chunk's start (or its segment's end). */
static void
set_ends(run *r)
{
    for (size_t i = 0; i < r->nch; i++) {
        chunk *c = &r->ch[i];
        int last = i + 1 == r->nch || r->ch[i + 1].seg != c->seg;
        c->re = last ? r->j->segs[c->seg].end : r->ch[i + 1].rs;
    }
}

/* Row starts found by sync, kept in order (a sync may look past the
 * next boundary). */
static void
order_rows(run *r)
{
    for (size_t i = 1; i < r->nch; i++) {
        chunk *c = &r->ch[i];
        if (c->seg == r->ch[i - 1].seg && c->rs < r->ch[i - 1].rs) {
            c->rs = r->ch[i - 1].rs;
        }
    }
    set_ends(r);
}

/* Exact row ranges from the composed automaton states. */
static void
find_rows(run *r)
{
    int state = MG_CSV_S_ROW;
    size_t prev_rs = 0;
    for (size_t i = 0; i < r->nch; i++) {
        chunk *c = &r->ch[i];
        const mg_csv_segment *s = &r->j->segs[c->seg];
        if (i == 0 || r->ch[i - 1].seg != c->seg) {
            state = MG_CSV_S_ROW;
            prev_rs = s->start;
        }
        size_t rs = mg_csv_next_row(&r->dfa, s->buf, c->b, s->end, state);
        c->rs = rs > prev_rs ? rs : prev_rs;
        prev_rs = c->rs;
        state = c->trans[state];
    }
    set_ends(r);
}

static void
set_error(mg_csv_job *j, size_t seg, mg_csv_code code, size_t pos,
          size_t field, size_t nfields)
{
    j->err.code = code;
    j->err.pos = pos;
    j->err.field = field;
    j->err.nfields = nfields;
    j->err_seg = seg;
}

/* 1 when the error of chunk c lies past the rows a row limit wants
 * (rows: those kept before c): the read stops before it. */
static int
error_past_limit(const run *r, const chunk *c, size_t rows)
{
    const mg_csv_job *j = r->j;
    return j->skip_footer == 0 && j->n_rows != SIZE_MAX
           && rows + c->tok.nrows >= j->n_rows;
}

/* The first parse error in input order, and the counts: the chunks in
 * [0, nparsed) are looked at; those past the rows kept are dropped, and
 * the one the limit cuts is parsed again up to it (its types must come
 * from the rows kept only). */
static int
collect_rows(run *r, size_t nparsed)
{
    mg_csv_job *j = r->j;
    size_t total = 0, used = nparsed;
    for (size_t i = 0; i < nparsed; i++) {
        chunk *c = &r->ch[i];
        if (c->tok.err.code != MG_CSV_OK) {
            if (c->tok.err.code == MG_CSV_ENOMEM
                || !error_past_limit(r, c, total)) {
                set_error(j, c->seg, c->tok.err.code, c->tok.err.pos,
                          c->tok.err.field, c->tok.err.nfields);
                return -1;
            }
            total += c->tok.nrows;
            used = i + 1;
            break;
        }
        if (c->tok.nskipped && j->nskipped == 0) {
            j->first_skipped_seg = c->seg;
            j->first_skipped_pos = c->tok.first_skipped;
        }
        j->nskipped += c->tok.nskipped;
        total += c->tok.nrows;
    }
    size_t keep = total > j->skip_footer ? total - j->skip_footer : 0;
    if (j->n_rows < keep) {
        keep = j->n_rows;
    }
    size_t row = 0;
    for (size_t i = 0; i < r->nch; i++) {
        chunk *c = &r->ch[i];
        size_t n = i >= used ? 0
                   : keep - row < c->tok.nrows ? keep - row : c->tok.nrows;
        if (n < c->tok.nrows || c->tok.err.code != MG_CSV_OK
            || c->tok.cols == NULL) { /* (n == 0: an empty parse) */
            mg_csv_chunk_free(&c->tok);
            if (mg_csv_parse(&r->popts, j->segs[c->seg].buf, c->rs, c->re,
                             n, -1, 0, &c->tok) != MG_CSV_OK) {
                set_error(j, c->seg, c->tok.err.code, c->tok.err.pos,
                          c->tok.err.field, c->tok.err.nfields);
                return -1;
            }
        }
        c->row0 = row;
        row += n;
    }
    j->nrows = keep;
    return 0;
}

/* The error of a cell found by row index k of chunk c. */
static void
cell_error(run *r, chunk *c, mg_csv_code code, size_t k, size_t col)
{
    const mg_csv_segment *s = &r->j->segs[c->seg];
    size_t pos = mg_csv_row_pos(&r->popts, s->buf, &c->tok, c->rs, c->re, k);
    size_t field = 0;
    for (size_t f = 0; f < r->j->nfields; f++) {
        if (r->j->keep[f] == (int)col) {
            field = f;
        }
    }
    set_error(r->j, c->seg, code, pos, field, 0);
}

/* Final types from the AND of the chunks' masks (or forced). */
static void
unify(run *r, mg_csv_type *types)
{
    mg_csv_job *j = r->j;
    for (size_t k = 0; k < j->ncols; k++) {
        unsigned mask = ~0u;
        size_t values = 0;
        int f = j->forced[k];
        for (size_t i = 0; i < r->nch; i++) {
            const mg_csv_col *col = &r->ch[i].tok.cols[k];
            mask &= col->mask;
            values += col->n - col->nulls;
        }
        types[k] = f >= 0 ? (mg_csv_type)f : mg_csv_unify(mask, values > 0);
    }
}

/* Forced types that a cell misses and invalid UTF-8 in string columns
 * are errors at the first such cell in input order. */
static int
cell_errors(run *r, const mg_csv_type *types)
{
    mg_csv_job *j = r->j;
    for (size_t i = 0; i < r->nch; i++) {
        chunk *c = &r->ch[i];
        if (c->tok.err.code == MG_CSV_ENOMEM) {
            set_error(j, c->seg, MG_CSV_ENOMEM, 0, 0, 0);
            return -1;
        }
        size_t best = SIZE_MAX, bestcol = 0;
        mg_csv_code code = MG_CSV_OK;
        for (size_t k = 0; k < j->ncols; k++) {
            const mg_csv_col *col = &c->tok.cols[k];
            size_t bad = SIZE_MAX;
            mg_csv_code kc = MG_CSV_OK;
            if (types[k] != MG_CSV_STR && j->forced[k] >= 0
                && !(col->mask & (1u << types[k]))) {
                bad = col->first_bad[types[k]];
                kc = MG_CSV_ETYPE;
            }
            if (types[k] == MG_CSV_STR && c->bad_utf8[k] < bad) {
                bad = c->bad_utf8[k];
                kc = MG_CSV_EUTF8;
            }
            if (bad < best) {
                best = bad;
                bestcol = k;
                code = kc;
            }
        }
        if (code != MG_CSV_OK) {
            cell_error(r, c, code, best, bestcol);
            return -1;
        }
    }
    return 0;
}

static size_t
type_size(mg_csv_type t)
{
    switch (t) {
    case MG_CSV_BOOL:
        return 1;
    case MG_CSV_DATE:
        return 4;
    default:
        return 8;
    }
}

/* A zeroed block for an output buffer, with huge pages when large. */
static mg_block *
out_block(size_t n)
{
    mg_block *b = mg_block_new(n);
    if (b != NULL && b->mapped) {
        mg_csv_mem_advise(b->data, b->mapped);
    }
    return b;
}

static int
alloc_outputs(run *r, const mg_csv_type *types)
{
    mg_csv_job *j = r->j;
    j->cols = MG_RAW_CALLOC(j->ncols ? j->ncols : 1, sizeof(mg_csv_colout));
    if (j->cols == NULL) {
        return -1;
    }
    for (size_t k = 0; k < j->ncols; k++) {
        mg_csv_colout *col = &j->cols[k];
        col->type = types[k];
        int64_t bytes = 0;
        for (size_t i = 0; i < r->nch; i++) {
            const mg_csv_col *cc = &r->ch[i].tok.cols[k];
            col->nulls += cc->nulls;
            r->ch[i].byte0[k] = bytes;
            bytes += (int64_t)cc->len;
        }
        if (types[k] == MG_CSV_STR) {
            col->values = out_block((j->nrows + 1) * sizeof(int64_t));
            col->bytes = out_block((size_t)bytes);
            if (col->values == NULL || col->bytes == NULL) {
                return -1;
            }
            ((int64_t *)col->values->data)[j->nrows] = bytes;
        }
        else {
            col->values = out_block(j->nrows * type_size(types[k]));
            if (col->values == NULL) {
                return -1;
            }
        }
        if (col->nulls) {
            col->validity = out_block((j->nrows + 7) / 8);
            if (col->validity == NULL) {
                return -1;
            }
        }
    }
    return 0;
}

static void
run_free(run *r)
{
    for (size_t i = 0; i < r->nch; i++) {
        mg_csv_chunk_free(&r->ch[i].tok);
        MG_RAW_FREE(r->ch[i].byte0);
        MG_RAW_FREE(r->ch[i].bad_utf8);
    }
    MG_RAW_FREE(r->ch);
    MG_RAW_FREE(r->want);
}

static mg_csv_code
nomem(mg_csv_job *j)
{
    set_error(j, 0, MG_CSV_ENOMEM, 0, 0, 0);
    return MG_CSV_ENOMEM;
}

/* Exact row ranges: by sync where the states converge, else by the
 * composed scan of every chunk. */
static void
split_rows(run *r)
{
    mg_csv_job *j = r->j;
    if (r->nch == j->nsegs) { /* one chunk per segment: nothing to find */
        for (size_t i = 0; i < r->nch; i++) {
            r->ch[i].rs = j->segs[r->ch[i].seg].start;
        }
        set_ends(r);
        return;
    }
    (void)mg_csv_parallel(r->nch, j->nthreads, task_sync, r);
    if (!r->sync_failed) {
        order_rows(r);
        return;
    }
    (void)mg_csv_parallel(r->nch, j->nthreads, task_scan, r);
    find_rows(r);
}

/* Parses every chunk, or with a row limit (and no footer to drop) a
 * wave of nthreads chunks at a time until the rows are there or a chunk
 * failed. Returns how many chunks were parsed. */
static size_t
parse_chunks(run *r)
{
    mg_csv_job *j = r->j;
    size_t wave = r->nch;
    int limit = j->n_rows != SIZE_MAX && j->skip_footer == 0;
    if (limit) {
        wave = (size_t)(j->nthreads > 0 ? j->nthreads : 1);
    }
    size_t rows = 0;
    r->max_rows = SIZE_MAX;
    for (r->wave0 = 0; r->wave0 < r->nch; r->wave0 += wave) {
        size_t n = r->nch - r->wave0 < wave ? r->nch - r->wave0 : wave;
        if (limit) {
            r->max_rows = j->n_rows - rows;
        }
        (void)mg_csv_parallel(n, j->nthreads, task_parse, r);
        for (size_t i = r->wave0; i < r->wave0 + n; i++) {
            if (r->ch[i].tok.err.code != MG_CSV_OK) {
                return i + 1;
            }
            rows += r->ch[i].tok.nrows;
        }
        if (limit && rows >= j->n_rows) {
            return r->wave0 + n;
        }
    }
    return r->nch;
}

static mg_csv_code
read_stages(run *r, mg_csv_type *types)
{
    mg_csv_job *j = r->j;
    if (make_chunks(r) < 0) {
        return nomem(j);
    }
    split_rows(r);
    size_t nparsed = parse_chunks(r);
    if (collect_rows(r, nparsed) < 0) {
        return j->err.code;
    }
    unify(r, types);
    r->wave0 = 0;
    r->types = types;
    (void)mg_csv_parallel(r->nch, j->nthreads, task_finish, r);
    if (cell_errors(r, types) < 0) {
        return j->err.code;
    }
    if (alloc_outputs(r, types) < 0) {
        return nomem(j);
    }
    (void)mg_csv_parallel(r->nch, j->nthreads, task_emit, r);
    return MG_CSV_OK;
}

/* The types each column tries: every one, or its forced type. */
static int
make_want(run *r)
{
    mg_csv_job *j = r->j;
    r->want = MG_RAW_CALLOC(j->ncols ? j->ncols : 1, sizeof(unsigned));
    if (r->want == NULL) {
        return -1;
    }
    for (size_t k = 0; k < j->ncols; k++) {
        int f = j->forced[k];
        r->want[k] = f < 0 ? (1u << MG_CSV_STR) - 1
                           : (f == MG_CSV_STR ? 0u : 1u << f);
    }
    r->popts.want = r->want;
    return 0;
}

mg_csv_code
mg_csv_read(mg_csv_job *j)
{
    run r;
    memset(&r, 0, sizeof(r));
    r.j = j;
    j->nrows = 0;
    j->cols = NULL;
    j->nskipped = 0;
    memset(&j->err, 0, sizeof(j->err));
    mg_csv_dfa_init(&r.dfa, j->dialect);
    r.popts.dialect = j->dialect;
    r.popts.values = &j->values;
    r.popts.nfields = j->nfields;
    r.popts.keep = j->keep;
    r.popts.ncols = j->ncols;
    r.popts.bad_lines = j->bad_lines;
    mg_csv_type *types = MG_RAW_CALLOC(j->ncols ? j->ncols : 1,
                                       sizeof(mg_csv_type));
    mg_csv_code rc = types == NULL || make_want(&r) < 0
                         ? nomem(j) : read_stages(&r, types);
    MG_RAW_FREE(types);
    run_free(&r);
    if (rc != MG_CSV_OK) {
        mg_csv_job_free(j);
    }
    return rc;
}

void
mg_csv_job_free(mg_csv_job *j)
{
    if (j->cols != NULL) {
        for (size_t k = 0; k < j->ncols; k++) {
            mg_block_decref(j->cols[k].values);
            mg_block_decref(j->cols[k].bytes);
            mg_block_decref(j->cols[k].validity);
        }
    }
    MG_RAW_FREE(j->cols);
    j->cols = NULL;
}
