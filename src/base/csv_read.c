/* csv_read.c - one CSV read, start to end (mg_csv_read, csv_read.h): the
 * split of every input segment into chunks, the quote-state composition
 * that finds each chunk's exact row range, and the parallel stages
 * (tokenize, classify, convert) with the serial unification between them.
 *
 * Correctness never depends on where a chunk boundary falls: each chunk
 * is scanned from every automaton state at once (mg_csv_scan), the states
 * are composed from the start of the segment (which is a row start), so
 * the state at every boundary is exact, and a chunk's rows are those that
 * start at or after its first row start and before the next chunk's.
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
    mg_csv_class *cls;  /* ncols */
    size_t row0;        /* first output row */
    int64_t *byte0;     /* ncols: first string byte */
} chunk;

typedef struct run {
    mg_csv_job *j;
    mg_csv_dfa dfa;
    mg_csv_tokopts topts;
    chunk *ch;
    size_t nch;
    const mg_csv_type *types; /* final, per column */
} run;

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
task_tokenize(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[i];
    (void)mg_csv_tokenize(&r->topts, r->j->segs[c->seg].buf, c->rs, c->re,
                          &c->tok);
}

static void
task_classify(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[i];
    for (size_t k = 0; k < r->j->ncols; k++) {
        int f = r->j->forced[k];
        unsigned want = f < 0 ? (1u << MG_CSV_STR) - 1
                              : (f == MG_CSV_STR ? 0u : 1u << f);
        mg_csv_classify(&c->tok.pieces[k], &r->j->values, want, &c->cls[k]);
    }
}

static void
task_convert(void *ctx, size_t i)
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
        mg_csv_convert(&c->tok.pieces[k], &r->j->values, &c->cls[k],
                       r->types[k], &o);
        mg_csv_class_free(&c->cls[k]);
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
        r->ch[i].cls = MG_RAW_CALLOC(j->ncols ? j->ncols : 1,
                                     sizeof(mg_csv_class));
        r->ch[i].byte0 = MG_RAW_CALLOC(j->ncols ? j->ncols : 1,
                                       sizeof(int64_t));
        if (r->ch[i].cls == NULL || r->ch[i].byte0 == NULL) {
            return -1;
        }
    }
    return 0;
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
    for (size_t i = 0; i < r->nch; i++) {
        chunk *c = &r->ch[i];
        int last = i + 1 == r->nch || r->ch[i + 1].seg != c->seg;
        c->re = last ? r->j->segs[c->seg].end : r->ch[i + 1].rs;
    }
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

/* The first tokenizer error in input order, and the counts. */
static int
collect_rows(run *r)
{
    mg_csv_job *j = r->j;
    size_t total = 0;
    for (size_t i = 0; i < r->nch; i++) {
        chunk *c = &r->ch[i];
        if (c->tok.err.code != MG_CSV_OK) {
            set_error(j, c->seg, c->tok.err.code, c->tok.err.pos,
                      c->tok.err.field, c->tok.err.nfields);
            return -1;
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
        size_t n = keep - row < c->tok.nrows ? keep - row : c->tok.nrows;
        mg_csv_chunk_truncate(&c->tok, n);
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
    size_t pos = mg_csv_row_pos(&r->topts, s->buf, &c->tok, c->rs, c->re, k);
    size_t field = 0;
    for (size_t f = 0; f < r->j->nfields; f++) {
        if (r->j->keep[f] == (int)col) {
            field = f;
        }
    }
    set_error(r->j, c->seg, code, pos, field, 0);
}

/* Final types; forced types that a cell misses and invalid UTF-8 in
 * string columns are errors at the first such cell in input order. */
static int
unify(run *r, mg_csv_type *types)
{
    mg_csv_job *j = r->j;
    for (size_t k = 0; k < j->ncols; k++) {
        unsigned mask = ~0u;
        size_t values = 0;
        int f = j->forced[k];
        for (size_t i = 0; i < r->nch; i++) {
            chunk *c = &r->ch[i];
            mask &= c->cls[k].mask;
            values += c->tok.pieces[k].n - c->cls[k].nulls;
        }
        types[k] = f >= 0 ? (mg_csv_type)f : mg_csv_unify(mask, values > 0);
    }
    for (size_t i = 0; i < r->nch; i++) {
        chunk *c = &r->ch[i];
        size_t best = SIZE_MAX, bestcol = 0;
        mg_csv_code code = MG_CSV_OK;
        for (size_t k = 0; k < j->ncols; k++) {
            size_t bad = SIZE_MAX;
            mg_csv_code kc = MG_CSV_OK;
            if (types[k] != MG_CSV_STR && j->forced[k] >= 0
                && !(c->cls[k].mask & (1u << types[k]))) {
                bad = c->cls[k].first_bad[types[k]];
                kc = MG_CSV_ETYPE;
            }
            if (types[k] == MG_CSV_STR && c->cls[k].bad_utf8_row < bad) {
                bad = c->cls[k].bad_utf8_row;
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
            col->nulls += r->ch[i].cls[k].nulls;
            r->ch[i].byte0[k] = bytes;
            bytes += (int64_t)r->ch[i].tok.pieces[k].len;
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
        for (size_t k = 0; r->ch[i].cls != NULL && k < r->j->ncols; k++) {
            mg_csv_class_free(&r->ch[i].cls[k]);
        }
        MG_RAW_FREE(r->ch[i].cls);
        MG_RAW_FREE(r->ch[i].byte0);
    }
    MG_RAW_FREE(r->ch);
}

static mg_csv_code
nomem(mg_csv_job *j)
{
    set_error(j, 0, MG_CSV_ENOMEM, 0, 0, 0);
    return MG_CSV_ENOMEM;
}

static mg_csv_code
read_stages(run *r, mg_csv_type *types)
{
    mg_csv_job *j = r->j;
    if (make_chunks(r) < 0) {
        return nomem(j);
    }
    (void)mg_csv_parallel(r->nch, j->nthreads, task_scan, r);
    find_rows(r);
    (void)mg_csv_parallel(r->nch, j->nthreads, task_tokenize, r);
    if (collect_rows(r) < 0) {
        return j->err.code;
    }
    (void)mg_csv_parallel(r->nch, j->nthreads, task_classify, r);
    if (unify(r, types) < 0) {
        return j->err.code;
    }
    if (alloc_outputs(r, types) < 0) {
        return nomem(j);
    }
    r->types = types;
    (void)mg_csv_parallel(r->nch, j->nthreads, task_convert, r);
    return MG_CSV_OK;
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
    r.topts.dialect = j->dialect;
    r.topts.dfa = &r.dfa;
    r.topts.nfields = j->nfields;
    r.topts.keep = j->keep;
    r.topts.ncols = j->ncols;
    r.topts.bad_lines = j->bad_lines;
    r.topts.max_rows = SIZE_MAX;
    mg_csv_type *types = MG_RAW_CALLOC(j->ncols ? j->ncols : 1,
                                       sizeof(mg_csv_type));
    mg_csv_code rc = types == NULL ? nomem(j) : read_stages(&r, types);
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
