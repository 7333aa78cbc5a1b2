/* csv_fast.c - the structural row parser (mg_csv_fast_parse, csv.h): the
 * fast path of mg_csv_rowp_parse for the common dialect (a quote with
 * doubled quotes, no escape character, no comment character).
 *
 * Owns: the 64-byte blocks of separator, quote and line-end bits, the
 * in-quotes mask from the prefix XOR of the quote bits (carried from block
 * to block), the check that every quote of a block is one the csv
 * module's grammar reads the same way (an opening quote right after a
 * separator, a line end, a quote or the row start; a closing quote right
 * before one of them or the end), and the cutting of a row at the
 * separators outside quotes. Where a block holds any other quote (a quote
 * inside an unquoted field, text after a closing quote) or a field runs
 * into the end of the input inside quotes, it gives up, and the caller
 * parses that row and the rest with the byte-wise parser (csv_tok.c),
 * which is the reference: both cut every row into the same fields (the
 * fuzz target checks it row by row).
 *
 * Plain C, no locks, no global state; the state lives in the row parser
 * of one thread. Never reads outside [0, end) of the input (the last
 * block is copied into a padded buffer); never trusts a block it has not
 * checked.
 */
#include "csv.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

int
mg_csv_fast_dialect(const mg_csv_dialect *d)
{
    return d->has_quote && d->doublequote && !d->has_escape
           && !d->has_comment && d->quote != d->delim && d->delim != '\n'
           && d->delim != '\r' && d->quote != '\n' && d->quote != '\r';
}

/* The quote bits (*q) and the delimiter and line-end bits (*s) of
 * b[0, 64), in one pass over the bytes. */
static inline void
block_bits(const mg_csv_dialect *d, const unsigned char *b, uint64_t *q,
           uint64_t *s)
{
#ifdef __SSE2__
    const __m128i vq = _mm_set1_epi8((char)d->quote);
    const __m128i vd = _mm_set1_epi8((char)d->delim);
    const __m128i vl = _mm_set1_epi8('\n');
    const __m128i vr = _mm_set1_epi8('\r');
    uint64_t qm = 0, sm = 0;
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(b + 16 * k));
        __m128i sep = _mm_or_si128(
            _mm_cmpeq_epi8(x, vd),
            _mm_or_si128(_mm_cmpeq_epi8(x, vl), _mm_cmpeq_epi8(x, vr)));
        qm |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vq))
              << (16 * k);
        sm |= (uint64_t)(unsigned)_mm_movemask_epi8(sep) << (16 * k);
    }
    *q = qm;
    *s = sm;
#else
    uint64_t qm = 0, sm = 0;
    for (int i = 0; i < 64; i++) {
        unsigned char c = b[i];
        qm |= (uint64_t)(c == d->quote) << i;
        sm |= (uint64_t)(c == d->delim || c == '\n' || c == '\r') << i;
    }
    *q = qm;
    *s = sm;
#endif
}

/* Bit i: the XOR of bits 0..i of x (1 inside quotes, opening quote
 * included, closing quote excluded). */
static inline uint64_t
prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

static inline int
is_sep_or_quote(const mg_csv_dialect *d, unsigned char c)
{
    return c == d->delim || c == d->quote || c == '\n' || c == '\r';
}

/* Computes the block at p->fbase (the state before it in p->fcarry and
 * p->fprev): its separators outside quotes in p->fseps. 0 when a quote
 * of the block is not one the fast path reads like the grammar. */
static int
load_block(mg_csv_rowp *p)
{
    const mg_csv_dialect *d = p->d;
    const unsigned char *b = (const unsigned char *)p->buf + p->fbase;
    size_t n = p->end - p->fbase;
    unsigned char pad[64];
    uint64_t valid = ~(uint64_t)0;
    int next_sq = 1; /* the end of the input closes a field */
    if (n < 64) {
        memcpy(pad, b, n);
        memset(pad + n, d->delim, 64 - n); /* a separator after the end */
        b = pad;
        valid = ((uint64_t)1 << n) - 1;
    }
    else if (n > 64) {
        next_sq = is_sep_or_quote(d, b[64]);
    }
    uint64_t q, s;
    block_bits(d, b, &q, &s);
    uint64_t inside = prefix_xor(q) ^ p->fcarry;
    uint64_t sq = s | q;
    uint64_t before = (sq << 1) | (uint64_t)p->fprev;
    uint64_t after = (sq >> 1) | ((uint64_t)next_sq << 63);
    uint64_t opening = q & inside, closing = q & ~inside;
    uint64_t bad = ((opening & ~before) | (closing & ~after)) & valid;
    p->fcarry = (uint64_t)((int64_t)inside >> 63);
    p->fprev = (int)(sq >> 63);
    p->fseps = s & ~inside & valid;
    return bad == 0;
}

/* The block state at row start pos: outside quotes, a row start before. */
static void
reset_at(mg_csv_rowp *p, size_t pos)
{
    p->fbase = pos;
    p->fcarry = 0;
    p->fprev = 1;
    p->fhave = 0;
}

/* The next separator outside quotes at or after pos, in *sep (end when
 * none). 0 when the fast path gives up. */
static inline int
next_sep(mg_csv_rowp *p, size_t pos, size_t *sep)
{
    for (;;) {
        if (!p->fhave) {
            if (p->fbase >= p->end) {
                *sep = p->end;
                return p->fcarry == 0; /* inside quotes at the end */
            }
            if (!load_block(p)) {
                return 0;
            }
            p->fhave = 1;
        }
        if (pos > p->fbase) {
            size_t skip = pos - p->fbase;
            p->fseps &= skip >= 64 ? 0 : ~(uint64_t)0 << skip;
        }
        if (p->fseps) {
            *sep = p->fbase + (size_t)__builtin_ctzll(p->fseps);
            p->fseps &= p->fseps - 1;
            return 1;
        }
        p->fbase += 64;
        p->fhave = 0;
    }
}

/* Stores field nf: buf[fs, fe), quoted or not. -1 when out of memory. */
static inline int
put_field(mg_csv_rowp *p, size_t nf, size_t fs, size_t fe, int *scratch)
{
    const char *buf = p->buf;
    unsigned char q = p->d->quote;
    if (fe > fs && (unsigned char)buf[fs] == q) {
        fs++; /* the block check leaves the closing quote at fe - 1 */
        fe--;
        const char *dq = memchr(buf + fs, (char)q, fe - fs);
        if (dq != NULL) { /* doubled quotes: keep one of each pair */
            size_t start = p->slen;
            while (dq != NULL) {
                size_t upto = (size_t)(dq - buf) + 1;
                if (mg_csv_scratch_put(p, buf + fs, upto - fs) < 0) {
                    return -1;
                }
                fs = upto + 1;
                dq = fs < fe ? memchr(buf + fs, (char)q, fe - fs) : NULL;
            }
            if (mg_csv_scratch_put(p, buf + fs, fe - fs) < 0) {
                return -1;
            }
            if (nf < p->maxf) {
                p->off[nf] = start | MG_CSV_SCRATCH_FLAG;
                p->clen[nf] = p->slen - start;
                *scratch = 1;
            }
            else {
                p->slen = start;
            }
            return 0;
        }
    }
    if (nf < p->maxf) {
        p->off[nf] = fs;
        p->cell[nf] = buf + fs;
        p->clen[nf] = fe - fs;
    }
    return 0;
}

long
mg_csv_fast_parse(mg_csv_rowp *p, size_t pos, size_t *next,
                  mg_csv_error *err)
{
    if (!p->fhave || pos < p->fbase || pos - p->fbase >= 64) {
        reset_at(p, pos);
    }
    const char *buf = p->buf;
    size_t fs = pos, nf = 0;
    int scratch = 0;
    p->slen = 0;
    for (;;) {
        size_t sep;
        if (!next_sep(p, fs, &sep)) {
            p->fast = 0;
            return MG_CSV_FAST_GIVEUP;
        }
        if (put_field(p, nf, fs, sep, &scratch) < 0) {
            err->code = MG_CSV_ENOMEM;
            err->pos = pos;
            err->field = nf;
            return -1;
        }
        nf++;
        if (sep >= p->end) {
            *next = p->end;
            break;
        }
        char c = buf[sep];
        if (c == '\n') {
            *next = sep + 1;
            break;
        }
        if (c == '\r') {
            *next = sep + 1 < p->end && buf[sep + 1] == '\n' ? sep + 2
                                                             : sep + 1;
            break;
        }
        fs = sep + 1; /* the delimiter: another field follows */
    }
    if (scratch) {
        mg_csv_rowp_resolve(p, nf);
    }
    return (long)nf;
}
