/* kern.h - the C kernel loops over SharedArray memory (pure C).
 *
 * Owns: the plain-C description of the memory a kernel works on (mg_view),
 * the scalar and operator types, and the loops: reductions (kern_reduce.c),
 * copy, fill and in-place arithmetic (kern_elem.c), sort (kern_sort.c).
 * No Python API: every function may run on any thread with the GIL
 * released. They take no locks and never allocate except where noted
 * (plain malloc, freed before returning). Each returns an mg_err: MG_OK,
 * MG_EDTYPE for a dtype code it does not handle (it never falls back to
 * another dtype's loop), or the error named with the function.
 */
#ifndef MG_KERN_H
#define MG_KERN_H

#include "base.h"
#include "dtype.h"

#include <stddef.h>
#include <stdint.h>

/* n items of dtype, stride bytes apart (may be negative), item 0 at base.
 * The caller keeps the memory alive and every item inside it. */
typedef struct mg_view {
    char *base;
    ptrdiff_t n;
    ptrdiff_t stride;
    const mg_dtype *dtype;
} mg_view;

typedef enum mg_binop {
    MG_OP_ADD = 0,
    MG_OP_SUB = 1,
    MG_OP_MUL = 2,
    MG_OP_DIV = 3, /* floats: true division; integers: floor division */
} mg_binop;

/* A scalar in the widest type of its kind. */
typedef union mg_scalar {
    int64_t i;  /* bool and signed kinds */
    uint64_t u; /* unsigned kinds */
    double f;   /* float kinds */
} mg_scalar;

/* -- reductions (kern_reduce.c) -- */

/* Floats: out->f; signed: out->i; unsigned and bool: out->u. MG_ETOOBIG
 * when an integer sum does not fit 64 bits. */
mg_err mg_kern_sum(const mg_view *v, mg_scalar *out);
/* Sum of n contiguous doubles at memory speed (eight partial sums). */
double mg_kern_sum_f8(const double *p, ptrdiff_t n);
/* *index: the first minimum (want_max 0) or maximum; floats: the first NaN
 * if there is one. v->n must be > 0. */
mg_err mg_kern_argext(const mg_view *v, int want_max, ptrdiff_t *index);
mg_err mg_kern_count_nonzero(const mg_view *v, ptrdiff_t *count);
/* Mean and sum of squared deviations (two-pass, corrected). v->n > 0. */
mg_err mg_kern_moments(const mg_view *v, double *mean, double *m2);
/* mean, m2 and the indices of the first min and max in one call (two
 * passes over memory). v->n > 0. */
mg_err mg_kern_stats(const mg_view *v, double *mean, double *m2,
                     ptrdiff_t *imin, ptrdiff_t *imax);

/* -- elementwise (kern_elem.c) -- */

/* dst op= (src ? src[i] : s); src has dst's dtype and length; s is already
 * a value of dst's dtype, widened (the caller checks its range). Integer
 * add/sub/mul wrap; integer div is floor division, MG_EZERODIV (nothing
 * changed) if any divisor is 0; floats follow IEEE 754. MG_EDTYPE for
 * bool. MG_ENOMEM if an overlapping src had to be copied and could not. */
mg_err mg_kern_binop(const mg_view *dst, mg_binop op, const mg_view *src,
                     mg_scalar s);
/* Every item of v = the itemsize bytes at item. */
mg_err mg_kern_fill(const mg_view *v, const void *item);
/* Copy items between views of the same dtype and length; overlapping
 * memory is handled as if src were copied first (MG_ENOMEM if that copy
 * cannot be made; never for non-overlapping views). */
mg_err mg_kern_copy(const mg_view *dst, const mg_view *src);

/* -- sort (kern_sort.c) -- */

/* In place, ascending, NaNs last. MG_ENOMEM if a strided view cannot be
 * gathered. */
mg_err mg_kern_sort(const mg_view *v);

#endif /* MG_KERN_H */
