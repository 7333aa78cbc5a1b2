/* kern_elem.c - the elementwise loops of kern.h: copy, fill and in-place
 * arithmetic (dst op= scalar or array), plus the view helpers the sort
 * shares (kern_impl.h).
 *
 * Pure C, no Python API, no locks, no state: safe on any thread with the
 * GIL released. Allocates (malloc) only to copy an overlapping source, and
 * frees it before returning. Must never run another dtype's loop
 * (MG_DISPATCH: MG_EDTYPE), never convert an out-of-range scalar (C
 * undefined behaviour; scalar_fits refuses it with MG_ETOOBIG) and never
 * divide an integer by zero or INT_MIN by -1 (floordiv_s64).
 */
#include "kern_impl.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* -- copy and fill -- */

static void
view_range(const mg_view *v, char **lo, char **hi)
{
    ptrdiff_t span = v->n > 0 ? (v->n - 1) * v->stride : 0;
    *lo = span < 0 ? v->base + span : v->base;
    *hi = (span < 0 ? v->base : v->base + span)
          + (v->n > 0 ? (ptrdiff_t)v->dtype->itemsize : 0);
}

int
mg_kern_views_overlap(const mg_view *a, const mg_view *b)
{
    char *alo, *ahi, *blo, *bhi;
    view_range(a, &alo, &ahi);
    view_range(b, &blo, &bhi);
    return a->n > 0 && b->n > 0 && alo < bhi && blo < ahi;
}

void
mg_kern_copy_items(const mg_view *dst, const mg_view *src)
{
    size_t isz = dst->dtype->itemsize;
    if (dst->stride == (ptrdiff_t)isz && src->stride == (ptrdiff_t)isz) {
        memmove(dst->base, src->base, (size_t)dst->n * isz);
        return;
    }
    for (ptrdiff_t i = 0; i < dst->n; i++) {
        memcpy(dst->base + i * dst->stride, src->base + i * src->stride, isz);
    }
}

char *
mg_kern_gather(const mg_view *v, mg_view *out)
{
    size_t isz = v->dtype->itemsize;
    char *tmp = malloc(v->n > 0 ? (size_t)v->n * isz : 1);
    if (tmp == NULL) {
        return NULL;
    }
    out->base = tmp;
    out->n = v->n;
    out->stride = (ptrdiff_t)isz;
    out->dtype = v->dtype;
    mg_kern_copy_items(out, v);
    return tmp;
}

mg_err
mg_kern_copy(const mg_view *dst, const mg_view *src)
{
    int contiguous = dst->stride == src->stride
                     && dst->stride == (ptrdiff_t)dst->dtype->itemsize;
    if (!contiguous && mg_kern_views_overlap(dst, src)) {
        mg_view tv;
        char *tmp = mg_kern_gather(src, &tv);
        if (tmp == NULL) {
            return MG_ENOMEM;
        }
        mg_kern_copy_items(dst, &tv);
        free(tmp);
        return MG_OK;
    }
    mg_kern_copy_items(dst, src);
    return MG_OK;
}

#define FILL(T, ISF, ISS)                                                    \
    static mg_err fill_##T(const mg_view *v, const void *item)               \
    {                                                                        \
        T x;                                                                 \
        memcpy(&x, item, sizeof(T));                                         \
        for (ptrdiff_t i = 0; i < v->n; i++) {                               \
            AT(T, v, i) = x;                                                 \
        }                                                                    \
        return MG_OK;                                                        \
    }
MG_TYPES(FILL)
#undef FILL

mg_err
mg_kern_fill(const mg_view *v, const void *item)
{
    MG_DISPATCH(v->dtype->code, fill, v, item)
}

/* -- in-place arithmetic -- */

/* dst[i] = E(dst[i], y or src[i]), with contiguous fast paths. */
#define ELEM_LOOP(T, d, s, y, E)                                             \
    do {                                                                     \
        ptrdiff_t n_ = (d)->n;                                               \
        int dc_ = (d)->stride == (ptrdiff_t)sizeof(T);                       \
        if ((s) == NULL && dc_) {                                            \
            T *p_ = (T *)(d)->base;                                          \
            for (ptrdiff_t i = 0; i < n_; i++) {                             \
                p_[i] = E(p_[i], (y));                                       \
            }                                                                \
        }                                                                    \
        else if ((s) == NULL) {                                              \
            for (ptrdiff_t i = 0; i < n_; i++) {                             \
                AT(T, d, i) = E(AT(T, d, i), (y));                           \
            }                                                                \
        }                                                                    \
        else if (dc_ && (s)->stride == (ptrdiff_t)sizeof(T)) {               \
            T *p_ = (T *)(d)->base;                                          \
            const T *q_ = (const T *)(s)->base;                              \
            for (ptrdiff_t i = 0; i < n_; i++) {                             \
                p_[i] = E(p_[i], q_[i]);                                     \
            }                                                                \
        }                                                                    \
        else {                                                               \
            for (ptrdiff_t i = 0; i < n_; i++) {                             \
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
    static mg_err binop_##T(const mg_view *d, mg_binop op, const mg_view *s, \
                            mg_scalar sc)                                    \
    {                                                                        \
        T y = ISS ? (T)sc.i : (T)sc.u;                                       \
        switch (op) {                                                        \
        case MG_OP_ADD: ELEM_LOOP(T, d, s, y, iadd_##T); break;              \
        case MG_OP_SUB: ELEM_LOOP(T, d, s, y, isub_##T); break;              \
        case MG_OP_MUL: ELEM_LOOP(T, d, s, y, imul_##T); break;              \
        default: ELEM_LOOP(T, d, s, y, idiv_##T); break;                     \
        }                                                                    \
        return MG_OK;                                                        \
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
    static mg_err binop_##T(const mg_view *d, mg_binop op, const mg_view *s, \
                            mg_scalar sc)                                    \
    {                                                                        \
        T y = (T)sc.f; /* in range: scalar_fits() checked it */              \
        switch (op) {                                                        \
        case MG_OP_ADD: ELEM_LOOP(T, d, s, y, FADD); break;                  \
        case MG_OP_SUB: ELEM_LOOP(T, d, s, y, FSUB); break;                  \
        case MG_OP_MUL: ELEM_LOOP(T, d, s, y, FMUL); break;                  \
        default: ELEM_LOOP(T, d, s, y, FDIV); break;                         \
        }                                                                    \
        return MG_OK;                                                        \
    }
FLOAT_OPS(float)
FLOAT_OPS(double)
#undef FLOAT_OPS

static int
is_zero_scalar(const mg_dtype *dt, mg_scalar sc)
{
    return dt->kind == MG_KIND_UINT ? sc.u == 0 : sc.i == 0;
}

/* 1 if s is a value of dt, so that converting it to dt's C type is exact
 * (integers) or defined (f4: finite values beyond float32 would be
 * undefined behaviour in C; inf and nan are fine). */
static int
scalar_fits(const mg_dtype *dt, mg_scalar s)
{
    unsigned bits = (unsigned)dt->itemsize * 8;
    switch (dt->kind) {
    case MG_KIND_INT:
        return bits == 64 || (s.i >= -(INT64_C(1) << (bits - 1))
                              && s.i < (INT64_C(1) << (bits - 1)));
    case MG_KIND_UINT:
        return bits == 64 || s.u < (UINT64_C(1) << bits);
    case MG_KIND_FLOAT:
        return dt->itemsize == 8 || !isfinite(s.f) || fabs(s.f) <= FLT_MAX;
    default:
        return 0;
    }
}

/* 0 if no divisor of an integer division is zero, else MG_EZERODIV. */
static mg_err
check_divisors(const mg_dtype *dt, const mg_view *src, mg_scalar s)
{
    if (src == NULL) {
        return is_zero_scalar(dt, s) ? MG_EZERODIV : MG_OK;
    }
    ptrdiff_t nonzero;
    mg_err err = mg_kern_count_nonzero(src, &nonzero);
    if (err == MG_OK && nonzero != src->n) {
        err = MG_EZERODIV;
    }
    return err;
}

static mg_err
binop_typed(const mg_view *dst, mg_binop op, const mg_view *src,
            mg_scalar s)
{
    MG_DISPATCH(dst->dtype->code, binop, dst, op, src, s)
}

mg_err
mg_kern_binop(const mg_view *dst, mg_binop op, const mg_view *src,
              mg_scalar s)
{
    const mg_dtype *dt = dst->dtype;
    if (dt->kind == MG_KIND_BOOL) {
        return MG_EDTYPE;
    }
    if (src == NULL && !scalar_fits(dt, s)) {
        return MG_ETOOBIG;
    }
    if (op == MG_OP_DIV && dt->kind != MG_KIND_FLOAT) {
        mg_err err = check_divisors(dt, src, s);
        if (err != MG_OK) {
            return err;
        }
    }
    char *tmp = NULL;
    mg_view tv;
    if (src != NULL && mg_kern_views_overlap(dst, src)
        && !(src->base == dst->base && src->stride == dst->stride)) {
        tmp = mg_kern_gather(src, &tv);
        if (tmp == NULL) {
            return MG_ENOMEM;
        }
        src = &tv;
    }
    mg_err err = binop_typed(dst, op, src, s);
    free(tmp);
    return err;
}
