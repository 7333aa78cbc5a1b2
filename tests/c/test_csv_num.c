/* test_csv_num.c - the eight-digits-at-a-time cell parsers of
 * src/base/csv_num.h against the byte-wise ones: the same answer (taken
 * or not, and the same value bit for bit) for every cell, with the cell
 * followed by every kind of byte the wide form reads past its end. */
#include "ctest.h"
#include "csv_num.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bytes cells are made of: mostly digits, with the ones that end or
 * break a number. */
static const char alphabet[] = "0123456789012345678901234567890123456789"
                               "..--++eE,/: \x7f\xff\x2f\x3a";

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* 0 when the two forms agree on s[0, n) with 32 bytes readable. */
static int
agree(const char *s, size_t n)
{
    int64_t a = 0, b = 0;
    int ra = mg_csv_int_cell(s, n, &a);
    int rb = mg_csv_int_cell_wide(s, n, 32, &b);
    if (ra != rb || (ra && a != b)) {
        fprintf(stderr, "  int %.*s: %d/%lld vs %d/%lld\n", (int)n, s, ra,
                (long long)a, rb, (long long)b);
        return 1;
    }
    double x = 0, y = 0;
    ra = mg_csv_float_cell(s, n, &x);
    rb = mg_csv_float_cell_wide(s, n, 32, &y);
    if (ra != rb || (ra && memcmp(&x, &y, sizeof(x)) != 0)) {
        fprintf(stderr, "  float %.*s: %d/%.17g vs %d/%.17g\n", (int)n, s,
                ra, x, rb, y);
        return 1;
    }
    return 0;
}

CTEST(csv_wide_number_parsers_match_the_bytewise_ones)
{
    static const char *cases[] = {
        "0", "-0", "+0", "7", "-", "+", ".", "-.", "1.", ".5", "-.5", "1.2.3",
        "12345678", "123456789", "1234567890123456", "12345678901234567",
        "9223372036854775807", "-9223372036854775808", "1234567.12345678",
        "12345678.1", "1234567.123456789", "-580090.387257", "1e5", "1.5e3",
        "00000000000000001", "0000000.00000000", "9999999.99999999",
        "12:30", "1,5", "١٢", "\xff", "12 ", " 12",
    };
    char buf[64];
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = strlen(cases[c]);
        /* Every byte after the cell: a digit must not extend it. */
        for (int after = 0; after < 256; after += 7) {
            memset(buf, after, sizeof(buf));
            memcpy(buf, cases[c], n);
            CHECK(agree(buf, n) == 0);
        }
    }
    size_t na = sizeof(alphabet) - 1;
    for (long it = 0; it < CT_ITERS(2000000L); it++) {
        uint64_t r = rng();
        size_t n = (size_t)(r % 21);
        for (size_t i = 0; i < sizeof(buf); i++) {
            buf[i] = alphabet[rng() % na];
        }
        CHECK(agree(buf, n) == 0);
    }
}

CTEST(csv_wide_number_parsers_read_no_further_than_room)
{
    /* The cell at the very end of a buffer: with room == n the wide
     * form must not read past it (ASan and the byte-wise fallback). */
    for (size_t n = 1; n <= 20; n++) {
        char *p = malloc(n);
        CHECK(p != NULL);
        memset(p, '7', n);
        int64_t a = 0;
        double x = 0;
        int ri = mg_csv_int_cell_wide(p, n, n, &a);
        int rf = mg_csv_float_cell_wide(p, n, n, &x);
        int64_t want_i = 0;
        double want_f = 0;
        CHECK(ri == mg_csv_int_cell(p, n, &want_i));
        CHECK(rf == mg_csv_float_cell(p, n, &want_f));
        CHECK(!ri || a == want_i);
        CHECK(!rf || x == want_f);
        free(p);
    }
}
