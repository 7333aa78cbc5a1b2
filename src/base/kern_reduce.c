/* kern_reduce.c - the reduction loops of kern.h: sum, argmin/argmax,
 * count_nonzero, moments (mean and m2) and stats, one typed loop per dtype.
 *
 * Pure C, no Python API, no locks, no allocation, no state: safe on any
 * thread with the GIL released. Must never fall back to another dtype's
 * loop (MG_DISPATCH returns MG_EDTYPE for an unknown code) and never do
 * per-item indirection: the loops are macro-instantiated per C type.
 */
#include "kern_impl.h"

#include <math.h>

/* -- sum -- */

double
mg_kern_sum_f8(const double *p, ptrdiff_t n)
{
    /* Eight independent accumulators keep the adds pipelined, so the loop
     * runs at memory speed; combining them pairwise at the end also keeps
     * rounding error below that of one running sum. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    ptrdiff_t i = 0;
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
    static mg_err sum_##T(const mg_view *v, mg_scalar *out)                  \
    {                                                                        \
        if (ISF) {                                                           \
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                           \
            ptrdiff_t i = 0;                                                 \
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
            for (ptrdiff_t i = 0; i < v->n; i++) {                           \
                if (__builtin_add_overflow(acc, (int64_t)AT(T, v, i), &acc)) \
                    return MG_ETOOBIG;                                       \
            }                                                                \
            out->i = acc;                                                    \
        }                                                                    \
        else {                                                               \
            uint64_t acc = 0;                                                \
            for (ptrdiff_t i = 0; i < v->n; i++) {                           \
                if (__builtin_add_overflow(acc, (uint64_t)AT(T, v, i),       \
                                           &acc))                            \
                    return MG_ETOOBIG;                                       \
            }                                                                \
            out->u = acc;                                                    \
        }                                                                    \
        return MG_OK;                                                        \
    }
MG_TYPES(SUM)
#undef SUM

mg_err
mg_kern_sum(const mg_view *v, mg_scalar *out)
{
    if (v->dtype->code == 'd' && v->stride == 8) {
        out->f = mg_kern_sum_f8((const double *)v->base, v->n);
        return MG_OK;
    }
    MG_DISPATCH(v->dtype->code, sum, v, out)
}

/* -- argmin / argmax / count_nonzero / moments -- */

#define ARGEXT(T, ISF, ISS)                                                  \
    static mg_err argext_##T(const mg_view *v, int want_max, ptrdiff_t *out) \
    {                                                                        \
        ptrdiff_t best = 0;                                                  \
        T bv = AT(T, v, 0);                                                  \
        if (ISF && isnan((double)bv)) {                                      \
            *out = 0;                                                        \
            return MG_OK;                                                    \
        }                                                                    \
        for (ptrdiff_t i = 1; i < v->n; i++) {                               \
            T x = AT(T, v, i);                                               \
            if (ISF && isnan((double)x)) {                                   \
                *out = i;                                                    \
                return MG_OK;                                                \
            }                                                                \
            if (want_max ? x > bv : x < bv) {                                \
                bv = x;                                                      \
                best = i;                                                    \
            }                                                                \
        }                                                                    \
        *out = best;                                                         \
        return MG_OK;                                                        \
    }
MG_TYPES(ARGEXT)
#undef ARGEXT

mg_err
mg_kern_argext(const mg_view *v, int want_max, ptrdiff_t *index)
{
    MG_DISPATCH(v->dtype->code, argext, v, want_max, index)
}

#define NONZERO(T, ISF, ISS)                                                 \
    static mg_err nonzero_##T(const mg_view *v, ptrdiff_t *out)              \
    {                                                                        \
        ptrdiff_t count = 0;                                                 \
        for (ptrdiff_t i = 0; i < v->n; i++) {                               \
            count += AT(T, v, i) != 0;                                       \
        }                                                                    \
        *out = count;                                                        \
        return MG_OK;                                                        \
    }
MG_TYPES(NONZERO)
#undef NONZERO

mg_err
mg_kern_count_nonzero(const mg_view *v, ptrdiff_t *count)
{
    MG_DISPATCH(v->dtype->code, nonzero, v, count)
}

/* The mean and m2 from the provisional mean mu and the sums of the n
 * deviations from it (d1) and of their squares (d2). */
static inline void
finish_moments(double mu, double d1, double d2, ptrdiff_t n, double *mean,
               double *m2)
{
    *mean = mu + d1 / (double)n;
    *m2 = d2 - d1 * d1 / (double)n;
    if (*m2 < 0) {
        *m2 = 0;
    }
}

/* Two passes: the mean, then the squared deviations with the classic
 * correction term (sum of deviations)^2 / n, which cancels most of the
 * rounding error of the mean (Chan, Golub & LeVeque 1983). */
#define MOMENTS(T, ISF, ISS)                                                 \
    static mg_err moments_##T(const mg_view *v, double *mean, double *m2)    \
    {                                                                        \
        double s = 0, d1 = 0, d2 = 0;                                        \
        for (ptrdiff_t i = 0; i < v->n; i++) {                               \
            s += (double)AT(T, v, i);                                        \
        }                                                                    \
        double mu = s / (double)v->n;                                        \
        for (ptrdiff_t i = 0; i < v->n; i++) {                               \
            double d = (double)AT(T, v, i) - mu;                             \
            d1 += d;                                                         \
            d2 += d * d;                                                     \
        }                                                                    \
        finish_moments(mu, d1, d2, v->n, mean, m2);                          \
        return MG_OK;                                                        \
    }
MG_TYPES(MOMENTS)
#undef MOMENTS

mg_err
mg_kern_moments(const mg_view *v, double *mean, double *m2)
{
    MG_DISPATCH(v->dtype->code, moments, v, mean, m2)
}

/* stats in two passes: pass 1 takes the sum (four partial sums) and the
 * first min and max; pass 2 the squared deviations, as mg_kern_moments. A
 * NaN makes the sum NaN, and only then do we look for the first NaN. */
#define STATS(T, ISF, ISS)                                                   \
    static mg_err stats_##T(const mg_view *v, double *mean, double *m2,      \
                          ptrdiff_t *imin, ptrdiff_t *imax)                  \
    {                                                                        \
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                               \
        T lo = AT(T, v, 0), hi = lo;                                         \
        ptrdiff_t ilo = 0, ihi = 0, i = 0;                                   \
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
            (void)argext_##T(v, 0, &ilo); /* a NaN, or inf - inf */          \
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
        finish_moments(mu, d1, e0 + e1, v->n, mean, m2);                     \
        *imin = ilo;                                                         \
        *imax = ihi;                                                         \
        if (ISF && isnan(mu)) {                                              \
            (void)argext_##T(v, 1, imax);                                    \
        }                                                                    \
        return MG_OK;                                                        \
    }
MG_TYPES(STATS)
#undef STATS

mg_err
mg_kern_stats(const mg_view *v, double *mean, double *m2, ptrdiff_t *imin,
              ptrdiff_t *imax)
{
    MG_DISPATCH(v->dtype->code, stats, v, mean, m2, imin, imax)
}
