/* csv_num.h - the parsers of the common numeric cells, inline (csv.h):
 * an int64 and a plain decimal float, byte by byte, and the same two
 * eight digits at a time (the *_wide forms) where the bytes after the
 * cell may be read. Included by csv_conv.c (the full parsers fall back
 * on them) and csv_col.c (the per-cell loop calls them without a call
 * across files).
 *
 * Plain C, no locks, no state. The byte-wise forms never read past
 * s[n - 1]; the wide forms read up to s[16] (room > 16) and give the
 * same answer as the byte-wise form for every cell (they call it for any
 * cell they do not take). Never overflows a signed value (an int takes
 * at most 19 digits; a float mantissa of more digits may wrap, unsigned,
 * and is then refused).
 */
#ifndef MG_CSV_NUM_H
#define MG_CSV_NUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The length of a leading '+' or '-' (0 or 1); *neg: it is '-'. */
static inline size_t
mg_csv_sign(const char *s, size_t n, int *neg)
{
    int has = n && (s[0] == '-' || s[0] == '+');
    *neg = has && s[0] == '-';
    return (size_t)has;
}

/* int64 of [sign] digits, at most 19 digits; 1 and *out, else 0. */
static inline int
mg_csv_int_cell(const char *s, size_t n, int64_t *out)
{
    int neg;
    size_t i = mg_csv_sign(s, n, &neg);
    if (i == n || n - i > 19) {
        return 0;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) {
            return 0;
        }
        v = v * 10 + d; /* 19 digits never overflow uint64 */
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return 0;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    }
    else {
        if (v > (uint64_t)INT64_MAX) {
            return 0;
        }
        *out = (int64_t)v;
    }
    return 1;
}


static const double mg_csv_pow10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The common cell: [sign] digits [. digits], at most 19 digits in all,
 * the value below 2^53 and at most 22 after the point: one exact
 * division by a power of ten gives the correctly rounded double. 1 and
 * *out on success, 0 when the general parser must decide. */
static inline int
mg_csv_float_cell(const char *s, size_t n, double *out)
{
    int neg;
    size_t i = mg_csv_sign(s, n, &neg);
    size_t first = i;
    uint64_t mant = 0;
    unsigned d;
    while (i < n && (d = (unsigned)(unsigned char)s[i] - '0') <= 9) {
        mant = mant * 10 + d;
        i++;
    }
    size_t frac = 0, intdigits = i - first;
    if (i < n && s[i] == '.') {
        size_t f0 = ++i;
        while (i < n && (d = (unsigned)(unsigned char)s[i] - '0') <= 9) {
            mant = mant * 10 + d;
            i++;
        }
        frac = i - f0;
    }
    if (i != n || intdigits + frac == 0 || intdigits + frac > 19
        || frac > 22 || mant > ((uint64_t)1 << 53)) {
        return 0;
    }
    double v = (double)mant / mg_csv_pow10[frac];
    *out = neg ? -v : v;
    return 1;
}

/* ---- eight digits at a time ---- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MG_CSV_WIDE 1
#define MG_CSV_ONES(b) ((uint64_t)0x0101010101010101ULL * (b))

static inline uint64_t
mg_csv_load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* The index of the first byte of x (p[0] in the low byte) that is not a
 * digit; 8 when all are. A byte below '0' borrows from the bytes after
 * it, never from those before, so the first flag is exact. */
static inline size_t
mg_csv_digit_run8(uint64_t x)
{
    uint64_t t = x - MG_CSV_ONES(0x30);
    uint64_t flags = (t | (t + MG_CSV_ONES(0x76))) & MG_CSV_ONES(0x80);
    return flags ? (size_t)__builtin_ctzll(flags) / 8 : 8;
}

/* The value of the first k bytes of x (1 <= k <= 8; digits, as
 * mg_csv_digit_run8 found them). '0' is taken from every byte (a borrow
 * runs only into the bytes after the digits), the k digits are moved to
 * the top of the word (the bytes below are zeros: leading zeros), then
 * pairs, quads and halves are joined by three multiplies. */
static inline uint64_t
mg_csv_digits_value(uint64_t x, size_t k)
{
    x = (x - MG_CSV_ONES(0x30)) << ((8 - k) * 8);
    x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFULL;
    x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFULL;
    x = (x * 10000 + (x >> 32)) & 0xFFFFFFFFULL;
    return x;
}

static const uint64_t mg_csv_pow10u[9] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
};
#endif

/* The sign of a cell of n > 0 bytes, without a branch: *neg, and the
 * sign's length (0 or 1). */
static inline size_t
mg_csv_sign_nb(const char *s, int *neg)
{
    unsigned char c0 = (unsigned char)s[0];
    *neg = c0 == '-';
    return (size_t)(*neg | (c0 == '+'));
}

/* mg_csv_int_cell, where s[0, room) may be read (room >= n): taken
 * here when it has at most 16 digits, otherwise by the byte-wise form. */
static inline __attribute__((always_inline)) int
mg_csv_int_cell_wide(const char *s, size_t n, size_t room, int64_t *out)
{
#ifdef MG_CSV_WIDE
    if (n > 0 && room >= 17) {
        int neg;
        size_t i = mg_csv_sign_nb(s, &neg), m = n - i;
        uint64_t x0 = mg_csv_load8(s + i), v;
        int ok;
        if (m <= 8) {
            ok = m >= 1 && mg_csv_digit_run8(x0) >= m;
            v = ok ? mg_csv_digits_value(x0, m) : 0;
        }
        else {
            uint64_t x1 = mg_csv_load8(s + i + 8);
            ok = m <= 16 && mg_csv_digit_run8(x0) == 8
                 && mg_csv_digit_run8(x1) >= m - 8;
            v = ok ? mg_csv_digits_value(x0, 8) * mg_csv_pow10u[m - 8]
                         + mg_csv_digits_value(x1, m - 8)
                   : 0;
        }
        if (ok) {
            /* At most 16 digits: below 2^63; the sign without a branch
             * (the signs of a column are seldom predictable). */
            int64_t sv = (int64_t)v;
            *out = (sv ^ -(int64_t)neg) + neg;
            return 1;
        }
    }
#else
    (void)room;
#endif
    return mg_csv_int_cell(s, n, out);
}

/* mg_csv_float_cell, where s[0, room) may be read (room >= n): taken
 * here when the integer part has 1 to 7 digits and the fraction none or
 * 1 to 8, otherwise by the byte-wise form. */
static inline __attribute__((always_inline)) int
mg_csv_float_cell_wide(const char *s, size_t n, size_t room, double *out)
{
#ifdef MG_CSV_WIDE
    if (n > 0 && room >= 17) {
        int neg;
        size_t i = mg_csv_sign_nb(s, &neg), m = n - i;
        const char *p = s + i;
        uint64_t x0 = mg_csv_load8(p);
        size_t k = mg_csv_digit_run8(x0), f = 0;
        k = k < m ? k : m;
        int ok = k >= 1 && k < 8;
        uint64_t mant = ok ? mg_csv_digits_value(x0, k) : 0;
        if (ok && k < m) {
            f = m - k - 1;
            uint64_t x1 = mg_csv_load8(p + k + 1);
            ok = p[k] == '.' && f >= 1 && f <= 8
                 && mg_csv_digit_run8(x1) >= f;
            mant = ok ? mant * mg_csv_pow10u[f]
                            + mg_csv_digits_value(x1, f)
                      : 0;
        }
        if (ok) {
            /* At most 15 digits: below 2^53, exact as a double; the sign
             * bit set without a branch. */
            double v = (double)(int64_t)mant / mg_csv_pow10[f];
            uint64_t bits;
            memcpy(&bits, &v, sizeof(bits));
            bits |= (uint64_t)neg << 63;
            memcpy(out, &bits, sizeof(bits));
            return 1;
        }
    }
#else
    (void)room;
#endif
    return mg_csv_float_cell(s, n, out);
}

#endif /* MG_CSV_NUM_H */
