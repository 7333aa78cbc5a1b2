/* kernels.h - the Python face of the kernels (kernels.c): the calls that
 * multigil._core's functions and the SharedArray methods (sharedarray.c)
 * share. Each takes an array of this interpreter, needs the GIL (and
 * releases it around the loops of kern.h for large arrays), and returns a
 * new reference, or NULL with an exception set. */
#ifndef MG_KERNELS_H
#define MG_KERNELS_H

#include "sharedarray.h"

/* Registers the kernel functions and the Stats type; -1 with exception. */
int mg_kernels_module_add(PyObject *mod, mg_state *st);

PyObject *mg_kernels_sum(MgSharedArrayObject *a);
/* min/max (want_value 1) or argmin/argmax (want_value 0). */
PyObject *mg_kernels_argext(MgSharedArrayObject *a, int want_max,
                            int want_value);
PyObject *mg_kernels_mean(MgSharedArrayObject *a);
PyObject *mg_kernels_var_std(MgSharedArrayObject *a, Py_ssize_t ddof,
                             int want_std);
PyObject *mg_kernels_count_nonzero(MgSharedArrayObject *a);
PyObject *mg_kernels_stats(mg_state *st, MgSharedArrayObject *a);
PyObject *mg_kernels_fill(MgSharedArrayObject *a, PyObject *value);
PyObject *mg_kernels_sort(MgSharedArrayObject *a);
/* a op= other (a number or a SharedArray of a's dtype and length); returns
 * None. */
PyObject *mg_kernels_binop(mg_state *st, MgSharedArrayObject *a,
                           PyObject *other, mg_binop op);

#endif
