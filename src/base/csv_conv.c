/* csv_conv.c - CSV cell types (csv.h): the parsers of one cell (int64,
 * float64, bool, ISO-8601 date and timestamp), the test of a cell against
 * a type, UTF-8 validation (ASCII runs 64 bytes at a time with SSE2) and
 * the unification of types over chunks.
 *
 * Plain C, no locks, no global state. Floats round-trip exactly: a fast
 * path for short decimals (a mantissa below 2^53 scaled by an exact power
 * of ten, one correctly rounded IEEE operation), strtod on a NUL-ended
 * copy for the rest. Never allocates per cell except that copy for a cell
 * longer than 127 bytes.
 */
#include "csv.h"
#include "csv_num.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ---- one cell ---- */

size_t
mg_csv_type_size(mg_csv_type t)
{
    return t == MG_CSV_BOOL ? 1 : t == MG_CSV_DATE ? 4 : 8;
}

int
mg_csv_parse_int(const char *s, size_t n, int64_t *out)
{
    return mg_csv_int_cell(s, n, out);
}

static int
word_is(const char *s, size_t n, const char *w)
{
    size_t m = strlen(w);
    if (n != m) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != w[i]) {
            return 0;
        }
    }
    return 1;
}

/* strtod of s[0, n) through a NUL-terminated copy; the grammar was
 * checked, so only the rounding is left to it. */
static int
float_slow(const char *s, size_t n, double *out)
{
    char local[128];
    char *buf = n < sizeof(local) ? local : MG_RAW_MALLOC(n + 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *endp = NULL;
    double v = strtod(buf, &endp);
    int ok = endp == buf + n;
    if (buf != local) {
        MG_RAW_FREE(buf);
    }
    if (ok) {
        *out = v;
    }
    return ok;
}

int
mg_csv_parse_float(const char *s, size_t n, double *out)
{
    if (mg_csv_float_cell(s, n, out)) {
        return 1;
    }
    int neg;
    size_t i0 = mg_csv_sign(s, n, &neg), i = i0;
    uint64_t mant = 0;
    int sig = 0, digits = 0, exact = 1;
    long e10 = 0;
    for (; i < n && (unsigned)(s[i] - '0') <= 9; i++, digits++) {
        if (sig < 19) {
            mant = mant * 10 + (unsigned)(s[i] - '0');
            sig += mant != 0;
        }
        else {
            e10++;
            exact &= s[i] == '0';
        }
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && (unsigned)(s[i] - '0') <= 9; i++, digits++) {
            if (sig < 19) {
                mant = mant * 10 + (unsigned)(s[i] - '0');
                sig += mant != 0;
                e10--;
            }
            else {
                exact &= s[i] == '0';
            }
        }
    }
    if (digits == 0) {
        const char *w = s + i0;
        size_t wn = n - (size_t)(w - s);
        if (word_is(w, wn, "inf") || word_is(w, wn, "infinity")) {
            *out = neg ? -INFINITY : INFINITY;
            return 1;
        }
        if (word_is(w, wn, "nan")) {
            *out = neg ? -NAN : NAN;
            return 1;
        }
        return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '-' || s[i] == '+')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i == n) {
            return 0;
        }
        long ev = 0;
        for (; i < n && (unsigned)(s[i] - '0') <= 9; i++) {
            if (ev < 100000) {
                ev = ev * 10 + (s[i] - '0');
            }
        }
        e10 += eneg ? -ev : ev;
    }
    if (i != n) {
        return 0;
    }
    if (exact && mant <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double v = (double)mant;
        v = e10 < 0 ? v / mg_csv_pow10[-e10] : v * mg_csv_pow10[e10];
        *out = neg ? -v : v;
        return 1;
    }
    return float_slow(s, n, out);
}

static int
two_digits(const char *s, int *v)
{
    unsigned a = (unsigned)(s[0] - '0'), b = (unsigned)(s[1] - '0');
    if (a > 9 || b > 9) {
        return 0;
    }
    *v = (int)(a * 10 + b);
    return 1;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
parse_ymd(const char *s, size_t n, int64_t *days)
{
    int c, yy, m, d;
    if (n < 10 || s[4] != '-' || s[7] != '-' || !two_digits(s, &c)
        || !two_digits(s + 2, &yy) || !two_digits(s + 5, &m)
        || !two_digits(s + 8, &d)) {
        return 0;
    }
    int y = c * 100 + yy;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]
        || (m == 2 && d == 29 && !leap)) {
        return 0;
    }
    *days = days_from_civil(y, m, d);
    return 1;
}

int
mg_csv_parse_date(const char *s, size_t n, int32_t *out)
{
    int64_t days;
    if (n != 10 || !parse_ymd(s, n, &days)) {
        return 0;
    }
    *out = (int32_t)days;
    return 1;
}

int
mg_csv_parse_ts(const char *s, size_t n, int64_t *out)
{
    int64_t days;
    int hh = 0, mm = 0, ss = 0;
    int64_t us = 0;
    if (!parse_ymd(s, n, &days)) {
        return 0;
    }
    size_t i = 10;
    if (i < n) {
        if ((s[i] != 'T' && s[i] != ' ') || n - i < 6 || s[i + 3] != ':'
            || !two_digits(s + i + 1, &hh) || !two_digits(s + i + 4, &mm)) {
            return 0;
        }
        i += 6;
        if (i < n && s[i] == ':') {
            if (n - i < 3 || !two_digits(s + i + 1, &ss)) {
                return 0;
            }
            i += 3;
            if (i < n && s[i] == '.') {
                int nd = 0;
                for (i++; i < n && (unsigned)(s[i] - '0') <= 9; i++) {
                    if (++nd > 6) {
                        return 0; /* finer than microseconds: keep text */
                    }
                    us = us * 10 + (s[i] - '0');
                }
                if (nd == 0) {
                    return 0;
                }
                while (nd++ < 6) {
                    us *= 10;
                }
            }
        }
        if (i < n && s[i] == 'Z') {
            i++;
        }
        if (i != n || hh > 23 || mm > 59 || ss > 59) {
            return 0;
        }
    }
    *out = ((days * 24 + hh) * 60 + mm) * 60000000LL + ss * 1000000LL + us;
    return 1;
}

int
mg_csv_in_set(const mg_csv_strset *set, const char *s, size_t n)
{
    for (size_t i = 0; i < set->n; i++) {
        if (set->len[i] != n) {
            continue;
        }
        size_t k = 0;
        while (k < n && set->s[i][k] == s[k]) {
            k++;
        }
        if (k == n) {
            return 1;
        }
    }
    return 0;
}

size_t
mg_csv_ascii_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
#ifdef __SSE2__
    for (; n - i >= 64; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(s + i + 48));
        __m128i o = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
        if (_mm_movemask_epi8(o) != 0) {
            break;
        }
    }
#endif
    while (i < n && s[i] < 0x80) {
        i++;
    }
    return i;
}

int
mg_csv_utf8_ok(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = mg_csv_ascii_len(str, n);
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) {
                lo = 0xA0;
            }
            else if (c == 0xED) {
                hi = 0x9F; /* no surrogates */
            }
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) {
                lo = 0x90;
            }
            else if (c == 0xF4) {
                hi = 0x8F;
            }
        }
        else {
            return 0;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) {
            return 0;
        }
        for (size_t k = 2; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
        }
        i += len;
    }
    return 1;
}

/* ---- types ---- */

/* 1 if the cell parses as type t. */
int
mg_csv_cell_fits(const mg_csv_values *v, int t, const char *s, size_t n)
{
    union {
        int64_t i;
        double f;
        int32_t d;
    } tmp;
    switch (t) {
    case MG_CSV_INT:
        return mg_csv_parse_int(s, n, &tmp.i);
    case MG_CSV_FLOAT:
        return mg_csv_parse_float(s, n, &tmp.f);
    case MG_CSV_BOOL:
        return mg_csv_in_set(&v->trues, s, n) || mg_csv_in_set(&v->falses, s, n);
    case MG_CSV_DATE:
        return mg_csv_parse_date(s, n, &tmp.d);
    case MG_CSV_TS:
        return mg_csv_parse_ts(s, n, &tmp.i);
    default:
        return 1;
    }
}

mg_csv_type
mg_csv_unify(unsigned mask, int any_value)
{
    if (!any_value) {
        return MG_CSV_STR;
    }
    for (int t = 0; t < MG_CSV_STR; t++) {
        if (mask & (1u << t)) {
            return (mg_csv_type)t;
        }
    }
    return MG_CSV_STR;
}
