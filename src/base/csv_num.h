/* csv_num.h - the parsers of the common numeric cells, inline (csv.h):
 * an int64 and a plain decimal float. Included by csv_conv.c (the full
 * parsers fall back on them) and csv_col.c (the per-cell loop calls them
 * without a call across files).
 *
 * Plain C, no locks, no state. Never reads past s[n - 1]; never
 * overflows a signed value (an int takes at most 19 digits; a float
 * mantissa of more digits may wrap, unsigned, and is then refused).
 */
#ifndef MG_CSV_NUM_H
#define MG_CSV_NUM_H

#include <stddef.h>
#include <stdint.h>

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

#endif /* MG_CSV_NUM_H */
