/* csv_tok.c - the CSV row-boundary automaton, the boundary sync and the
 * row parser (csv.h).
 *
 * Owns: the transition table of a dialect, the all-states scan that the
 * parallel split composes when sync fails, mg_csv_sync (the exact row
 * start after a boundary, from the convergence of all states), and
 * mg_csv_rowp_parse, the one routine that cuts a row into field spans
 * (unescaping into its scratch buffer only where a field needs it), into
 * the slot of the parser's tape of rows that the caller picks. Plain
 * C, no locks, no global state; every buffer is the caller's or the
 * parser's (raw malloc). Must never read outside [0, end) of its input,
 * never allocate per cell (the scratch grows geometrically), never
 * disagree with the automaton about where a row starts (the split relies
 * on it; the fuzz target checks it).
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

/* ---- boundary sync ---- */

/* The states a dialect can really be in (the others are never entered
 * from the start of a row). */
static int
reachable_states(const mg_csv_dialect *d, uint8_t *out)
{
    int n = 0;
    out[n++] = MG_CSV_S_ROW;
    out[n++] = MG_CSV_S_FIELD;
    out[n++] = MG_CSV_S_UNQ;
    out[n++] = MG_CSV_S_CR;
    if (d->has_quote) {
        out[n++] = MG_CSV_S_Q;
        if (d->doublequote) {
            out[n++] = MG_CSV_S_QQ;
        }
    }
    if (d->has_escape) {
        out[n++] = MG_CSV_S_ESC;
        if (d->has_quote) {
            out[n++] = MG_CSV_S_QESC;
        }
    }
    if (d->has_comment) {
        out[n++] = MG_CSV_S_COMMENT;
    }
    return n;
}

size_t
mg_csv_sync(const mg_csv_dfa *t, const mg_csv_dialect *d, const char *buf,
            size_t pos, size_t end, size_t window)
{
    uint8_t cur[MG_CSV_NSTATES];
    int n = reachable_states(d, cur);
    const unsigned char *p = (const unsigned char *)buf;
    size_t stop = end - pos > window ? pos + window : end;
    while (n > 1 && pos < stop) {
        unsigned c = p[pos++];
        if (!t->special[c]) {
            c = t->ordinary;
            while (pos < stop && !t->special[p[pos]]) {
                pos++;
            }
        }
        int m = 0;
        for (int k = 0; k < n; k++) {
            uint8_t s = t->next[cur[k]][c];
            int j = 0;
            while (j < m && cur[j] != s) {
                j++;
            }
            if (j == m) {
                cur[m++] = s;
            }
        }
        n = m;
    }
    if (n > 1) {
        return SIZE_MAX; /* row starts before end may be unknown */
    }
    return mg_csv_next_row(t, buf, pos, end, cur[0]);
}

/* ---- row parser ---- */

/* The tape holds at most TAPE_ROWS rows and TAPE_CELLS cells (a wide
 * file gets fewer rows, at least one). */
#define TAPE_ROWS 64
#define TAPE_CELLS 4096

int
mg_csv_rowp_init(mg_csv_rowp *p, const mg_csv_dialect *d, const char *buf,
                 size_t end, size_t maxf)
{
    memset(p, 0, sizeof(*p));
    p->d = d;
    p->buf = buf;
    p->end = end;
    p->base = end;
    p->maxf = maxf;
    p->fast = mg_csv_fast_dialect(d);
    p->wide = p->fast && mg_csv_fast_wide();
    p->scap = 256;
    p->scratch = MG_RAW_MALLOC(p->scap);
    size_t w = maxf ? maxf : 1;
    p->tape_rows = TAPE_CELLS / w ? TAPE_CELLS / w : 1;
    p->tape_rows = p->tape_rows < TAPE_ROWS ? p->tape_rows : TAPE_ROWS;
    p->tape_cell = MG_RAW_MALLOC(p->tape_rows * w * sizeof(char *));
    p->tape_clen = MG_RAW_MALLOC(p->tape_rows * w * sizeof(size_t));
    p->cell = p->tape_cell;
    p->clen = p->tape_clen;
    p->off = MG_RAW_MALLOC(w * sizeof(size_t));
    if (p->scratch == NULL || p->cell == NULL || p->clen == NULL
        || p->off == NULL) {
        mg_csv_rowp_free(p);
        return -1;
    }
    return 0;
}

void
mg_csv_rowp_free(mg_csv_rowp *p)
{
    MG_RAW_FREE(p->scratch);
    MG_RAW_FREE(p->tape_cell);
    MG_RAW_FREE(p->tape_clen);
    MG_RAW_FREE(p->off);
    memset(p, 0, sizeof(*p));
}

/* The special bytes of buf[base, base + 64) (fewer at the end) as bits. */
static inline uint64_t
block_mask(const mg_csv_rowp *p, size_t base)
{
    const mg_csv_dialect *d = p->d;
    const unsigned char *b = (const unsigned char *)p->buf + base;
    unsigned char q = d->has_quote ? d->quote : d->delim;
    unsigned char e = d->has_escape ? d->escape : d->delim;
    size_t n = p->end - base;
    uint64_t m = 0;
#ifdef __SSE2__
    if (n >= 64) {
        const __m128i vd = _mm_set1_epi8((char)d->delim);
        const __m128i vq = _mm_set1_epi8((char)q);
        const __m128i ve = _mm_set1_epi8((char)e);
        const __m128i vl = _mm_set1_epi8('\n');
        const __m128i vr = _mm_set1_epi8('\r');
        for (int k = 0; k < 4; k++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(b + 16 * k));
            __m128i r = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(x, vd), _mm_cmpeq_epi8(x, vq)),
                _mm_or_si128(_mm_cmpeq_epi8(x, vl), _mm_cmpeq_epi8(x, vr)));
            r = _mm_or_si128(r, _mm_cmpeq_epi8(x, ve));
            m |= (uint64_t)(unsigned)_mm_movemask_epi8(r) << (16 * k);
        }
        return m;
    }
#endif
    if (n > 64) {
        n = 64;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = b[i];
        if (c == d->delim || c == q || c == e || c == '\n' || c == '\r') {
            m |= (uint64_t)1 << i;
        }
    }
    return m;
}

/* The first special byte at or after pos, or end. pos never goes back
 * within a row; a new row may start anywhere (the mask is rebuilt). */
static inline __attribute__((always_inline)) size_t
next_special(mg_csv_rowp *p, size_t pos)
{
    for (;;) {
        if (pos < p->base || pos - p->base >= 64) {
            if (pos >= p->end) {
                return p->end;
            }
            p->base = pos;
            p->mask = block_mask(p, pos);
        }
        uint64_t m = p->mask & (~(uint64_t)0 << (pos - p->base));
        if (m) {
            return p->base + (size_t)__builtin_ctzll(m);
        }
        pos = p->base + 64;
        if (pos >= p->end) {
            return p->end;
        }
    }
}

int
mg_csv_scratch_put(mg_csv_rowp *p, const char *s, size_t n)
{
    if (p->scap - p->slen < n) {
        size_t cap = p->scap;
        while (cap - p->slen < n) {
            cap *= 2;
        }
        char *q = MG_RAW_REALLOC(p->scratch, cap);
        if (q == NULL) {
            return -1;
        }
        p->scratch = q;
        p->scap = cap;
    }
    memcpy(p->scratch + p->slen, s, n);
    p->slen += n;
    return 0;
}

size_t
mg_csv_skip_blank(const mg_csv_dialect *d, const char *buf, size_t pos,
                  size_t end)
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

/* One field being cut: a span of the input [fs, fe) until some text needs
 * unescaping, then a copy in scratch from sstart. */
typedef struct field {
    size_t fs, fe;
    size_t sstart;
    int scr;
} field;

/* Copies the field's pending text buf[fs, upto) into scratch (the field
 * lives there from now on); fs = upto. */
static inline int
field_to_scratch(mg_csv_rowp *p, field *f, size_t upto)
{
    if (!f->scr) {
        f->scr = 1;
        f->sstart = p->slen;
    }
    size_t from = f->fs;
    f->fs = upto;
    return mg_csv_scratch_put(p, p->buf + from, upto - from);
}

enum { CUT_OK = 0, CUT_NOMEM, CUT_QUOTE, CUT_ESCAPE };

/* The quoted part of a field at pos (just after the opening quote).
 * Returns the position after the closing quote in *pos. */
static int
cut_quoted(mg_csv_rowp *p, field *f, size_t *pos)
{
    const mg_csv_dialect *d = p->d;
    const char *buf = p->buf;
    size_t at = *pos;
    f->fs = at;
    for (;;) {
        size_t q = next_special(p, at);
        if (q >= p->end) {
            return CUT_QUOTE;
        }
        unsigned char c = (unsigned char)buf[q];
        if (d->has_quote && c == d->quote) {
            if (d->doublequote && q + 1 < p->end
                && (unsigned char)buf[q + 1] == d->quote) {
                /* a doubled quote: keep one */
                if (field_to_scratch(p, f, q + 1) < 0) {
                    return CUT_NOMEM;
                }
                f->fs = at = q + 2;
                continue;
            }
            if (f->scr && field_to_scratch(p, f, q) < 0) {
                return CUT_NOMEM;
            }
            f->fe = q;
            *pos = q + 1;
            return CUT_OK;
        }
        if (d->has_escape && c == d->escape) {
            if (q + 1 >= p->end) {
                return CUT_QUOTE;
            }
            if (field_to_scratch(p, f, q) < 0
                || mg_csv_scratch_put(p, buf + q + 1, 1) < 0) {
                return CUT_NOMEM;
            }
            f->fs = at = q + 2;
            continue;
        }
        at = q + 1; /* a delimiter or line end inside the quotes */
    }
}

/* Unquoted text from *pos to the delimiter or the end of the row (a
 * quote there is literal); appended to the field. */
static inline __attribute__((always_inline)) int
cut_unquoted(mg_csv_rowp *p, field *f, size_t *pos)
{
    const mg_csv_dialect *d = p->d;
    const char *buf = p->buf;
    size_t at = *pos;
    f->fs = at;
    for (;;) {
        size_t q = next_special(p, at);
        while (q < p->end && d->has_quote
               && (unsigned char)buf[q] == d->quote) {
            q = next_special(p, q + 1);
        }
        if (q < p->end && d->has_escape
            && (unsigned char)buf[q] == d->escape) {
            if (q + 1 >= p->end) {
                return CUT_ESCAPE;
            }
            if (field_to_scratch(p, f, q) < 0
                || mg_csv_scratch_put(p, buf + q + 1, 1) < 0) {
                return CUT_NOMEM;
            }
            f->fs = at = q + 2;
            continue;
        }
        if (f->scr && field_to_scratch(p, f, q) < 0) {
            return CUT_NOMEM;
        }
        f->fe = q;
        *pos = q;
        return CUT_OK;
    }
}

/* One field at pos (its start); *pos: the byte after it (a delimiter, a
 * line end or end). */
static inline __attribute__((always_inline)) int
cut_field(mg_csv_rowp *p, field *f, size_t *pos)
{
    const mg_csv_dialect *d = p->d;
    const char *buf = p->buf;
    f->scr = 0;
    if (!(d->has_quote && *pos < p->end
          && (unsigned char)buf[*pos] == d->quote)) {
        return cut_unquoted(p, f, pos);
    }
    *pos += 1;
    int rc = cut_quoted(p, f, pos);
    if (rc != CUT_OK) {
        return rc;
    }
    size_t at = *pos;
    if (at >= p->end || buf[at] == '\n' || buf[at] == '\r'
        || (unsigned char)buf[at] == d->delim) {
        return CUT_OK;
    }
    /* Text after the closing quote continues the field, unquoted; right
     * after it an escape character is literal (doublequote). */
    if (field_to_scratch(p, f, f->fe) < 0) {
        return CUT_NOMEM;
    }
    if (d->doublequote && d->has_escape
        && (unsigned char)buf[at] == d->escape) {
        if (mg_csv_scratch_put(p, buf + at, 1) < 0) {
            return CUT_NOMEM;
        }
        at++;
    }
    *pos = at;
    return cut_unquoted(p, f, pos);
}

static const mg_csv_code cut_codes[] = {MG_CSV_OK, MG_CSV_ENOMEM,
                                        MG_CSV_EQUOTE, MG_CSV_EESCAPE};

long
mg_csv_rowp_parse(mg_csv_rowp *p, size_t pos, size_t *next,
                  mg_csv_error *err)
{
    if (p->fast) {
        long nf = mg_csv_fast_parse(p, pos, next, err);
        if (nf != MG_CSV_FAST_GIVEUP) {
            return nf;
        }
    }
    const char *buf = p->buf;
    size_t rowpos = pos, nf = 0;
    int scratch_used = 0;
    p->slen = 0;
    for (;;) {
        field f = {0, 0, 0, 0};
        int rc = cut_field(p, &f, &pos);
        if (rc != CUT_OK) {
            err->code = cut_codes[rc];
            err->pos = rowpos;
            err->field = nf;
            return -1;
        }
        if (nf < p->maxf) {
            if (f.scr) { /* resolved below: scratch may still move */
                p->off[nf] = f.sstart | MG_CSV_SCRATCH_FLAG;
                p->clen[nf] = p->slen - f.sstart;
                scratch_used = 1;
            }
            else {
                p->off[nf] = f.fs;
                p->cell[nf] = buf + f.fs;
                p->clen[nf] = f.fe - f.fs;
            }
        }
        else if (f.scr) {
            p->slen = f.sstart; /* not kept: drop its copy */
        }
        nf++;
        if (pos >= p->end) {
            *next = p->end;
            break;
        }
        char c = buf[pos++];
        if (c == '\n') {
            *next = pos;
            break;
        }
        if (c == '\r') {
            if (pos < p->end && buf[pos] == '\n') {
                pos++;
            }
            *next = pos;
            break;
        }
        /* c is the delimiter: another field follows (maybe empty). */
    }
    if (scratch_used) {
        mg_csv_rowp_resolve(p, nf);
    }
    return (long)nf;
}

void
mg_csv_rowp_resolve(mg_csv_rowp *p, size_t nf)
{
    size_t n = nf < p->maxf ? nf : p->maxf;
    for (size_t i = 0; i < n; i++) {
        size_t o = p->off[i];
        if (o & MG_CSV_SCRATCH_FLAG) {
            p->cell[i] = p->scratch + (o & ~MG_CSV_SCRATCH_FLAG);
        }
    }
}

/* ---- one whole row (headers) ---- */

void
mg_csv_piece_free(mg_csv_piece *p)
{
    MG_RAW_FREE(p->data);
    MG_RAW_FREE(p->offs);
    memset(p, 0, sizeof(*p));
}

long
mg_csv_row(const mg_csv_dialect *d, const char *buf, size_t pos, size_t end,
           mg_csv_piece *out, size_t *next, mg_csv_error *err)
{
    memset(out, 0, sizeof(*out));
    pos = mg_csv_skip_blank(d, buf, pos, end);
    if (pos >= end) {
        *next = end;
        return 0;
    }
    /* Count the fields first (maxf 0), then cut them out. */
    mg_csv_rowp p;
    if (mg_csv_rowp_init(&p, d, buf, end, 0) < 0) {
        err->code = MG_CSV_ENOMEM;
        return -1;
    }
    long nf = mg_csv_rowp_parse(&p, pos, next, err);
    mg_csv_rowp_free(&p);
    if (nf < 0) {
        return -1;
    }
    if (mg_csv_rowp_init(&p, d, buf, end, (size_t)nf) < 0) {
        err->code = MG_CSV_ENOMEM;
        return -1;
    }
    (void)mg_csv_rowp_parse(&p, pos, next, err);
    size_t total = 0;
    for (long i = 0; i < nf; i++) {
        total += p.clen[i];
    }
    out->data = MG_RAW_MALLOC(total ? total : 1);
    out->offs = MG_RAW_MALLOC(((size_t)nf + 1) * sizeof(int64_t));
    if (out->data == NULL || out->offs == NULL) {
        mg_csv_rowp_free(&p);
        mg_csv_piece_free(out);
        err->code = MG_CSV_ENOMEM;
        return -1;
    }
    out->offs[0] = 0;
    for (long i = 0; i < nf; i++) {
        memcpy(out->data + out->offs[i], p.cell[i], p.clen[i]);
        out->offs[i + 1] = out->offs[i] + (int64_t)p.clen[i];
    }
    out->n = (size_t)nf;
    mg_csv_rowp_free(&p);
    return nf;
}
