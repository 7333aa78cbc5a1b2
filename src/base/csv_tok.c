/* csv_tok.c - the CSV row-boundary automaton and the tokenizer (csv.h).
 *
 * Owns: the transition table of a dialect, the all-states scan that the
 * parallel split composes, and parse_row, the one routine that cuts a row
 * into fields and unescapes them into column pieces. Plain C, no locks, no
 * global state; every buffer is the caller's or a piece's (raw malloc).
 * Must never read outside [start, end) of its input, never allocate per
 * cell (pieces grow geometrically), never disagree with the automaton
 * about where a row starts (the split relies on it; the fuzz target
 * checks it).
 */
#include "csv.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ---- automaton ---- */

static int
row_next(const mg_csv_dialect *d, unsigned c)
{
    if (c == '\n') {
        return MG_CSV_S_ROW;
    }
    if (c == '\r') {
        return MG_CSV_S_CR;
    }
    if (d->has_comment && c == d->comment) {
        return MG_CSV_S_COMMENT;
    }
    if (d->has_quote && c == d->quote) {
        return MG_CSV_S_Q;
    }
    if (c == d->delim) {
        return MG_CSV_S_FIELD;
    }
    if (d->has_escape && c == d->escape) {
        return MG_CSV_S_ESC;
    }
    return MG_CSV_S_UNQ;
}

/* Unquoted text (and the state after a closing quote that more text
 * follows): the delimiter, a terminator or an escape end it. */
static int
unq_next(const mg_csv_dialect *d, unsigned c)
{
    if (c == d->delim) {
        return MG_CSV_S_FIELD;
    }
    if (c == '\n') {
        return MG_CSV_S_ROW;
    }
    if (c == '\r') {
        return MG_CSV_S_CR;
    }
    if (d->has_escape && c == d->escape) {
        return MG_CSV_S_ESC;
    }
    return MG_CSV_S_UNQ;
}

static int
state_next(const mg_csv_dialect *d, int s, unsigned c)
{
    switch (s) {
    case MG_CSV_S_ROW:
        return row_next(d, c);
    case MG_CSV_S_CR:
        return c == '\n' ? MG_CSV_S_ROW : row_next(d, c);
    case MG_CSV_S_FIELD:
        if (d->has_quote && c == d->quote) {
            return MG_CSV_S_Q;
        }
        return unq_next(d, c);
    case MG_CSV_S_UNQ:
        return unq_next(d, c);
    case MG_CSV_S_Q:
        if (d->has_quote && c == d->quote) {
            return d->doublequote ? MG_CSV_S_QQ : MG_CSV_S_UNQ;
        }
        if (d->has_escape && c == d->escape) {
            return MG_CSV_S_QESC;
        }
        return MG_CSV_S_Q;
    case MG_CSV_S_QQ:
        if (c == d->quote) {
            return MG_CSV_S_Q; /* a doubled quote */
        }
        if (c == d->delim || c == '\n' || c == '\r') {
            return unq_next(d, c);
        }
        return MG_CSV_S_UNQ; /* text after the closing quote, literal */
    case MG_CSV_S_ESC:
        return MG_CSV_S_UNQ;
    case MG_CSV_S_QESC:
        return MG_CSV_S_Q;
    default: /* MG_CSV_S_COMMENT */
        if (c == '\n') {
            return MG_CSV_S_ROW;
        }
        return c == '\r' ? MG_CSV_S_CR : MG_CSV_S_COMMENT;
    }
}

void
mg_csv_dfa_init(mg_csv_dfa *t, const mg_csv_dialect *d)
{
    for (int s = 0; s < MG_CSV_NSTATES; s++) {
        for (unsigned c = 0; c < 256; c++) {
            t->next[s][c] = (uint8_t)state_next(d, s, c);
        }
    }
    memset(t->special, 0, sizeof(t->special));
    t->special[d->delim] = t->special['\n'] = t->special['\r'] = 1;
    if (d->has_quote) {
        t->special[d->quote] = 1;
    }
    if (d->has_escape) {
        t->special[d->escape] = 1;
    }
    if (d->has_comment) {
        t->special[d->comment] = 1;
    }
    unsigned c = 'a';
    while (t->special[c]) {
        c++;
    }
    t->ordinary = (unsigned char)c;
}

/* Merges slots that reached the same state; returns the new count. */
static int
merge_slots(uint8_t *cur, int nslots, int *slot_of)
{
    int remap[MG_CSV_NSTATES];
    int n = 0;
    for (int k = 0; k < nslots; k++) {
        int j = 0;
        while (j < n && cur[j] != cur[k]) {
            j++;
        }
        if (j == n) {
            cur[n++] = cur[k];
        }
        remap[k] = j;
    }
    for (int s = 0; s < MG_CSV_NSTATES; s++) {
        slot_of[s] = remap[slot_of[s]];
    }
    return n;
}

void
mg_csv_scan(const mg_csv_dfa *t, const char *buf, size_t len,
            uint8_t out[MG_CSV_NSTATES])
{
    /* Trajectories that meet stay together: run the distinct ones only
     * (after a line or two there are usually two: in and out of quotes).
     * A run of ordinary bytes moves every state like its first byte, so
     * only the special bytes and the first byte of each run are stepped. */
    uint8_t cur[MG_CSV_NSTATES];
    int slot_of[MG_CSV_NSTATES];
    int nslots = MG_CSV_NSTATES;
    for (int s = 0; s < MG_CSV_NSTATES; s++) {
        cur[s] = (uint8_t)s;
        slot_of[s] = s;
    }
    const unsigned char *p = (const unsigned char *)buf;
    size_t i = 0, steps = 0;
    while (i < len) {
        unsigned c = p[i];
        if (!t->special[c]) {
            for (int k = 0; k < nslots; k++) {
                cur[k] = t->next[cur[k]][t->ordinary];
            }
            i++;
            while (i < len && !t->special[p[i]]) {
                i++;
            }
            continue;
        }
        for (int k = 0; k < nslots; k++) {
            cur[k] = t->next[cur[k]][c];
        }
        i++;
        if (nslots > 1 && ++steps % 64 == 0) {
            nslots = merge_slots(cur, nslots, slot_of);
        }
    }
    for (int s = 0; s < MG_CSV_NSTATES; s++) {
        out[s] = cur[slot_of[s]];
    }
}

size_t
mg_csv_next_row(const mg_csv_dfa *t, const char *buf, size_t pos,
                size_t end, int s)
{
    const unsigned char *p = (const unsigned char *)buf;
    for (;;) {
        if (s == MG_CSV_S_ROW) {
            return pos;
        }
        if (s == MG_CSV_S_CR && (pos >= end || p[pos] != '\n')) {
            return pos;
        }
        if (pos >= end) {
            return end;
        }
        s = t->next[s][p[pos]];
        pos++;
    }
}

size_t
mg_csv_line_of(const char *buf, size_t pos)
{
    size_t line = 1;
    const char *p = buf, *e = buf + pos;
    while (p < e) {
        const char *lf = memchr(p, '\n', (size_t)(e - p));
        const char *stop = lf != NULL ? lf : e;
        for (const char *q = p; q < stop; q++) {
            if (*q == '\r' && (q + 1 >= e || q[1] != '\n')) {
                line++;
            }
        }
        if (lf == NULL) {
            break;
        }
        line++;
        p = lf + 1;
    }
    return line;
}

/* ---- pieces ---- */

/* A piece with room for cap bytes and ncap - 1 cells (at least 64). */
static int
piece_init_cap(mg_csv_piece *p, size_t cap, size_t ncap)
{
    memset(p, 0, sizeof(*p));
    p->ncap = ncap > 64 ? ncap : 64;
    p->cap = cap > 64 ? cap : 64; /* never NULL: cells are data + offset */
    p->offs = mg_csv_mem_alloc(p->ncap * sizeof(int64_t), &p->offs_mapped);
    p->data = mg_csv_mem_alloc(p->cap, &p->data_mapped);
    if (p->offs == NULL || p->data == NULL) {
        mg_csv_piece_free(p);
        return -1;
    }
    p->offs[0] = 0;
    return 0;
}

static int
piece_init(mg_csv_piece *p)
{
    return piece_init_cap(p, 64, 64);
}

void
mg_csv_piece_free(mg_csv_piece *p)
{
    mg_csv_mem_free(p->data, p->cap, p->data_mapped);
    mg_csv_mem_free(p->offs, p->ncap * sizeof(int64_t), p->offs_mapped);
    memset(p, 0, sizeof(*p));
}

static int
piece_grow_bytes(mg_csv_piece *p, size_t extra)
{
    size_t cap = p->cap ? p->cap : 256;
    while (cap - p->len < extra) {
        cap *= 2;
    }
    char *d = mg_csv_mem_grow(p->data, p->cap, cap, &p->data_mapped);
    if (d == NULL) {
        return -1;
    }
    p->data = d;
    p->cap = cap;
    return 0;
}

static inline int
piece_append(mg_csv_piece *p, const char *s, size_t n)
{
    if (p->cap - p->len < n && piece_grow_bytes(p, n) < 0) {
        return -1;
    }
    if (n) {
        memcpy(p->data + p->len, s, n);
    }
    p->len += n;
    return 0;
}

/* piece_append of buf[s, e) for the common short cell: with 16 bytes of
 * room on both sides it copies a constant 16 (inlined, no call). */
static inline int
piece_append_short(mg_csv_piece *p, const char *buf, size_t s, size_t e,
                   size_t end)
{
    size_t n = e - s;
    if (n <= 16 && end - s >= 16 && p->cap - p->len >= 16) {
        memcpy(p->data + p->len, buf + s, 16);
        p->len += n;
        return 0;
    }
    return piece_append(p, buf + s, n);
}

static inline int
piece_end_cell(mg_csv_piece *p)
{
    if (p->n + 2 > p->ncap) {
        size_t cap = p->ncap * 2;
        int64_t *o = mg_csv_mem_grow(p->offs, p->ncap * sizeof(int64_t),
                                     cap * sizeof(int64_t), &p->offs_mapped);
        if (o == NULL) {
            return -1;
        }
        p->offs = o;
        p->ncap = cap;
    }
    p->offs[++p->n] = (int64_t)p->len;
    return 0;
}

static inline void
piece_pop(mg_csv_piece *p)
{
    p->n--;
    p->len = (size_t)p->offs[p->n];
}

static inline void
piece_clear(mg_csv_piece *p)
{
    p->n = 0;
    p->len = 0;
}

/* ---- one row ---- */

/* Where the fields of a row go: field i into dest[i] (i < ndest), the
 * rest into overflow. */
typedef struct row_sink {
    mg_csv_piece **dest;
    size_t ndest;
    mg_csv_piece *overflow;
} row_sink;

typedef struct row_scanner {
    const mg_csv_dialect *d;
    uint8_t stop_unq[256];  /* ends unquoted text: delim, CR, LF, escape */
} row_scanner;

static void
scanner_init(row_scanner *sc, const mg_csv_dialect *d)
{
    sc->d = d;
    memset(sc->stop_unq, 0, sizeof(sc->stop_unq));
    sc->stop_unq[d->delim] = 1;
    sc->stop_unq['\n'] = 1;
    sc->stop_unq['\r'] = 1;
    if (d->has_escape) {
        sc->stop_unq[d->escape] = 1;
    }
}

/* The first position >= pos (< end) whose byte ends unquoted text, or
 * end. 16 bytes at a time with SSE2 where at least 16 remain. */
static inline size_t
scan_unquoted(const row_scanner *sc, const char *buf, size_t pos, size_t end)
{
#ifdef __SSE2__
    const mg_csv_dialect *d = sc->d;
    const __m128i vd = _mm_set1_epi8((char)d->delim);
    const __m128i vl = _mm_set1_epi8('\n');
    const __m128i vr = _mm_set1_epi8('\r');
    const __m128i ve = _mm_set1_epi8((char)(d->has_escape ? d->escape
                                                          : d->delim));
    while (end - pos >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(buf + pos));
        __m128i m = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x, vd), _mm_cmpeq_epi8(x, vl)),
            _mm_or_si128(_mm_cmpeq_epi8(x, vr), _mm_cmpeq_epi8(x, ve)));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) {
            return pos + (size_t)__builtin_ctz(bits);
        }
        pos += 16;
    }
#endif
    while (pos < end && !sc->stop_unq[(unsigned char)buf[pos]]) {
        pos++;
    }
    return pos;
}

/* Skips blank and comment lines from pos; returns the first row start
 * with content, or end. */
static size_t
skip_blank(const mg_csv_dialect *d, const char *buf, size_t pos, size_t end)
{
    while (pos < end) {
        char c = buf[pos];
        if (c == '\n') {
            pos++;
        }
        else if (c == '\r') {
            pos++;
            if (pos < end && buf[pos] == '\n') {
                pos++;
            }
        }
        else if (d->has_comment && (unsigned char)c == d->comment) {
            while (pos < end && buf[pos] != '\n' && buf[pos] != '\r') {
                pos++;
            }
        }
        else {
            break;
        }
    }
    return pos;
}

/* The quoted part of a field at pos (just after the opening quote): its
 * text goes into p. Returns the position after the closing quote, or
 * SIZE_MAX when the input ends inside the quotes. */
static size_t
quoted_part(const row_scanner *sc, const char *buf, size_t pos, size_t end,
            mg_csv_piece *p, int *nomem)
{
    const mg_csv_dialect *d = sc->d;
    for (;;) {
        const char *q = memchr(buf + pos, d->quote, end - pos);
        size_t stop = q != NULL ? (size_t)(q - buf) : end;
        if (d->has_escape) {
            const char *e = memchr(buf + pos, d->escape, stop - pos);
            if (e != NULL) {
                size_t at = (size_t)(e - buf);
                if (piece_append(p, buf + pos, at - pos) < 0) {
                    *nomem = 1;
                    return SIZE_MAX;
                }
                if (at + 1 >= end) {
                    return SIZE_MAX;
                }
                if (piece_append(p, buf + at + 1, 1) < 0) {
                    *nomem = 1;
                    return SIZE_MAX;
                }
                pos = at + 2;
                continue;
            }
        }
        if (piece_append(p, buf + pos, stop - pos) < 0) {
            *nomem = 1;
            return SIZE_MAX;
        }
        if (q == NULL) {
            return SIZE_MAX;
        }
        pos = stop + 1;
        if (d->doublequote && pos < end && buf[pos] == d->quote) {
            if (piece_append(p, buf + pos, 1) < 0) {
                *nomem = 1;
                return SIZE_MAX;
            }
            pos++;
            continue;
        }
        return pos;
    }
}

/* Parses the row at pos (a row start with content, < end). Returns the
 * number of fields and the next row start in *next, or -1 with err. */
static long
parse_row(const row_scanner *sc, const row_sink *sink, const char *buf,
          size_t pos, size_t end, size_t *next, mg_csv_error *err)
{
    const mg_csv_dialect *d = sc->d;
    size_t rowpos = pos;
    size_t field = 0;
    int nomem = 0;
    for (;;) {
        mg_csv_piece *p = field < sink->ndest ? sink->dest[field]
                                              : sink->overflow;
        if (d->has_quote && pos < end && (unsigned char)buf[pos] == d->quote) {
            pos = quoted_part(sc, buf, pos + 1, end, p, &nomem);
            if (pos == SIZE_MAX) {
                goto fail_quote;
            }
            /* After the closing quote: an escape character is literal. */
            if (d->doublequote && d->has_escape && pos < end
                && (unsigned char)buf[pos] == d->escape) {
                if (piece_append(p, buf + pos, 1) < 0) {
                    goto fail_nomem;
                }
                pos++;
            }
        }
        /* Unquoted text up to the delimiter or the end of the row. */
        for (;;) {
            size_t s = pos;
            pos = scan_unquoted(sc, buf, pos, end);
            if (piece_append_short(p, buf, s, pos, end) < 0) {
                goto fail_nomem;
            }
            if (pos < end && d->has_escape
                && (unsigned char)buf[pos] == d->escape) {
                if (pos + 1 >= end) {
                    err->code = MG_CSV_EESCAPE;
                    err->pos = rowpos;
                    err->field = field;
                    return -1;
                }
                if (piece_append(p, buf + pos + 1, 1) < 0) {
                    goto fail_nomem;
                }
                pos += 2;
                continue;
            }
            break;
        }
        if (piece_end_cell(p) < 0) {
            goto fail_nomem;
        }
        field++;
        if (pos >= end) {
            *next = end;
            return (long)field;
        }
        char c = buf[pos++];
        if (c == '\n') {
            *next = pos;
            return (long)field;
        }
        if (c == '\r') {
            if (pos < end && buf[pos] == '\n') {
                pos++;
            }
            *next = pos;
            return (long)field;
        }
        /* c is the delimiter: another field follows (maybe empty). */
    }
fail_quote:
    if (nomem) {
        goto fail_nomem;
    }
    err->code = MG_CSV_EQUOTE;
    err->pos = rowpos;
    err->field = field;
    return -1;
fail_nomem:
    err->code = MG_CSV_ENOMEM;
    err->pos = rowpos;
    err->field = field;
    return -1;
}

long
mg_csv_row(const mg_csv_dialect *d, const mg_csv_dfa *t, const char *buf,
           size_t pos, size_t end, mg_csv_piece *out, size_t *next,
           mg_csv_error *err)
{
    (void)t;
    row_scanner sc;
    scanner_init(&sc, d);
    if (piece_init(out) < 0) {
        err->code = MG_CSV_ENOMEM;
        return -1;
    }
    pos = skip_blank(d, buf, pos, end);
    if (pos >= end) {
        *next = end;
        return 0;
    }
    row_sink sink = {NULL, 0, out};
    return parse_row(&sc, &sink, buf, pos, end, next, err);
}

/* ---- chunks ---- */

void
mg_csv_chunk_free(mg_csv_chunk *c)
{
    if (c->pieces != NULL) {
        for (size_t i = 0; i < c->ncols; i++) {
            mg_csv_piece_free(&c->pieces[i]);
        }
    }
    MG_RAW_FREE(c->pieces);
    MG_RAW_FREE(c->checkpoints);
    c->pieces = NULL;
    c->checkpoints = NULL;
    c->ncols = 0;
    c->nrows = 0;
}

void
mg_csv_chunk_truncate(mg_csv_chunk *c, size_t nrows)
{
    if (nrows >= c->nrows) {
        return;
    }
    for (size_t i = 0; i < c->ncols; i++) {
        mg_csv_piece *p = &c->pieces[i];
        p->n = nrows;
        p->len = (size_t)p->offs[nrows];
    }
    c->nrows = nrows;
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

/* Takes back the cells a rejected row added to the kept columns. */
static void
unwind_row(const mg_csv_tokopts *o, mg_csv_chunk *out, size_t seen)
{
    size_t n = seen < o->nfields ? seen : o->nfields;
    for (size_t i = 0; i < n; i++) {
        if (o->keep[i] >= 0) {
            piece_pop(&out->pieces[o->keep[i]]);
        }
    }
}

static mg_csv_code
tokenize_rows(const mg_csv_tokopts *o, const row_scanner *sc,
              const row_sink *sink, mg_csv_piece *trash, const char *buf,
              size_t start, size_t end, mg_csv_chunk *out)
{
    size_t pos = start;
    while (out->nrows < o->max_rows) {
        pos = skip_blank(o->dialect, buf, pos, end);
        if (pos >= end) {
            break;
        }
        if (out->nrows % MG_CSV_CHECKPOINT == 0
            && checkpoint_add(out, pos) < 0) {
            return chunk_fail(out, MG_CSV_ENOMEM, pos);
        }
        size_t next;
        piece_clear(trash);
        long nf = parse_row(sc, sink, buf, pos, end, &next, &out->err);
        if (nf < 0) {
            return out->err.code;
        }
        if ((size_t)nf != o->nfields) {
            unwind_row(o, out, (size_t)nf);
            if (o->bad_lines != MG_CSV_BAD_SKIP) {
                out->err.code = MG_CSV_ERAGGED;
                out->err.pos = pos;
                out->err.nfields = (size_t)nf;
                out->err.field = (size_t)nf < o->nfields ? (size_t)nf
                                                         : o->nfields;
                return MG_CSV_ERAGGED;
            }
            if (out->nskipped++ == 0) {
                out->first_skipped = pos;
            }
            if (out->nrows % MG_CSV_CHECKPOINT == 0) {
                out->ncheck--; /* the checkpoint names the next row */
            }
        }
        else {
            out->last_row = pos;
            out->nrows++;
        }
        pos = next;
    }
    out->stop = pos;
    return MG_CSV_OK;
}

mg_csv_code
mg_csv_tokenize(const mg_csv_tokopts *o, const char *buf, size_t start,
                size_t end, mg_csv_chunk *out)
{
    memset(out, 0, sizeof(*out));
    out->stop = start;
    out->ncols = o->ncols;
    out->pieces = MG_RAW_CALLOC(o->ncols ? o->ncols : 1,
                                sizeof(mg_csv_piece));
    mg_csv_piece trash;
    mg_csv_piece **dest = MG_RAW_MALLOC((o->nfields ? o->nfields : 1)
                                        * sizeof(mg_csv_piece *));
    if (piece_init(&trash) < 0 || out->pieces == NULL || dest == NULL) {
        mg_csv_piece_free(&trash);
        MG_RAW_FREE(dest);
        return chunk_fail(out, MG_CSV_ENOMEM, start);
    }
    mg_csv_code rc = MG_CSV_OK;
    /* Reserve the worst case, so that the pieces never move: a column
     * holds at most the range's bytes (+16: the short-copy slack), and a
     * kept row has at least nfields bytes. Only touched pages count. */
    size_t span = end - start;
    size_t rows = span / (o->nfields ? o->nfields : 1) + 2;
    for (size_t i = 0; i < o->ncols; i++) {
        if (piece_init_cap(&out->pieces[i], span + 16, rows + 1) < 0) {
            rc = chunk_fail(out, MG_CSV_ENOMEM, start);
        }
    }
    for (size_t i = 0; i < o->nfields; i++) {
        dest[i] = o->keep[i] >= 0 ? &out->pieces[o->keep[i]] : &trash;
    }
    if (rc == MG_CSV_OK) {
        row_scanner sc;
        scanner_init(&sc, o->dialect);
        row_sink sink = {dest, o->nfields, &trash};
        rc = tokenize_rows(o, &sc, &sink, &trash, buf, start, end, out);
    }
    mg_csv_piece_free(&trash);
    MG_RAW_FREE(dest);
    return rc;
}

size_t
mg_csv_row_pos(const mg_csv_tokopts *o, const char *buf,
               const mg_csv_chunk *c, size_t start, size_t end, size_t k)
{
    size_t ck = k / MG_CSV_CHECKPOINT;
    size_t from = ck < c->ncheck ? c->checkpoints[ck] : start;
    mg_csv_tokopts sub = *o;
    /* Row k is the last of k + 1 rows kept (skipped rows between). */
    sub.max_rows = k + 1 - (ck < c->ncheck ? ck * MG_CSV_CHECKPOINT : 0);
    mg_csv_chunk tmp;
    (void)mg_csv_tokenize(&sub, buf, from, end, &tmp);
    size_t pos = tmp.nrows ? tmp.last_row : from;
    mg_csv_chunk_free(&tmp);
    return pos;
}
