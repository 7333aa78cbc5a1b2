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
 * The blocks are loaded with SSE2, or with AVX-512BW and PCLMUL where the
 * CPU has them (asked once, the answer kept in an atomic; both loaders
 * give the same bits, the fuzz target checks each against the byte-wise
 * parser). Plain C, no locks, no other global state; the state lives in
 * the row parser of one thread. Never reads outside [0, end) of the input
 * (the last block is copied into a padded buffer); never trusts a block
 * it has not checked.
 */
#include "csv.h"

#include <stdatomic.h>
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

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MG_CSV_WIDE_BLOCKS 1
/* block_bits and prefix_xor(*q) in one 64-byte compare per byte kind and
 * one carry-less multiply, where the CPU has AVX-512BW and PCLMUL
 * (p->wide). Not inlined: only this function uses those instructions. */
__attribute__((target("avx512bw,pclmul"), noinline)) static void
block_bits_wide(const mg_csv_dialect *d, const unsigned char *b,
                uint64_t *q, uint64_t *s, uint64_t *px)
{
    __m512i x = _mm512_loadu_si512((const void *)b);
    uint64_t qm = _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8((char)d->quote));
    uint64_t sm = _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8((char)d->delim))
                  | _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('\n'))
                  | _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('\r'));
    __m128i all = _mm_set1_epi8((char)0xFF);
    __m128i m = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)qm), all, 0);
    *q = qm;
    *s = sm;
    *px = (uint64_t)_mm_cvtsi128_si64(m);
}
#endif

int
mg_csv_fast_wide(void)
{
#ifdef MG_CSV_WIDE_BLOCKS
    static atomic_int wide = -1; /* asked once; any thread may ask */
    int w = atomic_load_explicit(&wide, memory_order_relaxed);
    if (w < 0) {
        __builtin_cpu_init();
        w = __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("pclmul");
        atomic_store_explicit(&wide, w, memory_order_relaxed);
    }
    return w;
#else
    return 0;
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

/* The block state a row parse keeps in registers: the block's base, its
 * separators outside quotes not yet passed, its quote bits and those of
 * the block before it (pquotes, when pvalid), and whether it is loaded.
 * Stores through the cell arrays may alias the parser's fields, so the
 * loop works on this copy and writes it back once. */
typedef struct fblock {
    size_t base;
    uint64_t seps, quotes, pquotes;
    int have, pvalid;
} fblock;

/* How far ahead of the block the input is fetched into the cache. */
#define PREFETCH_AHEAD 1024

/* Computes the block at f->base (the state before it in p->fcarry and
 * p->fprev): its separators outside quotes in f->seps, its quotes in
 * f->quotes. 0 when a quote of the block is not one the fast path reads
 * like the grammar. */
static int
load_block(mg_csv_rowp *p, fblock *f)
{
    const mg_csv_dialect *d = p->d;
    const unsigned char *b = (const unsigned char *)p->buf + f->base;
    size_t n = p->end - f->base;
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
        if (n > PREFETCH_AHEAD) {
            /* The hardware's prefetch stops at page ends. */
            __builtin_prefetch(b + PREFETCH_AHEAD);
        }
    }
    uint64_t q, s, px;
#ifdef MG_CSV_WIDE_BLOCKS
    if (p->wide) {
        block_bits_wide(d, b, &q, &s, &px);
    }
    else
#endif
    {
        block_bits(d, b, &q, &s);
        px = prefix_xor(q);
    }
    uint64_t inside = px ^ p->fcarry;
    uint64_t sq = s | q;
    uint64_t before = (sq << 1) | (uint64_t)p->fprev;
    uint64_t after = (sq >> 1) | ((uint64_t)next_sq << 63);
    uint64_t opening = q & inside, closing = q & ~inside;
    uint64_t bad = ((opening & ~before) | (closing & ~after)) & valid;
    p->fcarry = (uint64_t)((int64_t)inside >> 63);
    p->fprev = (int)(sq >> 63);
    f->seps = s & ~inside & valid;
    f->quotes = q & valid;
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
    p->fpvalid = 0;
}

/* Loads the block at f->base, or past the end of the input leaves it
 * empty (have 0). 0 when the fast path gives up. */
static inline int
load_at(mg_csv_rowp *p, fblock *f)
{
    if (f->base >= p->end) {
        f->seps = 0;
        f->have = 0;
        return 1;
    }
    f->have = 1;
    return load_block(p, f);
}

/* The next separator outside quotes in *sep, in the block or the blocks
 * after it (end when none is left). 0 when the fast path gives up,
 * also when the input ends inside quotes. The separators before the
 * field's start are already passed (cleared) when this is called. */
static inline int
next_sep(mg_csv_rowp *p, fblock *f, size_t *sep)
{
    while (f->seps == 0) {
        if (f->have) {
            f->pquotes = f->quotes;
            f->pvalid = 1;
            f->base += 64;
        }
        if (f->base >= p->end) {
            f->have = 0;
            *sep = p->end;
            return p->fcarry == 0; /* inside quotes at the end */
        }
        if (!load_at(p, f)) {
            return 0;
        }
    }
    *sep = f->base + (size_t)__builtin_ctzll(f->seps);
    f->seps &= f->seps - 1;
    return 1;
}

/* The block of row start pos loaded, the separators before pos passed.
 * 0 when the fast path gives up. */
static int
start_row(mg_csv_rowp *p, fblock *f, size_t pos)
{
    if (!f->have && !load_at(p, f)) {
        return 0;
    }
    if (f->have && pos > f->base) {
        size_t skip = pos - f->base;
        f->seps &= skip >= 64 ? 0 : ~(uint64_t)0 << skip;
    }
    return 1;
}

/* The bits of the block at base that lie in [a, b). */
static inline uint64_t
bits_in(uint64_t bits, size_t base, size_t a, size_t b)
{
    size_t lo = a > base ? a - base : 0;
    size_t hi = b > base ? b - base : 0;
    if (lo >= 64 || hi == 0) {
        return 0;
    }
    uint64_t below = hi >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << hi) - 1;
    return bits & below & (~(uint64_t)0 << lo);
}

/* 1 when buf[a, b) may hold a quote: a quote bit of the block there or
 * of the one before (a field most often crosses one block end), or the
 * range reaching further (then the bytes decide). */
static inline int
may_quote(const mg_csv_rowp *p, const fblock *f, size_t a, size_t b)
{
    if (b <= a) {
        return 0;
    }
    if (f->have && b <= f->base + 64) {
        if (a >= f->base) {
            return bits_in(f->quotes, f->base, a, b) != 0;
        }
        if (f->pvalid && a >= f->base - 64) {
            return (bits_in(f->quotes, f->base, a, b)
                    | bits_in(f->pquotes, f->base - 64, a, b)) != 0;
        }
    }
    return memchr(p->buf + a, p->d->quote, b - a) != NULL;
}

/* A quoted field's text buf[fs, fe) with each doubled quote kept once,
 * into the scratch buffer: field nf points there. -1: out of memory. */
static int
put_doubled(mg_csv_rowp *p, size_t nf, size_t fs, size_t fe, int *scratch)
{
    const char *buf = p->buf;
    char q = (char)p->d->quote;
    size_t start = p->slen;
    const char *dq = memchr(buf + fs, q, fe - fs);
    while (dq != NULL) {
        size_t upto = (size_t)(dq - buf) + 1;
        if (mg_csv_scratch_put(p, buf + fs, upto - fs) < 0) {
            return -1;
        }
        fs = upto + 1;
        dq = fs < fe ? memchr(buf + fs, q, fe - fs) : NULL;
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

long
mg_csv_fast_parse(mg_csv_rowp *p, size_t pos, size_t *next,
                  mg_csv_error *err)
{
    if (!p->fhave || pos < p->fbase || pos - p->fbase >= 64) {
        reset_at(p, pos);
    }
    fblock f = {p->fbase, p->fseps, p->fquotes, p->fpquotes, p->fhave,
                p->fpvalid};
    const char *buf = p->buf;
    const char **cell = p->cell;
    size_t *clen = p->clen, *off = p->off;
    const size_t maxf = p->maxf, end = p->end;
    const unsigned char q = p->d->quote;
    size_t fs = pos, nf = 0;
    int scratch = 0;
    long rc;
    p->slen = 0;
    if (!start_row(p, &f, pos)) {
        p->fast = 0;
        return MG_CSV_FAST_GIVEUP;
    }
    for (;;) {
        size_t sep;
        if (!next_sep(p, &f, &sep)) {
            p->fast = 0;
            rc = MG_CSV_FAST_GIVEUP;
            break;
        }
        size_t a = fs, b = sep;
        /* An empty field's byte is its separator, never a quote: no test
         * of the length, whose outcome an often-empty column randomizes. */
        if (a < end && (unsigned char)buf[a] == q) {
            a++; /* the block check leaves the closing quote at b - 1 */
            b--;
            if (may_quote(p, &f, a, b)) {
                if (put_doubled(p, nf, a, b, &scratch) < 0) {
                    err->code = MG_CSV_ENOMEM;
                    err->pos = pos;
                    err->field = nf;
                    rc = -1;
                    break;
                }
                goto stored;
            }
        }
        if (nf < maxf) {
            off[nf] = a;
            cell[nf] = buf + a;
            clen[nf] = b - a;
        }
    stored:
        nf++;
        if (sep >= end) {
            *next = end;
            rc = (long)nf;
            break;
        }
        char c = buf[sep];
        if (c == '\n' || c == '\r') {
            *next = c == '\r' && sep + 1 < end && buf[sep + 1] == '\n'
                        ? sep + 2 : sep + 1;
            rc = (long)nf;
            break;
        }
        fs = sep + 1; /* the delimiter: another field follows */
    }
    p->fbase = f.base;
    p->fseps = f.seps;
    p->fquotes = f.quotes;
    p->fpquotes = f.pquotes;
    p->fpvalid = f.pvalid;
    p->fhave = f.have;
    if (rc >= 0 && scratch) {
        mg_csv_rowp_resolve(p, nf);
    }
    return rc;
}
