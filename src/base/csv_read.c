/* csv_read.c - one CSV read, start to end (mg_csv_read, csv_read.h): the
 * split of every input segment into chunks, the exact row range of each
 * chunk, and rounds of a few chunks each, in input order, with parallel
 * stages (parse each chunk into typed columns in one pass; parse again
 * the columns whose type the chunk's values cannot give; emit into the
 * output columns) and the serial unification of types between them. The
 * outputs are reserved for the worst case (sparse memfd blocks: only the
 * rows written cost memory; value and string blocks are not zeroed, as a
 * recycled one may hold a freed block's bytes, so every byte the result
 * shows is written here, and the pages past it given back) and a column
 * whose type widens after rows were emitted is converted in place (int64 to float64) or built again
 * from the input. A round's chunk buffers are used again by the next
 * round, so a read needs its result plus a few chunks. With a row limit
 * (n_rows) the read stops once it has the rows.
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
 * mg_blocks (one reference each, owned by the job until taken); the
 * stages run on a team of threads started once per read (csv_par.c).
 * Emission is one task per column of each chunk of the round, taken
 * largest first, by preference by the thread that parsed the chunk and
 * into a column no other thread is writing (emit_tasks). The parsed
 * input of a file mapping is dropped from the process in batches of a
 * few MiB (plan_drops). Locks: none of its own (the stages' claims are
 * atomic flags); the kernel's lock of each output memfd is taken by
 * every pwrite into it, which is why emission is split per column and
 * two threads seldom write one column at once.
 */
#include "csv_read.h"

#include <math.h>
#include <stdatomic.h>
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
    int parsed_by;      /* the team member that parsed it (its columns
                         * are in that thread's cache) */
} chunk;

#define NO_TYPE (-1)

/* What was emitted of one output column so far. */
typedef struct outcol {
    int type;          /* the type of the rows emitted, or NO_TYPE (only
                        * nulls so far) */
    unsigned mask;     /* AND of the chunks' masks */
    size_t values;     /* non-null cells */
    int negzero;       /* an int "-0" was emitted (as float: -0.0) */
    int64_t bytes;     /* string bytes emitted */
} outcol;

/* Input of segment seg, [b, e), to drop from the process. */
struct drop_range {
    size_t seg, b, e;
};

/* One emission task: chunk x / ncols of the round, column x % ncols. */
struct emit_task {
    size_t cost;   /* about the bytes it writes */
    size_t x;
};

typedef struct run {
    mg_csv_job *j;
    mg_csv_dfa dfa;
    mg_csv_parseopts popts;
    unsigned *want;     /* per column */
    chunk *ch;
    size_t nch;
    size_t wave0;       /* the round: chunks [wave0, wave0 + nwave) */
    size_t nwave;
    size_t max_rows;    /* per chunk of the round */
    int sync_failed;
    int *types;         /* per column: the type of this round, or NO_TYPE */
    outcol *oc;
    size_t rows;        /* rows emitted */
    size_t cap_rows;    /* rows the outputs can hold */
    size_t cap_bytes;   /* string bytes a column can hold */
    size_t rb_col;      /* the column being built again */
    mg_csv_team *team;  /* the threads of the stages */
    struct emit_task *order; /* the round's emission tasks, largest
                              * first */
    atomic_uchar *taken;     /* per entry of order: claimed by a thread */
    atomic_uint *col_busy;   /* per column: threads emitting into it */
    size_t drop_seg;    /* parsed, not yet dropped: [drop_b, drop_e) of */
    size_t drop_b, drop_e; /* segment drop_seg */
    struct drop_range *drops; /* to drop in the next emission stage */
    size_t ndrops;
    atomic_int drops_taken;   /* a thread of the stage drops them */
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

/* A column stored as strings is emitted as strings: its UTF-8 is checked
 * right after a parse of the chunk (while its bytes are in this
 * thread's cache), over the rows that parse kept. */
static void
check_utf8(run *r, chunk *c)
{
    for (size_t k = 0; k < r->j->ncols; k++) {
        c->bad_utf8[k] = mg_csv_col_bad_utf8(&c->tok.cols[k]);
    }
}

static void
task_parse(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[r->wave0 + i];
    const mg_csv_segment *s = &r->j->segs[c->seg];
    (void)mg_csv_parse(&r->popts, s->buf, c->rs, c->re, r->max_rows, -1, 0,
                       &c->tok, 1);
    c->parsed_by = mg_csv_team_member();
    check_utf8(r, c);
}

/* The parsed input of a file mapping is dropped from the process a few
 * MiB at a time, by one thread of the next emission stage: dropping
 * pages of a process whose other threads run costs a TLB shootdown (an
 * inter-processor interrupt), and one per chunk cost more than the
 * pages' memory saved. The input mapped at once is at most DROP_BATCH
 * plus two rounds; the rest of the last segment is left to the caller,
 * who unmaps it after the read. */
#define DROP_BATCH ((size_t)8 << 20)

static void
drop_pending(run *r)
{
    if (r->drop_e > r->drop_b && r->j->segs[r->drop_seg].droppable) {
        r->drops[r->ndrops++] = (struct drop_range){r->drop_seg, r->drop_b,
                                                    r->drop_e};
    }
    r->drop_b = r->drop_e;
}

/* Adds the round's parsed rows to the pending range; plans its drop
 * once it is DROP_BATCH long or its segment ends (at most one range per
 * chunk of the round, and one more). */
static void
plan_drops(run *r)
{
    for (size_t i = r->wave0; i < r->wave0 + r->nwave; i++) {
        const chunk *c = &r->ch[i];
        if (c->seg != r->drop_seg) {
            drop_pending(r);
            r->drop_seg = c->seg;
            r->drop_b = c->rs;
        }
        r->drop_e = c->re;
    }
    if (r->drop_e - r->drop_b >= DROP_BATCH) {
        drop_pending(r);
    }
}

static void
run_drops(run *r)
{
    for (size_t i = 0; i < r->ndrops; i++) {
        const struct drop_range *d = &r->drops[i];
        mg_csv_mem_drop(r->j->segs[d->seg].buf + d->b, d->e - d->b);
    }
}

/* Parses column k of chunk c again, as type t, over the rows it keeps. */
static int
reparse_column(run *r, chunk *c, size_t k, mg_csv_type t)
{
    mg_csv_chunk tmp;
    unsigned want = t == MG_CSV_STR ? 0u : 1u << t;
    mg_csv_code rc = mg_csv_parse(&r->popts, r->j->segs[c->seg].buf, c->rs,
                                  c->re, c->tok.nrows, (long)k, want, &tmp,
                                  0);
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

/* The type a column is emitted as in this round (NO_TYPE: none yet; the
 * final type of a column of nulls only is STR). */
static mg_csv_type
emit_type(const run *r, size_t k)
{
    return r->types[k] == NO_TYPE ? MG_CSV_STR : (mg_csv_type)r->types[k];
}

/* Column k of chunk c made ready to emit as type t: parsed again where
 * its values cannot give t; the first bad UTF-8 row of a string. */
static int
finish_column(run *r, chunk *c, size_t k, mg_csv_type t)
{
    mg_csv_col *col = &c->tok.cols[k];
    if (t != MG_CSV_STR) {
        c->bad_utf8[k] = SIZE_MAX;
    }
    if (!(col->mask & (1u << t)) && t != MG_CSV_STR) {
        return 0; /* a forced type it does not fit: an error */
    }
    if (!mg_csv_col_can_emit(col, t)) {
        if (reparse_column(r, c, k, t) < 0) {
            return -1;
        }
        if (t == MG_CSV_STR) {
            c->bad_utf8[k] = mg_csv_col_bad_utf8(&c->tok.cols[k]);
        }
    }
    return 0;
}

static void
task_finish(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[r->wave0 + i];
    for (size_t k = 0; k < r->j->ncols; k++) {
        if (finish_column(r, c, k, emit_type(r, k)) < 0) {
            c->tok.err.code = MG_CSV_ENOMEM;
            return;
        }
    }
}

/* Where column k of chunk c goes. */
static void
out_of(const run *r, const chunk *c, size_t k, mg_csv_type t, mg_csv_out *o)
{
    const mg_csv_colout *col = &r->j->cols[k];
    memset(o, 0, sizeof(*o));
    o->row0 = c->row0;
    o->validity = col->validity ? col->validity->data : NULL;
    o->values_fd = o->offsets_fd = o->bytes_fd = -1;
    if (t == MG_CSV_STR) {
        o->offsets = col->values->data;
        o->offsets_fd = mg_block_fd(col->values);
        o->bytes = col->bytes->data;
        o->bytes_fd = mg_block_fd(col->bytes);
        o->byte0 = c->byte0[k];
    }
    else {
        o->values = col->values->data;
        o->values_fd = mg_block_fd(col->values);
    }
}

/* Emission task x is column x % ncols of the round's chunk x / ncols.
 * Each thread of the stage runs emit_tasks, which takes, in this order
 * of preference: a task of a chunk this thread parsed (its columns are
 * in this thread's cache) whose column no other thread is writing (a
 * write into a memfd takes the file's lock, so two at once into one
 * column mostly wait on each other); any task whose column is free; any
 * task. Among equals the largest first, so the stage ends on small
 * tasks and no thread waits long for another at its end. */
static void
emit_one(run *r, size_t x)
{
    size_t n = r->j->ncols;
    chunk *c = &r->ch[r->wave0 + x / n];
    size_t k = x % n;
    mg_csv_out o;
    mg_csv_type t = emit_type(r, k);
    out_of(r, c, k, t, &o);
    mg_csv_col_emit(&c->tok.cols[k], t, &o);
}

/* Where a thread is in the round's list of emission tasks. */
typedef struct emit_cursor {
    size_t m;        /* tasks */
    size_t low;      /* every entry below it is taken */
    int me;          /* this thread's team member index */
    int own_left;    /* 0 once no task of its own chunks is left */
} emit_cursor;

/* 2: own chunk, 1: its column is free (both: 3). */
static int
emit_score(const run *r, const emit_cursor *e, size_t i)
{
    size_t n = r->j->ncols, x = r->order[i].x;
    int own = e->own_left && r->ch[r->wave0 + x / n].parsed_by == e->me;
    int free_col = atomic_load_explicit(&r->col_busy[x % n],
                                        memory_order_relaxed) == 0;
    return own * 2 + free_col;
}

/* The entry of order this thread runs next (claimed), or SIZE_MAX: none
 * is left. */
static size_t
next_emit(run *r, emit_cursor *e)
{
    for (;;) {
        while (e->low < e->m && atomic_load_explicit(&r->taken[e->low],
                                                     memory_order_relaxed)) {
            e->low++;
        }
        size_t best = SIZE_MAX;
        int best_score = -1, own_seen = 0;
        int enough = e->own_left ? 3 : 1;
        for (size_t i = e->low; i < e->m && best_score < enough; i++) {
            if (atomic_load_explicit(&r->taken[i], memory_order_relaxed)) {
                continue;
            }
            int sc = emit_score(r, e, i);
            own_seen |= sc >= 2;
            if (sc > best_score) {
                best_score = sc;
                best = i;
            }
        }
        if (best == SIZE_MAX) {
            return SIZE_MAX;
        }
        if (best_score < enough && !own_seen) {
            e->own_left = 0; /* a whole scan found none of its own */
        }
        if (!atomic_exchange_explicit(&r->taken[best], 1,
                                      memory_order_relaxed)) {
            return best;
        }
    }
}

static void
emit_tasks(void *ctx, size_t unused)
{
    (void)unused;
    run *r = ctx;
    emit_cursor e = {r->nwave * r->j->ncols, 0, mg_csv_team_member(), 1};
    if (r->ndrops > 0 && !atomic_exchange_explicit(&r->drops_taken, 1,
                                                   memory_order_relaxed)) {
        run_drops(r);
    }
    for (size_t i; (i = next_emit(r, &e)) != SIZE_MAX;) {
        atomic_uint *busy = &r->col_busy[r->order[i].x % r->j->ncols];
        atomic_fetch_add_explicit(busy, 1, memory_order_relaxed);
        emit_one(r, r->order[i].x);
        atomic_fetch_sub_explicit(busy, 1, memory_order_relaxed);
    }
}

static int
cost_desc(const void *a, const void *b)
{
    const struct emit_task *p = a, *q = b;
    if (p->cost != q->cost) {
        return p->cost < q->cost ? 1 : -1;
    }
    return p->x < q->x ? -1 : p->x > q->x;
}

/* The round's emission tasks, largest first: a task writes about 8
 * bytes a row (values or offsets) plus its string bytes. */
static void
plan_emission(run *r)
{
    size_t n = r->j->ncols, m = r->nwave * n;
    for (size_t x = 0; x < m; x++) {
        const mg_csv_col *col = &r->ch[r->wave0 + x / n].tok.cols[x % n];
        r->order[x].cost = col->n * 8 + (emit_type(r, x % n) == MG_CSV_STR
                                             ? col->len : 0);
        r->order[x].x = x;
        atomic_store_explicit(&r->taken[x], 0, memory_order_relaxed);
    }
    qsort(r->order, m, sizeof(r->order[0]), cost_desc);
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
        /* ceil(len / cs) chunks of equal size (a file a little over the
         * chunk size gives two halves, not a chunk and a sliver) */
        size_t b = j->segs[s].start, end = j->segs[s].end;
        size_t len = end - b, m = len / cs + (len % cs != 0);
        size_t each = m ? len / m + (len % m != 0) : 0;
        do {
            chunk *c = &r->ch[k++];
            c->seg = s;
            c->b = b;
            c->e = end - b > each ? b + each : end;
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

static void
chunk_error(mg_csv_job *j, const chunk *c)
{
    set_error(j, c->seg, c->tok.err.code, c->tok.err.pos, c->tok.err.field,
              c->tok.err.nfields);
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

/* The first forced-type or UTF-8 error of chunk c: 1 and the error set,
 * else 0. */
static int
first_cell_error(run *r, chunk *c)
{
    mg_csv_job *j = r->j;
    size_t best = SIZE_MAX, bestcol = 0;
    mg_csv_code code = MG_CSV_OK;
    for (size_t k = 0; k < j->ncols; k++) {
        const mg_csv_col *col = &c->tok.cols[k];
        mg_csv_type t = emit_type(r, k);
        size_t bad = SIZE_MAX;
        mg_csv_code kc = MG_CSV_OK;
        if (t != MG_CSV_STR && j->forced[k] >= 0 && !(col->mask & (1u << t))) {
            bad = col->first_bad[t];
            kc = MG_CSV_ETYPE;
        }
        if (t == MG_CSV_STR && c->bad_utf8[k] < bad) {
            bad = c->bad_utf8[k];
            kc = MG_CSV_EUTF8;
        }
        if (bad < best) {
            best = bad;
            bestcol = k;
            code = kc;
        }
    }
    if (code == MG_CSV_OK) {
        return 0;
    }
    cell_error(r, c, code, best, bestcol);
    return 1;
}

/* The roles of a column's blocks, for the block cache. */
enum { ROLE_VALUES = 1, ROLE_BYTES = 2, ROLE_VALIDITY = 3 };

/* A block for an output buffer of column k, zeroed when zero, with huge
 * pages when large: a read done again takes the same column's mappings. */
static mg_block *
out_block(size_t n, int zero, size_t k, int role)
{
    uint64_t key = ((uint64_t)0x435356u << 40) | ((uint64_t)k << 2)
                   | (uint64_t)role; /* "CSV", column, role */
    mg_block *b = mg_block_new_for(n, zero, key);
    if (b != NULL && b->mapped) {
        mg_csv_mem_advise(b->data, b->mapped);
    }
    return b;
}

static void
run_free(run *r)
{
    mg_csv_team_free(r->team);
    r->team = NULL;
    for (size_t i = 0; i < r->nch; i++) {
        mg_csv_chunk_free(&r->ch[i].tok);
        MG_RAW_FREE(r->ch[i].byte0);
        MG_RAW_FREE(r->ch[i].bad_utf8);
    }
    MG_RAW_FREE(r->ch);
    MG_RAW_FREE(r->want);
    MG_RAW_FREE(r->types);
    MG_RAW_FREE(r->oc);
    MG_RAW_FREE(r->order);
    MG_RAW_FREE(r->drops);
    MG_RAW_FREE(r->taken);
    MG_RAW_FREE(r->col_busy);
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
    mg_csv_team_run(r->team, r->nch, task_sync, r);
    if (!r->sync_failed) {
        order_rows(r);
        return;
    }
    mg_csv_team_run(r->team, r->nch, task_scan, r);
    find_rows(r);
}

/* ---- outputs ---- */

/* The value blocks of column k as type t for cap_rows rows, all rows
 * emitted so far null (float nulls hold NaN). */
static int
new_values(run *r, size_t k, mg_csv_type t)
{
    mg_csv_colout *col = &r->j->cols[k];
    mg_block_decref(col->values);
    mg_block_decref(col->bytes);
    col->values = col->bytes = NULL;
    col->type = t;
    if (t == MG_CSV_STR) {
        col->values = out_block((r->cap_rows + 1) * sizeof(int64_t), 0, k,
                                ROLE_VALUES);
        col->bytes = out_block(r->cap_bytes ? r->cap_bytes : 1, 0, k,
                               ROLE_BYTES);
        if (col->values == NULL || col->bytes == NULL) {
            return -1;
        }
        memset(col->values->data, 0, r->rows * sizeof(int64_t));
        return 0;
    }
    col->values = out_block(r->cap_rows * mg_csv_type_size(t), 0, k,
                            ROLE_VALUES);
    if (col->values == NULL) {
        return -1;
    }
    if (t == MG_CSV_FLOAT) {
        double *v = col->values->data;
        for (size_t i = 0; i < r->rows; i++) {
            v[i] = NAN;
        }
    }
    else {
        memset(col->values->data, 0, r->rows * mg_csv_type_size(t));
    }
    return 0;
}

/* A validity bitmap for column k, the rows emitted so far valid. */
static int
new_validity(run *r, size_t k)
{
    mg_csv_colout *col = &r->j->cols[k];
    col->validity = out_block(r->cap_rows / 8 + 1, 1, k, /* OR'd into */
                              ROLE_VALIDITY);
    if (col->validity == NULL) {
        return -1;
    }
    uint8_t *v = col->validity->data;
    memset(v, 0xFF, r->rows / 8);
    for (size_t i = r->rows & ~(size_t)7; i < r->rows; i++) {
        v[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    return 0;
}

static void
task_rebuild_parse(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[i];
    size_t k = r->rb_col;
    mg_csv_type t = emit_type(r, k);
    size_t nrows = c->tok.nrows;
    /* The chunk's buffers went to a later round: a parse of its own. */
    if (mg_csv_parse(&r->popts, r->j->segs[c->seg].buf, c->rs, c->re, nrows,
                     (long)k, t == MG_CSV_STR ? 0u : 1u << t, &c->tok, 0)
        != MG_CSV_OK) {
        c->tok.err.code = MG_CSV_ENOMEM;
    }
}

static void
task_rebuild_emit(void *ctx, size_t i)
{
    run *r = ctx;
    chunk *c = &r->ch[i];
    size_t k = r->rb_col;
    mg_csv_out o;
    mg_csv_type t = emit_type(r, k);
    out_of(r, c, k, t, &o);
    o.validity = NULL; /* unchanged */
    mg_csv_col_emit(&c->tok.cols[k], t, &o);
    size_t nrows = c->tok.nrows;
    mg_csv_chunk_free(&c->tok);
    memset(&c->tok, 0, sizeof(c->tok));
    c->tok.nrows = nrows;
}

/* Column k's rows emitted in the chunks before the round, again as its
 * new type: parsed again from the input (still mapped), in parallel. */
static int
rebuild_column(run *r, size_t k)
{
    size_t wave0 = r->wave0;
    r->rb_col = k;
    r->wave0 = 0;
    mg_csv_team_run(r->team, wave0, task_rebuild_parse, r);
    r->wave0 = wave0;
    int64_t bytes = 0;
    int failed = 0;
    for (size_t i = 0; i < wave0; i++) {
        chunk *c = &r->ch[i];
        failed |= c->tok.err.code != MG_CSV_OK;
        c->byte0[k] = bytes;
        bytes += c->tok.cols != NULL ? (int64_t)c->tok.cols[k].len : 0;
    }
    r->oc[k].bytes = bytes;
    r->oc[k].negzero = 0;
    if (failed || new_values(r, k, emit_type(r, k)) < 0) {
        for (size_t i = 0; i < wave0; i++) {
            size_t nrows = r->ch[i].tok.nrows;
            mg_csv_chunk_free(&r->ch[i].tok);
            memset(&r->ch[i].tok, 0, sizeof(r->ch[i].tok));
            r->ch[i].tok.nrows = nrows;
        }
        return -1;
    }
    mg_csv_team_run(r->team, wave0, task_rebuild_emit, r);
    return 0;
}

/* int64 rows emitted so far as float64, in place (nulls NaN). */
static void
ints_to_floats(run *r, size_t k)
{
    mg_csv_colout *col = &r->j->cols[k];
    int64_t *iv = col->values->data;
    double *fv = col->values->data;
    const uint8_t *valid = col->validity ? col->validity->data : NULL;
    for (size_t i = 0; i < r->rows; i++) {
        int null = valid != NULL && !((valid[i >> 3] >> (i & 7)) & 1);
        fv[i] = null ? NAN : (double)iv[i];
    }
    col->type = MG_CSV_FLOAT;
}

/* The outputs follow this round's types: a column typed for the first
 * time gets its blocks, a column whose type changed is converted or
 * built again, a column with its first nulls gets a bitmap. */
static int
adapt_outputs(run *r)
{
    mg_csv_job *j = r->j;
    for (size_t k = 0; k < j->ncols; k++) {
        outcol *oc = &r->oc[k];
        mg_csv_type t = emit_type(r, k);
        if (j->cols[k].values == NULL || oc->type == NO_TYPE) {
            if (j->cols[k].values == NULL || (int)j->cols[k].type != (int)t) {
                if (new_values(r, k, t) < 0) {
                    return -1;
                }
            }
        }
        else if (oc->type != (int)t) {
            if (oc->type == MG_CSV_INT && t == MG_CSV_FLOAT && !oc->negzero) {
                ints_to_floats(r, k);
            }
            else if (rebuild_column(r, k) < 0) {
                return -1;
            }
        }
        if (r->types[k] != NO_TYPE) {
            oc->type = r->types[k];
        }
        size_t nulls = 0;
        for (size_t i = r->wave0; i < r->wave0 + r->nwave; i++) {
            nulls += r->ch[i].tok.cols[k].nulls;
        }
        if (nulls && j->cols[k].validity == NULL && new_validity(r, k) < 0) {
            return -1;
        }
        j->cols[k].nulls += nulls;
    }
    return 0;
}

/* ---- rounds ---- */

/* 1 when the error of chunk c lies past the rows a row limit wants
 * (rows: those kept before c): the read stops before it. */
static int
error_past_limit(const run *r, const chunk *c, size_t rows)
{
    const mg_csv_job *j = r->j;
    return j->skip_footer == 0 && j->n_rows != SIZE_MAX
           && rows + c->tok.nrows >= j->n_rows;
}

/* The rows of the round, in order: the round ends at a chunk with an
 * error (*failed: its index) or where the rows wanted are reached; the
 * chunk the limit cuts is parsed again up to it (its types must come
 * from the rows kept only). *done: no round follows. -1 on error. */
static int
round_rows(run *r, size_t *failed, int *done)
{
    mg_csv_job *j = r->j;
    size_t end = r->wave0 + r->nwave, total = r->rows;
    *failed = SIZE_MAX;
    for (size_t i = r->wave0; i < end; i++) {
        chunk *c = &r->ch[i];
        if (c->tok.err.code != MG_CSV_OK) {
            if (c->tok.err.code == MG_CSV_ENOMEM) {
                chunk_error(j, c);
                return -1;
            }
            if (!error_past_limit(r, c, total)) {
                *failed = i;
            }
            end = i + 1;
            *done = 1;
            break;
        }
        total += c->tok.nrows;
    }
    if (r->wave0 + r->nwave >= r->nch) {
        *done = 1;
    }
    /* In the last round, the footer; always, the row limit. */
    size_t keep = total;
    if (*done && *failed == SIZE_MAX) {
        keep = total > j->skip_footer ? total - j->skip_footer : 0;
    }
    if (j->n_rows < keep) {
        keep = j->n_rows;
    }
    if (keep >= j->n_rows) {
        *done = 1;
    }
    size_t row = r->rows;
    for (size_t i = r->wave0; i < end; i++) {
        chunk *c = &r->ch[i];
        if (i == *failed) {
            c->row0 = row;
            break; /* its rows before the error, for the cell errors */
        }
        size_t n = keep - row < c->tok.nrows ? keep - row : c->tok.nrows;
        if (n < c->tok.nrows || c->tok.err.code != MG_CSV_OK) {
            if (mg_csv_parse(&r->popts, j->segs[c->seg].buf, c->rs, c->re, n,
                             -1, 0, &c->tok, 1) != MG_CSV_OK) {
                chunk_error(j, c);
                return -1;
            }
            check_utf8(r, c); /* of the rows kept only */
        }
        if (c->tok.nskipped && j->nskipped == 0) {
            j->first_skipped_seg = c->seg;
            j->first_skipped_pos = c->tok.first_skipped;
        }
        j->nskipped += c->tok.nskipped;
        c->row0 = row;
        row += n;
    }
    r->nwave = end - r->wave0;
    return 0;
}

/* This round's types: the AND of the masks so far (or forced). */
static void
round_types(run *r)
{
    mg_csv_job *j = r->j;
    for (size_t k = 0; k < j->ncols; k++) {
        outcol *oc = &r->oc[k];
        for (size_t i = r->wave0; i < r->wave0 + r->nwave; i++) {
            const mg_csv_col *col = &r->ch[i].tok.cols[k];
            oc->mask &= col->mask;
            oc->values += col->n - col->nulls;
        }
        int f = j->forced[k];
        r->types[k] = f >= 0 ? f
                      : oc->values ? (int)mg_csv_unify(oc->mask, 1) : NO_TYPE;
    }
}

/* String bytes of each chunk of the round; int "-0" seen. */
static void
round_offsets(run *r)
{
    for (size_t k = 0; k < r->j->ncols; k++) {
        for (size_t i = r->wave0; i < r->wave0 + r->nwave; i++) {
            chunk *c = &r->ch[i];
            const mg_csv_col *col = &c->tok.cols[k];
            c->byte0[k] = r->oc[k].bytes;
            r->oc[k].bytes += (int64_t)col->len;
            r->oc[k].negzero |= col->store == MG_CSV_INT && col->negzero;
        }
    }
}

/* One round: parse, check, adapt the outputs, emit. 1 when it was the
 * last, 0 when another follows, -1 on error. */
static int
one_round(run *r)
{
    mg_csv_job *j = r->j;
    size_t limit_left = j->n_rows - r->rows;
    r->max_rows = j->skip_footer == 0 && j->n_rows != SIZE_MAX
                      ? limit_left : SIZE_MAX;
    mg_csv_team_run(r->team, r->nwave, task_parse, r);
    plan_drops(r);
    size_t failed;
    int done = 0;
    if (round_rows(r, &failed, &done) < 0) {
        return -1;
    }
    size_t nemit = failed == SIZE_MAX ? r->nwave : failed - r->wave0 + 1;
    r->nwave = nemit;
    round_types(r);
    if (adapt_outputs(r) < 0) {
        return nomem(j), -1;
    }
    mg_csv_team_run(r->team, r->nwave, task_finish, r);
    for (size_t i = r->wave0; i < r->wave0 + r->nwave; i++) {
        chunk *c = &r->ch[i];
        if (c->tok.err.code == MG_CSV_ENOMEM) {
            return nomem(j), -1;
        }
        if (first_cell_error(r, c)) {
            return -1;
        }
        if (i == failed) {
            chunk_error(j, c);
            return -1;
        }
    }
    round_offsets(r);
    plan_emission(r);
    mg_csv_team_run(r->team, (size_t)mg_csv_team_size(r->team), emit_tasks,
                    r);
    r->ndrops = 0;
    atomic_store_explicit(&r->drops_taken, 0, memory_order_relaxed);
    for (size_t i = r->wave0; i < r->wave0 + r->nwave; i++) {
        r->rows += r->ch[i].tok.nrows;
    }
    return done;
}

/* Rows and string bytes the outputs must be able to hold. */
static void
capacity(run *r)
{
    mg_csv_job *j = r->j;
    size_t rows = 0, bytes = 0;
    for (size_t i = 0; i < r->nch; i++) {
        size_t span = r->ch[i].re - r->ch[i].rs;
        rows += span / (j->nfields ? j->nfields : 1) + 2;
        bytes += span;
    }
    r->cap_rows = rows < j->n_rows ? rows : j->n_rows;
    r->cap_bytes = bytes;
}

/* The chunk buffers of a round go to the same place of the next (or are
 * freed); a chunk keeps its row count (a rebuild parses it again). */
static void
pass_buffers(run *r, size_t wave0, size_t n, size_t next0)
{
    for (size_t i = 0; i < n; i++) {
        chunk *from = &r->ch[wave0 + i];
        size_t nrows = from->tok.nrows;
        if (next0 + i < r->nch) {
            r->ch[next0 + i].tok = from->tok;
        }
        else {
            mg_csv_chunk_free(&from->tok);
        }
        memset(&from->tok, 0, sizeof(from->tok));
        from->tok.nrows = nrows;
    }
}

/* Gives back the pages past the result's rows that a recycled block may
 * still hold from the block before. */
static void
trim_column(mg_csv_colout *col, size_t rows)
{
    if (col->type == MG_CSV_STR) {
        mg_block_trim(col->values, (rows + 1) * sizeof(int64_t));
        mg_block_trim(col->bytes,
                      (size_t)((int64_t *)col->values->data)[rows]);
    }
    else {
        mg_block_trim(col->values, rows * mg_csv_type_size(col->type));
    }
    if (col->validity != NULL) {
        mg_block_trim(col->validity, (rows + 7) / 8);
    }
}

static mg_csv_code
read_stages(run *r)
{
    mg_csv_job *j = r->j;
    if (make_chunks(r) < 0) {
        return nomem(j);
    }
    /* No more threads than chunks. */
    size_t nt = (size_t)(j->nthreads > 1 ? j->nthreads : 1);
    nt = nt < r->nch ? nt : r->nch;
    r->team = nt > 1 ? mg_csv_team_new((int)nt) : NULL;
    nt = (size_t)mg_csv_team_size(r->team);
    split_rows(r);
    capacity(r);
    /* With a footer to drop, one round (the rows kept are known at the
     * end only); else a few chunks per thread per round. */
    size_t per = j->skip_footer ? r->nch : nt * 2;
    size_t ntasks = (per < r->nch ? per : r->nch) * (j->ncols ? j->ncols : 1);
    r->order = MG_RAW_MALLOC(ntasks * sizeof(r->order[0]));
    r->taken = MG_RAW_MALLOC(ntasks * sizeof(r->taken[0]));
    r->col_busy = MG_RAW_CALLOC(j->ncols ? j->ncols : 1,
                                sizeof(r->col_busy[0]));
    r->drops = MG_RAW_MALLOC((per + 1) * sizeof(r->drops[0]));
    if (r->order == NULL || r->taken == NULL || r->col_busy == NULL
        || r->drops == NULL) {
        return nomem(j);
    }
    for (r->wave0 = 0; r->wave0 < r->nch;) {
        r->nwave = r->nch - r->wave0 < per ? r->nch - r->wave0 : per;
        int rc = one_round(r);
        if (rc < 0) {
            return j->err.code;
        }
        size_t w0 = r->wave0, n = r->nwave;
        if (rc == 1) {
            break;
        }
        r->wave0 += n;
        pass_buffers(r, w0, n, r->wave0);
    }
    for (size_t k = 0; k < j->ncols; k++) {
        if (j->cols[k].values == NULL && new_values(r, k, MG_CSV_STR) < 0) {
            return nomem(j);
        }
        if (j->cols[k].type == MG_CSV_STR) {
            ((int64_t *)j->cols[k].values->data)[r->rows] = r->oc[k].bytes;
        }
        trim_column(&j->cols[k], r->rows);
    }
    j->nrows = r->rows;
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

/* Per-column state of the rounds. */
static int
make_state(run *r)
{
    mg_csv_job *j = r->j;
    size_t n = j->ncols ? j->ncols : 1;
    r->types = MG_RAW_CALLOC(n, sizeof(int));
    r->oc = MG_RAW_CALLOC(n, sizeof(outcol));
    j->cols = MG_RAW_CALLOC(n, sizeof(mg_csv_colout));
    if (r->types == NULL || r->oc == NULL || j->cols == NULL) {
        return -1;
    }
    for (size_t k = 0; k < j->ncols; k++) {
        r->oc[k].type = NO_TYPE;
        r->oc[k].mask = ~0u;
    }
    return 0;
}

mg_csv_code
mg_csv_read(mg_csv_job *j)
{
    run r;
    memset(&r, 0, sizeof(r));
    r.j = j;
    r.drop_seg = SIZE_MAX;
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
    r.popts.plain_cells = j->plain_cells;
    mg_csv_code rc = make_want(&r) < 0 || make_state(&r) < 0
                         ? nomem(j) : read_stages(&r);
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
