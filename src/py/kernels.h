/* kernels.h - reductions and elementwise kernels over SharedArray memory.
 *
 * Two layers, as everywhere in multigil:
 *   - the C core (mg_kern_*): plain loops over an mg_view, no Python API,
 *     safe to run with the GIL released;
 *   - the Python glue: multigil._core functions (sum, min, ...) and the
 *     SharedArray methods that call the same code (mg_kernels_meth_*).
 */
#ifndef MG_KERNELS_H
#define MG_KERNELS_H

#include "sharedarray.h"

/* Outcome of a C kernel. */
typedef enum mg_kern_status {
    MG_KERN_OK = 0,
    MG_KERN_OVERFLOW = 1, /* integer sum does not fit 64 bits */
    MG_KERN_ZERODIV = 2,  /* integer division by zero */
    MG_KERN_NOMEM = 3,
} mg_kern_status;

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

/* ---- C core (no Python API; may run without the GIL) ---- */
mg_kern_status mg_kern_sum(const mg_view *v, mg_scalar *out);
double mg_kern_sum_f8(const double *p, Py_ssize_t n);
/* Index of the first minimum (want_max 0) or maximum; floats: the first
 * NaN if there is one. v->n must be > 0. */
Py_ssize_t mg_kern_argext(const mg_view *v, int want_max);
Py_ssize_t mg_kern_count_nonzero(const mg_view *v);
/* Mean and sum of squared deviations (two-pass, corrected). v->n > 0. */
void mg_kern_moments(const mg_view *v, double *mean, double *m2);
/* mean, m2 and the indices of the first min and max in one call (two
 * passes over memory). v->n > 0. */
void mg_kern_stats(const mg_view *v, double *mean, double *m2,
                   Py_ssize_t *imin, Py_ssize_t *imax);
/* dst op= (src ? src[i] : s); src has dst's dtype and length. */
mg_kern_status mg_kern_binop(const mg_view *dst, mg_binop op,
                             const mg_view *src, mg_scalar s);
void mg_kern_fill(const mg_view *v, const void *item);
mg_kern_status mg_kern_sort(const mg_view *v);
/* Copy items between views of the same dtype and length; overlapping
 * memory is handled as if src were copied first. */
mg_kern_status mg_kern_copy(const mg_view *dst, const mg_view *src);

/* ---- Python glue ---- */
int mg_kernels_module_add(PyObject *mod, mg_state *st);

/* SharedArray methods (listed in shared.c's method table). */
PyObject *mg_kernels_meth_sum(PyObject *self, PyObject *unused);
PyObject *mg_kernels_meth_min(PyObject *self, PyObject *unused);
PyObject *mg_kernels_meth_max(PyObject *self, PyObject *unused);
PyObject *mg_kernels_meth_argmin(PyObject *self, PyObject *unused);
PyObject *mg_kernels_meth_argmax(PyObject *self, PyObject *unused);
PyObject *mg_kernels_meth_mean(PyObject *self, PyObject *unused);
PyObject *mg_kernels_meth_var(PyObject *self, PyObject *args, PyObject *kw);
PyObject *mg_kernels_meth_std(PyObject *self, PyObject *args, PyObject *kw);
PyObject *mg_kernels_meth_count_nonzero(PyObject *self, PyObject *unused);
PyObject *mg_kernels_meth_stats(PyObject *self, PyObject *unused);
PyObject *mg_kernels_meth_fill(PyObject *self, PyObject *value);
PyObject *mg_kernels_meth_sort(PyObject *self, PyObject *unused);
/* In-place operators (nb_inplace_*): self op= other, returns self. */
PyObject *mg_kernels_inplace(PyObject *self, PyObject *other, mg_binop op);

#endif
