/* csv_chunk.c - the rows of one byte range into per-chunk columns
 * (mg_csv_parse, csv.h): one pass, the fields' spans of a few dozen rows
 * at a time handed from the row parser to their columns, which classify
 * and convert them.
 *
 * Owns: the row loop (blank and comment lines, ragged rows skipped or
 * refused, row checkpoints for error positions, a row limit) and the
 * chunk's columns. Plain C, no locks, no global state; a chunk is parsed
 * by one thread. Never reads outside [start, end) of the input; never
 * copies a cell except into the column of its final representation.
 */
#include "csv.h"

#include <string.h>

void
mg_csv_chunk_free(mg_csv_chunk *c)
{
    if (c->cols != NULL) {
        for (size_t i = 0; i < c->ncols; i++) {
            mg_csv_col_free(&c->cols[i]);
        }
    }
    MG_RAW_FREE(c->cols);
    MG_RAW_FREE(c->checkpoints);
    c->cols = NULL;
    c->checkpoints = NULL;
    c->ncols = 0;
    c->nrows = 0;
}

static int
checkpoint_add(mg_csv_chunk *c, size_t pos)
{
    if (c->ncheck == c->checkcap) {
        size_t cap = c->checkcap ? c->checkcap * 2 : 16;
        size_t *n = MG_RAW_REALLOC(c->checkpoints, cap * sizeof(size_t));
        if (n == NULL) {
            return -1;
        }
        c->checkpoints = n;
        c->checkcap = cap;
    }
    c->checkpoints[c->ncheck++] = pos;
    return 0;
}

static mg_csv_code
chunk_fail(mg_csv_chunk *out, mg_csv_code code, size_t pos)
{
    out->err.code = code;
    out->err.pos = pos;
    return code;
}

/* A row of the wrong width: refused, or skipped and counted. */
static mg_csv_code
ragged_row(const mg_csv_parseopts *o, mg_csv_chunk *out, size_t pos,
           size_t nf)
{
    if (o->bad_lines != MG_CSV_BAD_SKIP) {
        out->err.code = MG_CSV_ERAGGED;
        out->err.pos = pos;
        out->err.nfields = nf;
        out->err.field = nf < o->nfields ? nf : o->nfields;
        return MG_CSV_ERAGGED;
    }
    if (out->nskipped++ == 0) {
        out->first_skipped = pos;
    }
    if (out->nrows % MG_CSV_CHECKPOINT == 0) {
        out->ncheck--; /* the checkpoint names the next row */
    }
    return MG_CSV_OK;
}

/* The output column of each field (-1: not kept). */
static int *
field_dest(const mg_csv_parseopts *o, long only)
{
    int *dest = MG_RAW_MALLOC((o->nfields ? o->nfields : 1) * sizeof(int));
    if (dest == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < o->nfields; i++) {
        int k = o->keep[i];
        dest[i] = only == -1 || (only >= 0 && k == (int)only) ? k : -1;
    }
    return dest;
}

/* Adds the rows waiting in the tape to the columns; -1 when out of
 * memory. */
static int
flush_rows(const mg_csv_parseopts *o, mg_csv_rowp *rp, const int *dest,
           mg_csv_chunk *out, size_t *waiting)
{
    int rc = mg_csv_col_add_rows(out->cols, dest, o->nfields,
                                 rp->tape_cell, rp->tape_clen, *waiting,
                                 rp->buf, rp->buf + rp->end,
                                 o->plain_cells);
    *waiting = 0;
    mg_csv_rowp_slot(rp, 0);
    return rc;
}

/* The row loop. Kept rows wait in the row parser's tape and go to the
 * columns a tapeful at a time (column by column: each column's state and
 * type stay put over many cells), at once after a row with a cell in
 * the scratch buffer (the next row reuses it), and before every return. */
static mg_csv_code
parse_rows(const mg_csv_parseopts *o, mg_csv_rowp *rp, const int *dest,
           size_t start, size_t end, size_t max_rows, mg_csv_chunk *out)
{
    size_t pos = start, waiting = 0;
    mg_csv_code rc = MG_CSV_OK;
    while (out->nrows < max_rows) {
        if (pos >= end) {
            break;
        }
        unsigned char c0 = (unsigned char)rp->buf[pos];
        if (c0 == '\n' || c0 == '\r'
            || (o->dialect->has_comment && c0 == o->dialect->comment)) {
            pos = mg_csv_skip_blank(o->dialect, rp->buf, pos, end);
            if (pos >= end) {
                break;
            }
        }
        if (out->nrows % MG_CSV_CHECKPOINT == 0
            && checkpoint_add(out, pos) < 0) {
            rc = chunk_fail(out, MG_CSV_ENOMEM, pos);
            break;
        }
        size_t next;
        long nf = mg_csv_rowp_parse(rp, pos, &next, &out->err);
        if (nf < 0) {
            rc = out->err.code;
            break;
        }
        if ((size_t)nf != o->nfields) {
            rc = ragged_row(o, out, pos, (size_t)nf);
            if (rc != MG_CSV_OK) {
                break;
            }
        }
        else {
            out->last_row = pos;
            out->nrows++;
            waiting++;
            if (waiting < rp->tape_rows && rp->slen == 0) {
                mg_csv_rowp_slot(rp, waiting);
            }
            else if (flush_rows(o, rp, dest, out, &waiting) < 0) {
                return chunk_fail(out, MG_CSV_ENOMEM, pos);
            }
        }
        pos = next;
    }
    /* Out of memory wins over an error the loop stopped at: the columns
     * would lack rows before it (whose cell errors come first). */
    if (flush_rows(o, rp, dest, out, &waiting) < 0) {
        rc = chunk_fail(out, MG_CSV_ENOMEM, pos);
    }
    return rc;
}

mg_csv_code
mg_csv_parse(const mg_csv_parseopts *o, const char *buf, size_t start,
             size_t end, size_t max_rows, long only, unsigned want_only,
             mg_csv_chunk *out, int reuse)
{
    if (reuse && out->cols != NULL && out->ncols == o->ncols) {
        mg_csv_col *cols = out->cols;
        size_t *checks = out->checkpoints, checkcap = out->checkcap;
        memset(out, 0, sizeof(*out));
        out->cols = cols;
        out->checkpoints = checks;
        out->checkcap = checkcap;
    }
    else {
        if (reuse) {
            mg_csv_chunk_free(out);
        }
        memset(out, 0, sizeof(*out));
        out->cols = MG_RAW_CALLOC(o->ncols ? o->ncols : 1,
                                  sizeof(mg_csv_col));
    }
    out->ncols = o->ncols;
    int *dest = field_dest(o, only);
    mg_csv_rowp rp;
    int rp_ok = mg_csv_rowp_init(&rp, o->dialect, buf, end, o->nfields) == 0;
    if (out->cols == NULL || dest == NULL || !rp_ok) {
        if (rp_ok) {
            mg_csv_rowp_free(&rp);
        }
        MG_RAW_FREE(dest);
        return chunk_fail(out, MG_CSV_ENOMEM, start);
    }
    /* A kept row has at least nfields bytes (its delimiters and line
     * end, but the last), and a column at most the range's bytes. */
    size_t span = end - start;
    size_t rows = span / (o->nfields ? o->nfields : 1) + 2;
    if (max_rows < rows) {
        rows = max_rows;
    }
    for (size_t k = 0; k < o->ncols; k++) {
        unsigned want = only >= 0 ? ((long)k == only ? want_only : 0)
                                  : o->want[k];
        mg_csv_col_init(&out->cols[k], o->values, want, rows, span);
    }
    mg_csv_code rc = parse_rows(o, &rp, dest, start, end, max_rows, out);
    mg_csv_rowp_free(&rp);
    MG_RAW_FREE(dest);
    return rc;
}

size_t
mg_csv_row_pos(const mg_csv_parseopts *o, const char *buf,
               const mg_csv_chunk *c, size_t start, size_t end, size_t k)
{
    size_t ck = k / MG_CSV_CHECKPOINT;
    size_t from = ck < c->ncheck ? c->checkpoints[ck] : start;
    /* Row k is the last of k + 1 rows kept (skipped rows between). */
    size_t rows = k + 1 - (ck < c->ncheck ? ck * MG_CSV_CHECKPOINT : 0);
    mg_csv_chunk tmp;
    (void)mg_csv_parse(o, buf, from, end, rows, -2, 0, &tmp, 0);
    size_t pos = tmp.nrows ? tmp.last_row : from;
    mg_csv_chunk_free(&tmp);
    return pos;
}
