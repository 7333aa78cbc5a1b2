/* kernels.c - reductions and elementwise kernels over SharedArray memory.
 *
 * Owns: the C loops (sum, min/max/argmin/argmax, count_nonzero, moments,
 * in-place arithmetic, fill, sort, copy), the Stats result type, the
 * multigil._core functions that wrap them (re-exported as multigil.kernels)
 * and the array methods that call the same code. Also two benchmark helpers
 * (_memcpy_bench, _threads_sum_bench) that give the hardware baselines.
 *
 * The C core (mg_kern_*) calls no Python API: the glue releases the GIL
 * around it for large arrays. The array object passed in is kept alive by
 * the caller's reference for the whole call, and it holds a block reference,
 * so the memory cannot go away while the GIL is released. Nothing locks the
 * data: a concurrent writer in another interpreter gives torn results, never
 * a crash (single-writer hand-off is the user's job, docs/shared.md).
 *
 * Rules chosen here (and documented in docs/shared.md):
 *   - integer in-place add/sub/mul wrap around modulo 2**bits, like C and
 *     NumPy; the scalar operand itself must fit the dtype (OverflowError);
 *   - integer div is floor division (Python's //); a zero divisor anywhere
 *     raises ZeroDivisionError before any item is changed;
 *   - float div follows IEEE 754 (x/0 -> +-inf, 0/0 -> nan);
 *   - a scalar operand goes through the item rules of the array's dtype
 *     first (f4: OverflowError beyond float32's finite range, as a[i] = x);
 *     float results that overflow are +-inf, as IEEE float32/64 math;
 *   - integer sum accumulates in 64 bits and raises OverflowError if the
 *     exact sum does not fit int64 (uint64 for unsigned dtypes);
 *   - min/max/argmin/argmax/mean/var/std of an empty array raise
 *     ValueError; sum of an empty array is 0 (0.0 for floats);
 *   - NaN: min/max return nan and argmin/argmax the first NaN's index if
 *     there is one (as NumPy); sort puts NaNs last.
 */
#include "kernels.h"
#include "errors.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Loops over fewer items than this keep the GIL: releasing it costs more
 * than it saves, and may wait for another thread's switch interval. */
#define MG_NOGIL_MIN 16384

#define MG_NOGIL(n, stmt)                                                    \
    do {                                                                     \
        if ((n) >= MG_NOGIL_MIN) {                                           \
            Py_BEGIN_ALLOW_THREADS                                           \
            stmt;                                                            \
            Py_END_ALLOW_THREADS                                             \
        }                                                                    \
        else {                                                               \
            stmt;                                                            \
        }                                                                    \
    } while (0)

/* ---- C core (no Python API) ---- */

#define AT(T, v, i) (*(T *)((v)->base + (i) * (v)->stride))

/* Each C type once, as (C type, is-float, is-signed). Bool is stored as
 * uint8 holding 0 or 1 and runs the uint8 loops. */
#define MG_TYPES(X)                                                          \
    X(int8_t, 0, 1) X(int16_t, 0, 1) X(int32_t, 0, 1) X(int64_t, 0, 1)       \
    X(uint8_t, 0, 0) X(uint16_t, 0, 0) X(uint32_t, 0, 0)                     \
    X(uint64_t, 0, 0) X(float, 1, 1) X(double, 1, 1)

/* Run FN##_<ctype>(args) for the dtype code; a statement, not a value. */
#define MG_DISPATCH(code, ret, FN, ...)                                      \
    switch (code) {                                                          \
    case 'b': ret FN##_int8_t(__VA_ARGS__); break;                           \
    case 'h': ret FN##_int16_t(__VA_ARGS__); break;                          \
    case 'i': ret FN##_int32_t(__VA_ARGS__); break;                          \
    case 'q': ret FN##_int64_t(__VA_ARGS__); break;                          \
    case '?':                                                                \
    case 'B': ret FN##_uint8_t(__VA_ARGS__); break;                          \
    case 'H': ret FN##_uint16_t(__VA_ARGS__); break;                         \
    case 'I': ret FN##_uint32_t(__VA_ARGS__); break;                         \
    case 'Q': ret FN##_uint64_t(__VA_ARGS__); break;                         \
    case 'f': ret FN##_float(__VA_ARGS__); break;                            \
    default: ret FN##_double(__VA_ARGS__); break;                            \
    }

/* -- sum -- */

double
mg_kern_sum_f8(const double *p, Py_ssize_t n)
{
    /* Eight independent accumulators keep the adds pipelined, so the loop
     * runs at memory speed; combining them pairwise at the end also keeps
     * rounding error below that of one running sum. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
        s4 += p[i + 4];
        s5 += p[i + 5];
        s6 += p[i + 6];
        s7 += p[i + 7];
    }
    for (; i < n; i++) {
        s0 += p[i];
    }
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

#define SUM(T, ISF, ISS)                                                     \
    static mg_kern_status sum_##T(const mg_view *v, mg_scalar *out)          \
    {                                                                        \
        if (ISF) {                                                           \
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                           \
            Py_ssize_t i = 0;                                                \
            for (; i + 4 <= v->n; i += 4) {                                  \
                s0 += (double)AT(T, v, i);                                   \
                s1 += (double)AT(T, v, i + 1);                               \
                s2 += (double)AT(T, v, i + 2);                               \
                s3 += (double)AT(T, v, i + 3);                               \
            }                                                                \
            for (; i < v->n; i++) {                                          \
                s0 += (double)AT(T, v, i);                                   \
            }                                                                \
            out->f = (s0 + s1) + (s2 + s3);                                  \
        }                                                                    \
        else if (ISS) {                                                      \
            int64_t acc = 0;                                                 \
            for (Py_ssize_t i = 0; i < v->n; i++) {                          \
                if (__builtin_add_overflow(acc, (int64_t)AT(T, v, i), &acc)) \
                    return MG_KERN_OVERFLOW;                                 \
            }                                                                \
            out->i = acc;                                                    \
        }                                                                    \
        else {                                                               \
            uint64_t acc = 0;                                                \
            for (Py_ssize_t i = 0; i < v->n; i++) {                          \
                if (__builtin_add_overflow(acc, (uint64_t)AT(T, v, i),       \
                                           &acc))                            \
                    return MG_KERN_OVERFLOW;                                 \
            }                                                                \
            out->u = acc;                                                    \
        }                                                                    \
        return MG_KERN_OK;                                                   \
    }
MG_TYPES(SUM)
#undef SUM

mg_kern_status
mg_kern_sum(const mg_view *v, mg_scalar *out)
{
    if (v->dtype->code == 'd' && v->stride == 8) {
        out->f = mg_kern_sum_f8((const double *)v->base, v->n);
        return MG_KERN_OK;
    }
    MG_DISPATCH(v->dtype->code, return, sum, v, out)
}

/* -- argmin / argmax / count_nonzero / moments -- */

#define ARGEXT(T, ISF, ISS)                                                  \
    static Py_ssize_t argext_##T(const mg_view *v, int want_max)             \
    {                                                                        \
        Py_ssize_t best = 0;                                                 \
        T bv = AT(T, v, 0);                                                  \
        if (ISF && isnan((double)bv)) {                                      \
            return 0;                                                        \
        }                                                                    \
        for (Py_ssize_t i = 1; i < v->n; i++) {                              \
            T x = AT(T, v, i);                                               \
            if (ISF && isnan((double)x)) {                                   \
                return i;                                                    \
            }                                                                \
            if (want_max ? x > bv : x < bv) {                                \
                bv = x;                                                      \
                best = i;                                                    \
            }                                                                \
        }                                                                    \
        return best;                                                         \
    }
MG_TYPES(ARGEXT)
#undef ARGEXT

Py_ssize_t
mg_kern_argext(const mg_view *v, int want_max)
{
    MG_DISPATCH(v->dtype->code, return, argext, v, want_max)
}

#define NONZERO(T, ISF, ISS)                                                 \
    static Py_ssize_t nonzero_##T(const mg_view *v)                          \
    {                                                                        \
        Py_ssize_t count = 0;                                                \
        for (Py_ssize_t i = 0; i < v->n; i++) {                              \
            count += AT(T, v, i) != 0;                                       \
        }                                                                    \
        return count;                                                        \
    }
MG_TYPES(NONZERO)
#undef NONZERO

Py_ssize_t
mg_kern_count_nonzero(const mg_view *v)
{
    MG_DISPATCH(v->dtype->code, return, nonzero, v)
}

/* Two passes: the mean, then the squared deviations with the classic
 * correction term (sum of deviations)^2 / n, which cancels most of the
 * rounding error of the mean (Chan, Golub & LeVeque 1983). */
#define MOMENTS(T, ISF, ISS)                                                 \
    static void moments_##T(const mg_view *v, double *mean, double *m2)      \
    {                                                                        \
        double s = 0, d1 = 0, d2 = 0;                                        \
        for (Py_ssize_t i = 0; i < v->n; i++) {                              \
            s += (double)AT(T, v, i);                                        \
        }                                                                    \
        double mu = s / (double)v->n;                                        \
        for (Py_ssize_t i = 0; i < v->n; i++) {                              \
            double d = (double)AT(T, v, i) - mu;                             \
            d1 += d;                                                         \
            d2 += d * d;                                                     \
        }                                                                    \
        *mean = mu + d1 / (double)v->n;                                      \
        *m2 = d2 - d1 * d1 / (double)v->n;                                   \
        if (*m2 < 0) {                                                       \
            *m2 = 0;                                                         \
        }                                                                    \
    }
MG_TYPES(MOMENTS)
#undef MOMENTS

void
mg_kern_moments(const mg_view *v, double *mean, double *m2)
{
    MG_DISPATCH(v->dtype->code, , moments, v, mean, m2)
}

/* stats in two passes: pass 1 takes the sum (four partial sums) and the
 * first min and max; pass 2 the squared deviations, as mg_kern_moments. A
 * NaN makes the sum NaN, and only then do we look for the first NaN. */
#define STATS(T, ISF, ISS)                                                   \
    static void stats_##T(const mg_view *v, double *mean, double *m2,        \
                          Py_ssize_t *imin, Py_ssize_t *imax)                \
    {                                                                        \
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                               \
        T lo = AT(T, v, 0), hi = lo;                                         \
        Py_ssize_t ilo = 0, ihi = 0, i = 0;                                  \
        for (; i + 4 <= v->n; i += 4) {                                      \
            T x0 = AT(T, v, i), x1 = AT(T, v, i + 1);                        \
            T x2 = AT(T, v, i + 2), x3 = AT(T, v, i + 3);                    \
            s0 += (double)x0;                                                \
            s1 += (double)x1;                                                \
            s2 += (double)x2;                                                \
            s3 += (double)x3;                                                \
            if (x0 < lo) { lo = x0; ilo = i; }                               \
            if (x0 > hi) { hi = x0; ihi = i; }                               \
            if (x1 < lo) { lo = x1; ilo = i + 1; }                           \
            if (x1 > hi) { hi = x1; ihi = i + 1; }                           \
            if (x2 < lo) { lo = x2; ilo = i + 2; }                           \
            if (x2 > hi) { hi = x2; ihi = i + 2; }                           \
            if (x3 < lo) { lo = x3; ilo = i + 3; }                           \
            if (x3 > hi) { hi = x3; ihi = i + 3; }                           \
        }                                                                    \
        for (; i < v->n; i++) {                                              \
            T x = AT(T, v, i);                                               \
            s0 += (double)x;                                                 \
            if (x < lo) { lo = x; ilo = i; }                                 \
            if (x > hi) { hi = x; ihi = i; }                                 \
        }                                                                    \
        double mu = ((s0 + s1) + (s2 + s3)) / (double)v->n;                  \
        if (ISF && isnan(mu)) {                                              \
            ilo = ihi = argext_##T(v, 0); /* a NaN, or inf - inf */          \
        }                                                                    \
        double d1 = 0, e0 = 0, e1 = 0;                                       \
        i = 0;                                                               \
        for (; i + 2 <= v->n; i += 2) {                                      \
            double a0 = (double)AT(T, v, i) - mu;                            \
            double a1 = (double)AT(T, v, i + 1) - mu;                        \
            d1 += a0 + a1;                                                   \
            e0 += a0 * a0;                                                   \
            e1 += a1 * a1;                                                   \
        }                                                                    \
        for (; i < v->n; i++) {                                              \
            double a0 = (double)AT(T, v, i) - mu;                            \
            d1 += a0;                                                        \
            e0 += a0 * a0;                                                   \
        }                                                                    \
        *mean = mu + d1 / (double)v->n;                                      \
        *m2 = (e0 + e1) - d1 * d1 / (double)v->n;                            \
        if (*m2 < 0) {                                                       \
            *m2 = 0;                                                         \
        }                                                                    \
        *imin = ilo;                                                         \
        *imax = ISF && isnan(mu) ? argext_##T(v, 1) : ihi;                   \
    }
MG_TYPES(STATS)
#undef STATS

void
mg_kern_stats(const mg_view *v, double *mean, double *m2, Py_ssize_t *imin,
              Py_ssize_t *imax)
{
    MG_DISPATCH(v->dtype->code, , stats, v, mean, m2, imin, imax)
}

/* -- copy and fill -- */

static void
view_range(const mg_view *v, char **lo, char **hi)
{
    Py_ssize_t span = v->n > 0 ? (v->n - 1) * v->stride : 0;
    *lo = span < 0 ? v->base + span : v->base;
    *hi = (span < 0 ? v->base : v->base + span)
          + (v->n > 0 ? (Py_ssize_t)v->dtype->itemsize : 0);
}

static int
views_overlap(const mg_view *a, const mg_view *b)
{
    char *alo, *ahi, *blo, *bhi;
    view_range(a, &alo, &ahi);
    view_range(b, &blo, &bhi);
    return a->n > 0 && b->n > 0 && alo < bhi && blo < ahi;
}

static void
copy_items(const mg_view *dst, const mg_view *src)
{
    size_t isz = dst->dtype->itemsize;
    if (dst->stride == (Py_ssize_t)isz && src->stride == (Py_ssize_t)isz) {
        memmove(dst->base, src->base, (size_t)dst->n * isz);
        return;
    }
    for (Py_ssize_t i = 0; i < dst->n; i++) {
        memcpy(dst->base + i * dst->stride, src->base + i * src->stride, isz);
    }
}

/* A contiguous malloc'd copy of v (free with free()), or NULL. */
static char *
gather(const mg_view *v, mg_view *out)
{
    size_t isz = v->dtype->itemsize;
    char *tmp = malloc(v->n > 0 ? (size_t)v->n * isz : 1);
    if (tmp == NULL) {
        return NULL;
    }
    out->base = tmp;
    out->n = v->n;
    out->stride = (Py_ssize_t)isz;
    out->dtype = v->dtype;
    copy_items(out, v);
    return tmp;
}

mg_kern_status
mg_kern_copy(const mg_view *dst, const mg_view *src)
{
    int contiguous = dst->stride == src->stride
                     && dst->stride == (Py_ssize_t)dst->dtype->itemsize;
    if (!contiguous && views_overlap(dst, src)) {
        mg_view tv;
        char *tmp = gather(src, &tv);
        if (tmp == NULL) {
            return MG_KERN_NOMEM;
        }
        copy_items(dst, &tv);
        free(tmp);
        return MG_KERN_OK;
    }
    copy_items(dst, src);
    return MG_KERN_OK;
}

#define FILL(T, ISF, ISS)                                                    \
    static void fill_##T(const mg_view *v, const void *item)                 \
    {                                                                        \
        T x;                                                                 \
        memcpy(&x, item, sizeof(T));                                         \
        for (Py_ssize_t i = 0; i < v->n; i++) {                              \
            AT(T, v, i) = x;                                                 \
        }                                                                    \
    }
MG_TYPES(FILL)
#undef FILL

void
mg_kern_fill(const mg_view *v, const void *item)
{
    MG_DISPATCH(v->dtype->code, , fill, v, item)
}

/* -- sort: introsort (median-of-three quicksort, heapsort past a depth
 * limit, insertion sort for short runs), typed, on contiguous memory.
 * Floats: NaNs are moved to the end first; the rest sort with plain <. -- */

#define MG_SORT_SMALL 16

#define SORT(T, ISF, ISS)                                                    \
    static void isort_##T(T *a, Py_ssize_t n)                                \
    {                                                                        \
        for (Py_ssize_t i = 1; i < n; i++) {                                 \
            T x = a[i];                                                      \
            Py_ssize_t j = i;                                                \
            for (; j > 0 && x < a[j - 1]; j--) {                             \
                a[j] = a[j - 1];                                             \
            }                                                                \
            a[j] = x;                                                        \
        }                                                                    \
    }                                                                        \
    static void sift_##T(T *a, Py_ssize_t root, Py_ssize_t n)                \
    {                                                                        \
        for (;;) {                                                           \
            Py_ssize_t c = 2 * root + 1;                                     \
            if (c >= n) {                                                    \
                return;                                                      \
            }                                                                \
            if (c + 1 < n && a[c] < a[c + 1]) {                              \
                c++;                                                         \
            }                                                                \
            if (!(a[root] < a[c])) {                                         \
                return;                                                      \
            }                                                                \
            T t = a[root];                                                   \
            a[root] = a[c];                                                  \
            a[c] = t;                                                        \
            root = c;                                                        \
        }                                                                    \
    }                                                                        \
    static void heapsort_##T(T *a, Py_ssize_t n)                             \
    {                                                                        \
        for (Py_ssize_t i = n / 2 - 1; i >= 0; i--) {                        \
            sift_##T(a, i, n);                                               \
        }                                                                    \
        for (Py_ssize_t end = n - 1; end > 0; end--) {                       \
            T t = a[0];                                                      \
            a[0] = a[end];                                                   \
            a[end] = t;                                                      \
            sift_##T(a, 0, end);                                             \
        }                                                                    \
    }                                                                        \
    /* Puts the median of a[0], a[n/2], a[n-1] in a[0]. */                   \
    static void median_first_##T(T *a, Py_ssize_t n)                         \
    {                                                                        \
        T *x = &a[0], *y = &a[n / 2], *z = &a[n - 1], t;                     \
        if (*y < *x) { t = *x; *x = *y; *y = t; }                            \
        if (*z < *y) { t = *y; *y = *z; *z = t; }                            \
        if (*y < *x) { t = *x; *x = *y; *y = t; }                            \
        t = *x;                                                              \
        *x = *y;                                                             \
        *y = t;                                                              \
    }                                                                        \
    /* Hoare partition around p = a[0]; returns j with a[0..j] <= p <=       \
     * a[j+1..n-1] and 0 <= j < n - 1. */                                    \
    static Py_ssize_t partition_##T(T *a, Py_ssize_t n)                      \
    {                                                                        \
        T p = a[0];                                                          \
        Py_ssize_t i = -1, j = n;                                            \
        for (;;) {                                                           \
            do {                                                             \
                i++;                                                         \
            } while (a[i] < p);                                              \
            do {                                                             \
                j--;                                                         \
            } while (p < a[j]);                                              \
            if (i >= j) {                                                    \
                return j;                                                    \
            }                                                                \
            T t = a[i];                                                      \
            a[i] = a[j];                                                     \
            a[j] = t;                                                        \
        }                                                                    \
    }                                                                        \
    static void introsort_##T(T *a, Py_ssize_t n, int depth)                 \
    {                                                                        \
        while (n > MG_SORT_SMALL) {                                          \
            if (depth-- == 0) {                                              \
                heapsort_##T(a, n);                                          \
                return;                                                      \
            }                                                                \
            median_first_##T(a, n);                                          \
            Py_ssize_t j = partition_##T(a, n) + 1;                          \
            if (j < n - j) { /* recurse into the smaller side */             \
                introsort_##T(a, j, depth);                                  \
                a += j;                                                      \
                n -= j;                                                      \
            }                                                                \
            else {                                                           \
                introsort_##T(a + j, n - j, depth);                          \
                n = j;                                                       \
            }                                                                \
        }                                                                    \
        isort_##T(a, n);                                                     \
    }                                                                        \
    static void sort_##T(char *base, Py_ssize_t n)                           \
    {                                                                        \
        T *a = (T *)base;                                                    \
        if (ISF) {                                                           \
            Py_ssize_t k = 0;                                                \
            for (Py_ssize_t i = 0; i < n; i++) {                             \
                if (!isnan((double)a[i])) {                                  \
                    T t = a[k];                                              \
                    a[k++] = a[i];                                           \
                    a[i] = t;                                                \
                }                                                            \
            }                                                                \
            n = k; /* NaNs now fill a[k..] */                                \
        }                                                                    \
        int depth = 0;                                                       \
        for (Py_ssize_t m = n; m > 1; m >>= 1) {                             \
            depth += 2;                                                      \
        }                                                                    \
        introsort_##T(a, n, depth);                                          \
    }
MG_TYPES(SORT)
#undef SORT

static void
sort_contiguous(const mg_dtype *dt, char *base, Py_ssize_t n)
{
    MG_DISPATCH(dt->code, , sort, base, n)
}

mg_kern_status
mg_kern_sort(const mg_view *v)
{
    if (v->stride == (Py_ssize_t)v->dtype->itemsize) {
        sort_contiguous(v->dtype, v->base, v->n);
        return MG_KERN_OK;
    }
    mg_view tv;
    char *tmp = gather(v, &tv);
    if (tmp == NULL) {
        return MG_KERN_NOMEM;
    }
    sort_contiguous(v->dtype, tmp, v->n);
    copy_items(v, &tv);
    free(tmp);
    return MG_KERN_OK;
}

/* -- in-place arithmetic -- */

/* dst[i] = E(dst[i], y or src[i]), with contiguous fast paths. */
#define ELEM_LOOP(T, d, s, y, E)                                             \
    do {                                                                     \
        Py_ssize_t n_ = (d)->n;                                              \
        int dc_ = (d)->stride == (Py_ssize_t)sizeof(T);                      \
        if ((s) == NULL && dc_) {                                            \
            T *p_ = (T *)(d)->base;                                          \
            for (Py_ssize_t i = 0; i < n_; i++) {                            \
                p_[i] = E(p_[i], (y));                                       \
            }                                                                \
        }                                                                    \
        else if ((s) == NULL) {                                              \
            for (Py_ssize_t i = 0; i < n_; i++) {                            \
                AT(T, d, i) = E(AT(T, d, i), (y));                           \
            }                                                                \
        }                                                                    \
        else if (dc_ && (s)->stride == (Py_ssize_t)sizeof(T)) {              \
            T *p_ = (T *)(d)->base;                                          \
            const T *q_ = (const T *)(s)->base;                              \
            for (Py_ssize_t i = 0; i < n_; i++) {                            \
                p_[i] = E(p_[i], q_[i]);                                     \
            }                                                                \
        }                                                                    \
        else {                                                               \
            for (Py_ssize_t i = 0; i < n_; i++) {                            \
                AT(T, d, i) = E(AT(T, d, i), AT(T, s, i));                   \
            }                                                                \
        }                                                                    \
    } while (0)

#define FADD(x, y) ((x) + (y))
#define FSUB(x, y) ((x) - (y))
#define FMUL(x, y) ((x) * (y))
#define FDIV(x, y) ((x) / (y))

/* Floor division (Python's //) without undefined behaviour: INT64_MIN / -1
 * wraps like the other integer operations. y != 0. */
static inline int64_t
floordiv_s64(int64_t x, int64_t y)
{
    if (y == -1) {
        return (int64_t)(0 - (uint64_t)x);
    }
    int64_t q = x / y;
    if (x % y != 0 && ((x < 0) != (y < 0))) {
        q--;
    }
    return q;
}

/* Integer add/sub/mul wrap modulo 2**bits: computed in uint64 (defined
 * behaviour) and truncated to T. */
#define INT_OPS(T, ISF, ISS)                                                 \
    static inline T iadd_##T(T x, T y)                                       \
    {                                                                        \
        return (T)((uint64_t)x + (uint64_t)y);                               \
    }                                                                        \
    static inline T isub_##T(T x, T y)                                       \
    {                                                                        \
        return (T)((uint64_t)x - (uint64_t)y);                               \
    }                                                                        \
    static inline T imul_##T(T x, T y)                                       \
    {                                                                        \
        return (T)((uint64_t)x * (uint64_t)y);                               \
    }                                                                        \
    static inline T idiv_##T(T x, T y)                                       \
    {                                                                        \
        return ISS ? (T)floordiv_s64((int64_t)x, (int64_t)y)                 \
                   : (T)((uint64_t)x / (uint64_t)y);                         \
    }                                                                        \
    static void binop_##T(const mg_view *d, mg_binop op, const mg_view *s,   \
                          mg_scalar sc)                                      \
    {                                                                        \
        T y = ISS ? (T)sc.i : (T)sc.u;                                       \
        switch (op) {                                                        \
        case MG_OP_ADD: ELEM_LOOP(T, d, s, y, iadd_##T); break;              \
        case MG_OP_SUB: ELEM_LOOP(T, d, s, y, isub_##T); break;              \
        case MG_OP_MUL: ELEM_LOOP(T, d, s, y, imul_##T); break;              \
        default: ELEM_LOOP(T, d, s, y, idiv_##T); break;                     \
        }                                                                    \
    }
INT_OPS(int8_t, 0, 1)
INT_OPS(int16_t, 0, 1)
INT_OPS(int32_t, 0, 1)
INT_OPS(int64_t, 0, 1)
INT_OPS(uint8_t, 0, 0)
INT_OPS(uint16_t, 0, 0)
INT_OPS(uint32_t, 0, 0)
INT_OPS(uint64_t, 0, 0)
#undef INT_OPS

/* IEEE 754 throughout: x/0 is +-inf and 0/0 is nan. */
#define FLOAT_OPS(T)                                                         \
    static void binop_##T(const mg_view *d, mg_binop op, const mg_view *s,   \
                          mg_scalar sc)                                      \
    {                                                                        \
        T y = (T)sc.f;                                                       \
        switch (op) {                                                        \
        case MG_OP_ADD: ELEM_LOOP(T, d, s, y, FADD); break;                  \
        case MG_OP_SUB: ELEM_LOOP(T, d, s, y, FSUB); break;                  \
        case MG_OP_MUL: ELEM_LOOP(T, d, s, y, FMUL); break;                  \
        default: ELEM_LOOP(T, d, s, y, FDIV); break;                         \
        }                                                                    \
    }
FLOAT_OPS(float)
FLOAT_OPS(double)
#undef FLOAT_OPS

static int
is_zero_scalar(const mg_dtype *dt, mg_scalar sc)
{
    return dt->kind == MG_KIND_UINT ? sc.u == 0 : sc.i == 0;
}

mg_kern_status
mg_kern_binop(const mg_view *dst, mg_binop op, const mg_view *src,
              mg_scalar s)
{
    const mg_dtype *dt = dst->dtype;
    if (op == MG_OP_DIV && dt->kind != MG_KIND_FLOAT
        && (src == NULL ? is_zero_scalar(dt, s)
                        : mg_kern_count_nonzero(src) != src->n)) {
        return MG_KERN_ZERODIV;
    }
    char *tmp = NULL;
    mg_view tv;
    if (src != NULL && views_overlap(dst, src)
        && !(src->base == dst->base && src->stride == dst->stride)) {
        tmp = gather(src, &tv);
        if (tmp == NULL) {
            return MG_KERN_NOMEM;
        }
        src = &tv;
    }
    MG_DISPATCH(dt->code, , binop, dst, op, src, s)
    free(tmp);
    return MG_KERN_OK;
}

/* ---- Python glue ---- */

static PyObject *
kern_raise(mg_kern_status status, const mg_dtype *dt, const char *what)
{
    switch (status) {
    case MG_KERN_OVERFLOW:
        return PyErr_Format(PyExc_OverflowError,
                            "%s of this '%s' SharedArray does not fit in 64 "
                            "bits; copy it to a float dtype first",
                            what, dt->name);
    case MG_KERN_ZERODIV:
        return PyErr_Format(PyExc_ZeroDivisionError,
                            "integer division by zero in %s of a '%s' "
                            "SharedArray (nothing was changed)", what,
                            dt->name);
    case MG_KERN_NOMEM:
        return PyErr_NoMemory();
    default:
        return PyErr_Format(PyExc_SystemError,
                            "multigil: unknown kernel status %d in %s; this "
                            "is a bug", (int)status, what);
    }
}

static int
require_items(MgSharedArrayObject *a, const char *what)
{
    if (a->length == 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s() of an empty SharedArray is undefined", what);
        return -1;
    }
    return 0;
}

static PyObject *
sum_impl(MgSharedArrayObject *a)
{
    mg_view v = mg_view_of(a);
    mg_scalar out;
    mg_kern_status status;
    MG_NOGIL(v.n, status = mg_kern_sum(&v, &out));
    if (status != MG_KERN_OK) {
        return kern_raise(status, a->dtype, "sum()");
    }
    switch (a->dtype->kind) {
    case MG_KIND_FLOAT: return PyFloat_FromDouble(out.f);
    case MG_KIND_INT: return PyLong_FromLongLong(out.i);
    default: return PyLong_FromUnsignedLongLong(out.u);
    }
}

static PyObject *
argext_impl(MgSharedArrayObject *a, int want_max, int want_value)
{
    const char *what = want_value ? (want_max ? "max" : "min")
                                  : (want_max ? "argmax" : "argmin");
    if (require_items(a, what) < 0) {
        return NULL;
    }
    mg_view v = mg_view_of(a);
    Py_ssize_t i;
    MG_NOGIL(v.n, i = mg_kern_argext(&v, want_max));
    if (!want_value) {
        return PyLong_FromSsize_t(i);
    }
    return mg_shared_unpack(a->dtype, a->base + i * a->stride);
}

/* Integers: the exact sum, then one correctly rounded division; None with
 * no exception when the sum does not fit 64 bits. */
static PyObject *
int_mean(MgSharedArrayObject *a)
{
    PyObject *total = sum_impl(a), *n = NULL, *res = NULL;
    if (total == NULL) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            return Py_NewRef(Py_None);
        }
        return NULL;
    }
    n = PyLong_FromSsize_t(a->length);
    if (n != NULL) {
        res = PyNumber_TrueDivide(total, n);
    }
    Py_DECREF(total);
    Py_XDECREF(n);
    return res;
}

static PyObject *
mean_impl(MgSharedArrayObject *a)
{
    if (require_items(a, "mean") < 0) {
        return NULL;
    }
    if (a->dtype->kind != MG_KIND_FLOAT) {
        PyObject *res = int_mean(a);
        if (res != Py_None) {
            return res;
        }
        Py_DECREF(res); /* too large for int64: fall back to doubles */
    }
    mg_view v = mg_view_of(a);
    double mean, m2;
    if (a->dtype->kind == MG_KIND_FLOAT) {
        /* sum() / len(): one pass at memory speed. */
        mg_scalar out;
        MG_NOGIL(v.n, (void)mg_kern_sum(&v, &out));
        mean = out.f / (double)v.n;
    }
    else {
        MG_NOGIL(v.n, mg_kern_moments(&v, &mean, &m2));
    }
    return PyFloat_FromDouble(mean);
}

static int
var_value(MgSharedArrayObject *a, Py_ssize_t ddof, double *out)
{
    if (ddof < 0) {
        PyErr_Format(PyExc_ValueError, "ddof must be >= 0, not %zd", ddof);
        return -1;
    }
    if (a->length - ddof <= 0) {
        PyErr_Format(PyExc_ValueError,
                     "var()/std() with ddof=%zd needs more than %zd items, "
                     "the SharedArray has %zd", ddof, ddof, a->length);
        return -1;
    }
    mg_view v = mg_view_of(a);
    double mean, m2;
    MG_NOGIL(v.n, mg_kern_moments(&v, &mean, &m2));
    *out = m2 / (double)(a->length - ddof);
    return 0;
}

static PyObject *
count_nonzero_impl(MgSharedArrayObject *a)
{
    mg_view v = mg_view_of(a);
    Py_ssize_t n;
    MG_NOGIL(v.n, n = mg_kern_count_nonzero(&v));
    return PyLong_FromSsize_t(n);
}

static PyObject *
make_stats(mg_state *st, Py_ssize_t count, double mean, double m2,
           PyObject *min, PyObject *max)
{
    PyObject *res = PyStructSequence_New(st->StatsType);
    PyObject *c = PyLong_FromSsize_t(count);
    PyObject *mu = PyFloat_FromDouble(mean);
    PyObject *sq = PyFloat_FromDouble(m2);
    if (res == NULL || c == NULL || mu == NULL || sq == NULL) {
        Py_XDECREF(res);
        Py_XDECREF(c);
        Py_XDECREF(mu);
        Py_XDECREF(sq);
        return NULL;
    }
    PyStructSequence_SetItem(res, 0, c);
    PyStructSequence_SetItem(res, 1, mu);
    PyStructSequence_SetItem(res, 2, sq);
    PyStructSequence_SetItem(res, 3, Py_NewRef(min));
    PyStructSequence_SetItem(res, 4, Py_NewRef(max));
    return res;
}

static PyObject *
stats_impl(mg_state *st, MgSharedArrayObject *a)
{
    if (a->length == 0) {
        return make_stats(st, 0, NAN, 0.0, Py_None, Py_None);
    }
    mg_view v = mg_view_of(a);
    double mean, m2;
    Py_ssize_t imin, imax;
    MG_NOGIL(v.n, mg_kern_stats(&v, &mean, &m2, &imin, &imax));
    PyObject *lo = mg_shared_unpack(a->dtype, a->base + imin * a->stride);
    PyObject *hi = lo ? mg_shared_unpack(a->dtype,
                                         a->base + imax * a->stride)
                      : NULL;
    PyObject *res = hi ? make_stats(st, a->length, mean, m2, lo, hi) : NULL;
    Py_XDECREF(lo);
    Py_XDECREF(hi);
    return res;
}

/* -- combine_stats: Chan, Golub & LeVeque's pairwise update -- */

static int
is_nan_obj(PyObject *x)
{
    return PyFloat_Check(x) && isnan(PyFloat_AS_DOUBLE(x));
}

/* The smaller (want_max 0) or larger of cur and x; None is "no value" and
 * NaN wins, as in min()/max() of the arrays. New reference or NULL. */
static PyObject *
pick_extreme(PyObject *cur, PyObject *x, int want_max)
{
    if (cur == Py_None || is_nan_obj(x)) {
        return Py_NewRef(x);
    }
    if (x == Py_None || is_nan_obj(cur)) {
        return Py_NewRef(cur);
    }
    int better = PyObject_RichCompareBool(x, cur, want_max ? Py_GT : Py_LT);
    if (better < 0) {
        return NULL;
    }
    return Py_NewRef(better ? x : cur);
}

typedef struct stats_acc {
    Py_ssize_t n;
    double mean, m2;
    PyObject *min, *max; /* owned */
} stats_acc;

static int
stats_merge(stats_acc *acc, PyObject *part)
{
    Py_ssize_t nb;
    double mb, m2b;
    PyObject *lo, *hi;
    PyObject *t = PySequence_Tuple(part);
    if (t == NULL) {
        return -1;
    }
    if (!PyArg_ParseTuple(t, "nddOO;combine_stats() parts must be "
                          "(count, mean, m2, min, max) as stats() returns",
                          &nb, &mb, &m2b, &lo, &hi)) {
        Py_DECREF(t);
        return -1;
    }
    int rc = -1;
    if (nb < 0) {
        PyErr_Format(PyExc_ValueError,
                     "combine_stats(): count must be >= 0, not %zd", nb);
        goto done;
    }
    if (nb > 0) {
        double n = (double)acc->n + (double)nb;
        double delta = mb - acc->mean;
        if (acc->n == 0) {
            acc->mean = mb;
            acc->m2 = m2b;
        }
        else {
            acc->mean += delta * ((double)nb / n);
            acc->m2 += m2b + delta * delta * ((double)acc->n * (double)nb / n);
        }
        acc->n += nb;
        PyObject *nlo = pick_extreme(acc->min, lo, 0);
        PyObject *nhi = nlo ? pick_extreme(acc->max, hi, 1) : NULL;
        if (nhi == NULL) {
            Py_XDECREF(nlo);
            goto done;
        }
        Py_SETREF(acc->min, nlo);
        Py_SETREF(acc->max, nhi);
    }
    rc = 0;
done:
    Py_DECREF(t);
    return rc;
}

static PyObject *
combine_stats_impl(mg_state *st, PyObject *parts)
{
    stats_acc acc = {0, NAN, 0.0, Py_NewRef(Py_None), Py_NewRef(Py_None)};
    PyObject *res = NULL, *item = NULL;
    PyObject *it = PyObject_GetIter(parts);
    if (it == NULL) {
        goto done;
    }
    while ((item = PyIter_Next(it)) != NULL) {
        int rc = stats_merge(&acc, item);
        Py_DECREF(item);
        if (rc < 0) {
            goto done;
        }
    }
    if (!PyErr_Occurred()) {
        res = make_stats(st, acc.n, acc.n ? acc.mean : NAN, acc.m2, acc.min,
                         acc.max);
    }
done:
    Py_XDECREF(it);
    Py_DECREF(acc.min);
    Py_DECREF(acc.max);
    return res;
}

/* -- fill, sort, in-place arithmetic -- */

static PyObject *
fill_impl(MgSharedArrayObject *a, PyObject *value)
{
    uint64_t item[1];
    if (mg_shared_check_writable(a) < 0
        || mg_shared_pack(a->dtype, value, item) < 0) {
        return NULL;
    }
    mg_view v = mg_view_of(a);
    MG_NOGIL(v.n, mg_kern_fill(&v, item));
    Py_RETURN_NONE;
}

static PyObject *
sort_impl(MgSharedArrayObject *a)
{
    if (mg_shared_check_writable(a) < 0) {
        return NULL;
    }
    mg_view v = mg_view_of(a);
    mg_kern_status status;
    MG_NOGIL(v.n, status = mg_kern_sort(&v));
    if (status != MG_KERN_OK) {
        return kern_raise(status, a->dtype, "sort()");
    }
    Py_RETURN_NONE;
}

static const char *
op_name(mg_binop op)
{
    switch (op) {
    case MG_OP_ADD: return "add";
    case MG_OP_SUB: return "sub";
    case MG_OP_MUL: return "mul";
    default: return "div";
    }
}

/* The scalar operand of an in-place operation on a, converted by the item
 * rules of a's dtype (so exactly what a[i] = other accepts: an f4 operand
 * beyond float32's finite range is an OverflowError, never an undefined
 * double -> float cast), then widened. */
static int
scalar_operand(MgSharedArrayObject *a, PyObject *other, mg_scalar *sc)
{
    if (a->dtype->code == 'f') {
        float f;
        if (mg_shared_pack(a->dtype, other, &f) < 0) {
            return -1;
        }
        sc->f = f;
        return 0;
    }
    if (a->dtype->kind == MG_KIND_FLOAT) {
        return mg_shared_pack(a->dtype, other, &sc->f);
    }
    uint64_t item = 0;
    if (mg_shared_pack(a->dtype, other, &item) < 0) {
        return -1;
    }
    mg_view v = {(char *)&item, 1, (Py_ssize_t)a->dtype->itemsize, a->dtype};
    return mg_kern_sum(&v, sc) == MG_KERN_OK ? 0 : -1; /* widen one item */
}

static PyObject *
binop_impl(mg_state *st, MgSharedArrayObject *a, PyObject *other, mg_binop op)
{
    mg_view dst = mg_view_of(a), src;
    mg_scalar sc = {0};
    if (mg_shared_check_writable(a) < 0) {
        return NULL;
    }
    if (a->dtype->kind == MG_KIND_BOOL) {
        return PyErr_Format(PyExc_TypeError,
                            "%s() is not defined for a bool SharedArray",
                            op_name(op));
    }
    int is_array = PyObject_TypeCheck(other, st->SharedArrayType);
    if (is_array) {
        MgSharedArrayObject *b = (MgSharedArrayObject *)other;
        if (b->dtype != a->dtype) {
            return PyErr_Format(PyExc_TypeError,
                                "%s(): dtypes '%s' and '%s' differ; convert "
                                "one with SharedArray.from_iterable(x, "
                                "dtype)", op_name(op), a->dtype->name,
                                b->dtype->name);
        }
        if (b->length != a->length) {
            return PyErr_Format(PyExc_ValueError,
                                "%s(): lengths %zd and %zd differ",
                                op_name(op), a->length, b->length);
        }
        src = mg_view_of(b);
    }
    else if (scalar_operand(a, other, &sc) < 0) {
        return NULL;
    }
    mg_kern_status status;
    MG_NOGIL(dst.n,
             status = mg_kern_binop(&dst, op, is_array ? &src : NULL, sc));
    if (status != MG_KERN_OK) {
        return kern_raise(status, a->dtype, op_name(op));
    }
    Py_RETURN_NONE;
}

PyObject *
mg_kernels_inplace(PyObject *self, PyObject *other, mg_binop op)
{
    mg_state *st = mg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    PyObject *r = binop_impl(st, (MgSharedArrayObject *)self, other, op);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    return Py_NewRef(self);
}

/* -- SharedArray methods -- */

#define SELF ((MgSharedArrayObject *)self)

PyObject *
mg_kernels_meth_sum(PyObject *self, PyObject *unused)
{
    (void)unused;
    return sum_impl(SELF);
}

PyObject *
mg_kernels_meth_min(PyObject *self, PyObject *unused)
{
    (void)unused;
    return argext_impl(SELF, 0, 1);
}

PyObject *
mg_kernels_meth_max(PyObject *self, PyObject *unused)
{
    (void)unused;
    return argext_impl(SELF, 1, 1);
}

PyObject *
mg_kernels_meth_argmin(PyObject *self, PyObject *unused)
{
    (void)unused;
    return argext_impl(SELF, 0, 0);
}

PyObject *
mg_kernels_meth_argmax(PyObject *self, PyObject *unused)
{
    (void)unused;
    return argext_impl(SELF, 1, 0);
}

PyObject *
mg_kernels_meth_mean(PyObject *self, PyObject *unused)
{
    (void)unused;
    return mean_impl(SELF);
}

static PyObject *
var_std(MgSharedArrayObject *a, Py_ssize_t ddof, int want_std)
{
    double var;
    if (var_value(a, ddof, &var) < 0) {
        return NULL;
    }
    return PyFloat_FromDouble(want_std ? sqrt(var) : var);
}

PyObject *
mg_kernels_meth_var(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"ddof", NULL};
    Py_ssize_t ddof = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|n:var", kwlist, &ddof)) {
        return NULL;
    }
    return var_std(SELF, ddof, 0);
}

PyObject *
mg_kernels_meth_std(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"ddof", NULL};
    Py_ssize_t ddof = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|n:std", kwlist, &ddof)) {
        return NULL;
    }
    return var_std(SELF, ddof, 1);
}

PyObject *
mg_kernels_meth_count_nonzero(PyObject *self, PyObject *unused)
{
    (void)unused;
    return count_nonzero_impl(SELF);
}

PyObject *
mg_kernels_meth_stats(PyObject *self, PyObject *unused)
{
    (void)unused;
    mg_state *st = mg_state_from_type(Py_TYPE(self));
    return st ? stats_impl(st, SELF) : NULL;
}

PyObject *
mg_kernels_meth_fill(PyObject *self, PyObject *value)
{
    return fill_impl(SELF, value);
}

PyObject *
mg_kernels_meth_sort(PyObject *self, PyObject *unused)
{
    (void)unused;
    return sort_impl(SELF);
}

#undef SELF

/* -- multigil._core functions (re-exported as multigil.kernels) -- */

/* The SharedArray argument of a module function, or NULL. */
static MgSharedArrayObject *
array_arg(PyObject *mod, PyObject *obj, const char *fname)
{
    char what[64];
    PyOS_snprintf(what, sizeof(what), "%s() argument", fname);
    return mg_shared_arg(mg_state_from_module(mod), obj, what);
}

#define UNARY_FN(NAME, EXPR)                                                 \
    static PyObject *core_##NAME(PyObject *mod, PyObject *arg)               \
    {                                                                        \
        MgSharedArrayObject *a = array_arg(mod, arg, #NAME);                 \
        return a ? (EXPR) : NULL;                                            \
    }
UNARY_FN(sum, sum_impl(a))
UNARY_FN(min, argext_impl(a, 0, 1))
UNARY_FN(max, argext_impl(a, 1, 1))
UNARY_FN(argmin, argext_impl(a, 0, 0))
UNARY_FN(argmax, argext_impl(a, 1, 0))
UNARY_FN(mean, mean_impl(a))
UNARY_FN(count_nonzero, count_nonzero_impl(a))
UNARY_FN(stats, stats_impl(mg_state_from_module(mod), a))
UNARY_FN(sort, sort_impl(a))
#undef UNARY_FN

static PyObject *
var_std_fn(PyObject *mod, PyObject *args, PyObject *kw, int want_std)
{
    static char *kwlist[] = {"a", "ddof", NULL};
    PyObject *arg;
    Py_ssize_t ddof = 0;
    const char *fmt = want_std ? "O|n:std" : "O|n:var";
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &arg, &ddof)) {
        return NULL;
    }
    MgSharedArrayObject *a = array_arg(mod, arg, want_std ? "std" : "var");
    return a ? var_std(a, ddof, want_std) : NULL;
}

static PyObject *
core_var(PyObject *mod, PyObject *args, PyObject *kw)
{
    return var_std_fn(mod, args, kw, 0);
}

static PyObject *
core_std(PyObject *mod, PyObject *args, PyObject *kw)
{
    return var_std_fn(mod, args, kw, 1);
}

static PyObject *
core_combine_stats(PyObject *mod, PyObject *parts)
{
    return combine_stats_impl(mg_state_from_module(mod), parts);
}

static PyObject *
core_fill(PyObject *mod, PyObject *args)
{
    PyObject *arg, *value;
    if (!PyArg_ParseTuple(args, "OO:fill", &arg, &value)) {
        return NULL;
    }
    MgSharedArrayObject *a = array_arg(mod, arg, "fill");
    return a ? fill_impl(a, value) : NULL;
}

static PyObject *
binop_fn(PyObject *mod, PyObject *args, mg_binop op)
{
    PyObject *arg, *other;
    if (!PyArg_ParseTuple(args, "OO", &arg, &other)) {
        return NULL;
    }
    MgSharedArrayObject *a = array_arg(mod, arg, op_name(op));
    return a ? binop_impl(mg_state_from_module(mod), a, other, op) : NULL;
}

static PyObject *
core_add(PyObject *mod, PyObject *args)
{
    return binop_fn(mod, args, MG_OP_ADD);
}

static PyObject *
core_sub(PyObject *mod, PyObject *args)
{
    return binop_fn(mod, args, MG_OP_SUB);
}

static PyObject *
core_mul(PyObject *mod, PyObject *args)
{
    return binop_fn(mod, args, MG_OP_MUL);
}

static PyObject *
core_div(PyObject *mod, PyObject *args)
{
    return binop_fn(mod, args, MG_OP_DIV);
}

/* -- benchmark baselines: plain C, no Python in the timed part -- */

static PyObject *
core_memcpy_bench(PyObject *mod, PyObject *args)
{
    PyObject *d, *s;
    if (!PyArg_ParseTuple(args, "OO:_memcpy_bench", &d, &s)) {
        return NULL;
    }
    MgSharedArrayObject *dst = array_arg(mod, d, "_memcpy_bench");
    MgSharedArrayObject *src = dst ? array_arg(mod, s, "_memcpy_bench")
                                   : NULL;
    if (src == NULL || mg_shared_check_writable(dst) < 0) {
        return NULL;
    }
    Py_ssize_t nb = dst->length * (Py_ssize_t)dst->dtype->itemsize;
    if (nb != src->length * (Py_ssize_t)src->dtype->itemsize
        || dst->stride != (Py_ssize_t)dst->dtype->itemsize
        || src->stride != (Py_ssize_t)src->dtype->itemsize) {
        return PyErr_Format(PyExc_ValueError,
                            "_memcpy_bench needs two contiguous arrays of "
                            "the same size in bytes");
    }
    Py_BEGIN_ALLOW_THREADS
    memmove(dst->base, src->base, (size_t)nb);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

typedef struct bench_part {
    mg_view v;
    int normalize; /* 0: sum into result; 1: (x - mean) / std in place */
    double mean, std, result;
} bench_part;

static void *
bench_thread(void *arg)
{
    bench_part *p = arg;
    if (p->normalize) {
        mg_scalar m = {.f = p->mean}, s = {.f = p->std};
        (void)mg_kern_binop(&p->v, MG_OP_SUB, NULL, m);
        (void)mg_kern_binop(&p->v, MG_OP_DIV, NULL, s);
    }
    else {
        p->result = mg_kern_sum_f8((const double *)p->v.base, p->v.n);
    }
    return NULL;
}

#define MG_BENCH_MAX_THREADS 64

/* Split a (contiguous f8) over nthreads pthreads running bench_thread. */
static PyObject *
threads_bench(PyObject *mod, PyObject *arg, int nthreads, int normalize,
              double mean, double std)
{
    bench_part parts[MG_BENCH_MAX_THREADS];
    pthread_t tids[MG_BENCH_MAX_THREADS];
    MgSharedArrayObject *a = array_arg(mod, arg, "_threads_bench");
    if (a == NULL) {
        return NULL;
    }
    if (a->dtype->code != 'd' || a->stride != 8 || nthreads < 1
        || nthreads > MG_BENCH_MAX_THREADS) {
        return PyErr_Format(PyExc_ValueError,
                            "thread benchmarks need a contiguous 'f8' array "
                            "and 1..%d threads", MG_BENCH_MAX_THREADS);
    }
    if (normalize && mg_shared_check_writable(a) < 0) {
        return NULL;
    }
    Py_ssize_t q = a->length / nthreads, r = a->length % nthreads, at = 0;
    for (int t = 0; t < nthreads; t++) {
        Py_ssize_t n = q + (t < r ? 1 : 0);
        parts[t] = (bench_part){{a->base + at * 8, n, 8, a->dtype},
                                normalize, mean, std, 0.0};
        at += n;
    }
    int started = 0, err = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; started < nthreads; started++) {
        if (pthread_create(&tids[started], NULL, bench_thread,
                           &parts[started]) != 0) {
            err = 1;
            break;
        }
    }
    for (int t = 0; t < started; t++) {
        pthread_join(tids[t], NULL);
    }
    Py_END_ALLOW_THREADS
    if (err) {
        return mg_raise(NULL, MG_ESYS, "pthread_create failed");
    }
    double total = 0;
    for (int t = 0; t < nthreads; t++) {
        total += parts[t].result;
    }
    return PyFloat_FromDouble(total);
}

static PyObject *
core_threads_sum_bench(PyObject *mod, PyObject *args)
{
    PyObject *arr;
    int nthreads;
    if (!PyArg_ParseTuple(args, "Oi:_threads_sum_bench", &arr, &nthreads)) {
        return NULL;
    }
    return threads_bench(mod, arr, nthreads, 0, 0.0, 1.0);
}

static PyObject *
core_threads_normalize_bench(PyObject *mod, PyObject *args)
{
    PyObject *arr;
    int nthreads;
    double mean, std;
    if (!PyArg_ParseTuple(args, "Oidd:_threads_normalize_bench", &arr,
                          &nthreads, &mean, &std)) {
        return NULL;
    }
    return threads_bench(mod, arr, nthreads, 1, mean, std);
}

#define KW (PyCFunction)(void (*)(void))
static PyMethodDef kernel_functions[] = {
    {"sum", core_sum, METH_O,
     PyDoc_STR("sum($module, a, /)\n--\n\n"
               "Sum of the items. Floats: double accumulation (several "
               "partial sums); integers: exact, OverflowError if the sum "
               "does not fit 64 bits; bool: the number of True. Empty: 0.")},
    {"min", core_min, METH_O,
     PyDoc_STR("min($module, a, /)\n--\n\n"
               "Smallest item (nan if a holds a NaN). ValueError if empty.")},
    {"max", core_max, METH_O,
     PyDoc_STR("max($module, a, /)\n--\n\n"
               "Largest item (nan if a holds a NaN). ValueError if empty.")},
    {"argmin", core_argmin, METH_O,
     PyDoc_STR("argmin($module, a, /)\n--\n\n"
               "Index of the first smallest item (of the first NaN if any). "
               "ValueError if empty.")},
    {"argmax", core_argmax, METH_O,
     PyDoc_STR("argmax($module, a, /)\n--\n\n"
               "Index of the first largest item (of the first NaN if any). "
               "ValueError if empty.")},
    {"mean", core_mean, METH_O,
     PyDoc_STR("mean($module, a, /)\n--\n\n"
               "Arithmetic mean as a float. ValueError if empty.")},
    {"var", KW core_var, METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("var($module, a, /, ddof=0)\n--\n\n"
               "Variance, sum((x - mean)**2) / (len(a) - ddof), computed in "
               "two passes. ValueError unless len(a) > ddof.")},
    {"std", KW core_std, METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("std($module, a, /, ddof=0)\n--\n\n"
               "Standard deviation, sqrt(var(a, ddof)).")},
    {"count_nonzero", core_count_nonzero, METH_O,
     PyDoc_STR("count_nonzero($module, a, /)\n--\n\n"
               "Number of items that are not zero (NaN counts).")},
    {"stats", core_stats, METH_O,
     PyDoc_STR("stats($module, a, /)\n--\n\n"
               "Stats(count, mean, m2, min, max) of a, where m2 is the sum "
               "of squared deviations from the mean; merge the stats of "
               "chunks with combine_stats(). Empty: (0, nan, 0.0, None, "
               "None).")},
    {"combine_stats", core_combine_stats, METH_O,
     PyDoc_STR("combine_stats($module, parts, /)\n--\n\n"
               "Merge stats() of disjoint chunks into the stats of their "
               "union (Chan et al.'s parallel formula): the mean and m2 "
               "match a serial stats() to within rounding.")},
    {"fill", core_fill, METH_VARARGS,
     PyDoc_STR("fill($module, a, value, /)\n--\n\nSet every item to value.")},
    {"sort", core_sort, METH_O,
     PyDoc_STR("sort($module, a, /)\n--\n\n"
               "Sort in place, ascending; NaNs go last.")},
    {"add", core_add, METH_VARARGS,
     PyDoc_STR("add($module, a, other, /)\n--\n\n"
               "a += other in place (other: a number or a SharedArray of "
               "the same dtype and length). Integers wrap around.")},
    {"sub", core_sub, METH_VARARGS,
     PyDoc_STR("sub($module, a, other, /)\n--\n\n"
               "a -= other in place. Integers wrap around.")},
    {"mul", core_mul, METH_VARARGS,
     PyDoc_STR("mul($module, a, other, /)\n--\n\n"
               "a *= other in place. Integers wrap around.")},
    {"div", core_div, METH_VARARGS,
     PyDoc_STR("div($module, a, other, /)\n--\n\n"
               "a /= other in place: true division for floats (IEEE: x/0 "
               "is inf or nan), floor division for integers "
               "(ZeroDivisionError, nothing changed, if a divisor is 0).")},
    {"_memcpy_bench", core_memcpy_bench, METH_VARARGS,
     PyDoc_STR("_memcpy_bench($module, dst, src, /)\n--\n\n"
               "memcpy src's bytes into dst with the GIL released "
               "(benchmark baseline).")},
    {"_threads_sum_bench", core_threads_sum_bench, METH_VARARGS,
     PyDoc_STR("_threads_sum_bench($module, a, nthreads, /)\n--\n\n"
               "Sum a contiguous f8 array on nthreads plain C threads "
               "(benchmark baseline).")},
    {"_threads_normalize_bench", core_threads_normalize_bench, METH_VARARGS,
     PyDoc_STR("_threads_normalize_bench($module, a, nthreads, mean, std, /)"
               "\n--\n\n(a - mean) / std in place on nthreads plain C "
               "threads (benchmark baseline).")},
    {NULL, NULL, 0, NULL},
};
#undef KW

static PyStructSequence_Field stats_fields[] = {
    {"count", "number of items"},
    {"mean", "arithmetic mean (nan when count is 0)"},
    {"m2", "sum of squared deviations from the mean"},
    {"min", "smallest item (None when count is 0)"},
    {"max", "largest item (None when count is 0)"},
    {NULL, NULL},
};

static PyStructSequence_Desc stats_desc = {
    "multigil._core.Stats",
    "Summary of a SharedArray: count, mean, m2 (sum of squared deviations), "
    "min, max. var = m2 / (count - ddof).",
    stats_fields,
    5,
};

/* ---- registration ---- */

int
mg_kernels_module_add(PyObject *mod, mg_state *st)
{
    st->StatsType = PyStructSequence_NewType(&stats_desc);
    if (st->StatsType == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(mod, "Stats", (PyObject *)st->StatsType) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(mod, kernel_functions);
}
