/* kern_sort.c - the in-place sort of kern.h: introsort (median-of-three
 * quicksort, heapsort past a depth limit, insertion sort for short runs),
 * one typed instance per dtype, on contiguous memory; a strided view is
 * gathered into a malloc'd copy, sorted and scattered back.
 *
 * Pure C, no Python API, no locks, no state: safe on any thread with the
 * GIL released. Must never run another dtype's loop (MG_DISPATCH) and never
 * compare NaNs with < (they are moved to the end first).
 */
#include "kern_impl.h"

#include <math.h>
#include <stdlib.h>

/* -- sort: introsort (median-of-three quicksort, heapsort past a depth
 * limit, insertion sort for short runs), typed, on contiguous memory.
 * Floats: NaNs are moved to the end first; the rest sort with plain <. -- */

#define MG_SORT_SMALL 16

#define SORT(T, ISF, ISS)                                                    \
    static void isort_##T(T *a, ptrdiff_t n)                                 \
    {                                                                        \
        for (ptrdiff_t i = 1; i < n; i++) {                                  \
            T x = a[i];                                                      \
            ptrdiff_t j = i;                                                 \
            for (; j > 0 && x < a[j - 1]; j--) {                             \
                a[j] = a[j - 1];                                             \
            }                                                                \
            a[j] = x;                                                        \
        }                                                                    \
    }                                                                        \
    static void sift_##T(T *a, ptrdiff_t root, ptrdiff_t n)                  \
    {                                                                        \
        for (;;) {                                                           \
            ptrdiff_t c = 2 * root + 1;                                      \
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
    static void heapsort_##T(T *a, ptrdiff_t n)                              \
    {                                                                        \
        for (ptrdiff_t i = n / 2 - 1; i >= 0; i--) {                         \
            sift_##T(a, i, n);                                               \
        }                                                                    \
        for (ptrdiff_t end = n - 1; end > 0; end--) {                        \
            T t = a[0];                                                      \
            a[0] = a[end];                                                   \
            a[end] = t;                                                      \
            sift_##T(a, 0, end);                                             \
        }                                                                    \
    }                                                                        \
    /* Puts the median of a[0], a[n/2], a[n-1] in a[0]. */                   \
    static void median_first_##T(T *a, ptrdiff_t n)                          \
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
    static ptrdiff_t partition_##T(T *a, ptrdiff_t n)                        \
    {                                                                        \
        T p = a[0];                                                          \
        ptrdiff_t i = -1, j = n;                                             \
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
    static void introsort_##T(T *a, ptrdiff_t n, int depth)                  \
    {                                                                        \
        while (n > MG_SORT_SMALL) {                                          \
            if (depth-- == 0) {                                              \
                heapsort_##T(a, n);                                          \
                return;                                                      \
            }                                                                \
            median_first_##T(a, n);                                          \
            ptrdiff_t j = partition_##T(a, n) + 1;                           \
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
    static mg_err sort_##T(char *base, ptrdiff_t n)                          \
    {                                                                        \
        T *a = (T *)base;                                                    \
        if (ISF) {                                                           \
            ptrdiff_t k = 0;                                                 \
            for (ptrdiff_t i = 0; i < n; i++) {                              \
                if (!isnan((double)a[i])) {                                  \
                    T t = a[k];                                              \
                    a[k++] = a[i];                                           \
                    a[i] = t;                                                \
                }                                                            \
            }                                                                \
            n = k; /* NaNs now fill a[k..] */                                \
        }                                                                    \
        int depth = 0;                                                       \
        for (ptrdiff_t m = n; m > 1; m >>= 1) {                              \
            depth += 2;                                                      \
        }                                                                    \
        introsort_##T(a, n, depth);                                          \
        return MG_OK;                                                        \
    }
MG_TYPES(SORT)
#undef SORT

static mg_err
sort_contiguous(const mg_dtype *dt, char *base, ptrdiff_t n)
{
    MG_DISPATCH(dt->code, sort, base, n)
}

mg_err
mg_kern_sort(const mg_view *v)
{
    if (v->stride == (ptrdiff_t)v->dtype->itemsize) {
        return sort_contiguous(v->dtype, v->base, v->n);
    }
    mg_view tv;
    char *tmp = mg_kern_gather(v, &tv);
    if (tmp == NULL) {
        return MG_ENOMEM;
    }
    mg_err err = sort_contiguous(v->dtype, tmp, v->n);
    if (err == MG_OK) {
        mg_kern_copy_items(v, &tv);
    }
    free(tmp);
    return err;
}
