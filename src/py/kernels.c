/* kernels.c - the Python face of the C kernels: multigil._core.sum, min,
 * ..., add, div, fill, sort (re-exported as multigil.kernels), the Stats
 * result type and combine_stats, and the mg_kernels_* calls that the
 * SharedArray methods (sharedarray.c) share with them. Also the benchmark
 * baselines (_memcpy_bench, _threads_sum_bench, _threads_normalize_bench).
 *
 * Owns: argument checks, the scalar-operand rules, the error messages, and
 * releasing the GIL around the loops of src/base/kern.h for large arrays.
 * The loops themselves live there (pure C); nothing here iterates over
 * items. The array object passed in is kept alive by the caller's
 * reference for the whole call, and it holds a block reference, so the
 * memory cannot go away while the GIL is released. No locks: nothing locks
 * the data, and a concurrent writer in another interpreter gives torn
 * results, never a crash (single-writer hand-off, docs/shared.md). Never
 * call the Python API inside MG_NOGIL; never hold the GIL released across
 * anything but a kern.h call or plain C.
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
 *     there is one (as NumPy); sort puts NaNs last;
 *   - a dtype the loops do not handle is a TypeError, never another
 *     dtype's loop.
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

/* The exception for a kernel's error code (errors.c maps the codes). */
static PyObject *
kern_raise(mg_err err, const mg_dtype *dt, const char *what)
{
    switch (err) {
    case MG_ETOOBIG:
        return mg_raise(NULL, err,
                        "%s of this '%s' SharedArray does not fit in 64 "
                        "bits; copy it to a float dtype first", what,
                        dt->name);
    case MG_EZERODIV:
        return mg_raise(NULL, err,
                        "integer division by zero in %s of a '%s' "
                        "SharedArray (nothing was changed)", what, dt->name);
    case MG_EDTYPE:
        return mg_shared_dtype_error(dt, what);
    default:
        return mg_raise(NULL, err, "%s of a '%s' SharedArray failed", what,
                        dt->name);
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

PyObject *
mg_kernels_sum(MgSharedArrayObject *a)
{
    mg_view v = mg_view_of(a);
    mg_scalar out;
    mg_err status;
    MG_NOGIL(v.n, status = mg_kern_sum(&v, &out));
    if (status != MG_OK) {
        return kern_raise(status, a->dtype, "sum()");
    }
    switch (a->dtype->kind) {
    case MG_KIND_FLOAT: return PyFloat_FromDouble(out.f);
    case MG_KIND_INT: return PyLong_FromLongLong(out.i);
    default: return PyLong_FromUnsignedLongLong(out.u);
    }
}

PyObject *
mg_kernels_argext(MgSharedArrayObject *a, int want_max, int want_value)
{
    const char *what = want_value ? (want_max ? "max" : "min")
                                  : (want_max ? "argmax" : "argmin");
    if (require_items(a, what) < 0) {
        return NULL;
    }
    mg_view v = mg_view_of(a);
    ptrdiff_t i;
    mg_err status;
    MG_NOGIL(v.n, status = mg_kern_argext(&v, want_max, &i));
    if (status != MG_OK) {
        return kern_raise(status, a->dtype, what);
    }
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
    PyObject *total = mg_kernels_sum(a), *n = NULL, *res = NULL;
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

PyObject *
mg_kernels_mean(MgSharedArrayObject *a)
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
    mg_err status;
    if (a->dtype->kind == MG_KIND_FLOAT) {
        /* sum() / len(): one pass at memory speed. */
        mg_scalar out;
        MG_NOGIL(v.n, status = mg_kern_sum(&v, &out));
        mean = out.f / (double)v.n;
    }
    else {
        MG_NOGIL(v.n, status = mg_kern_moments(&v, &mean, &m2));
    }
    if (status != MG_OK) {
        return kern_raise(status, a->dtype, "mean()");
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
    mg_err status;
    MG_NOGIL(v.n, status = mg_kern_moments(&v, &mean, &m2));
    if (status != MG_OK) {
        kern_raise(status, a->dtype, "var()/std()");
        return -1;
    }
    *out = m2 / (double)(a->length - ddof);
    return 0;
}

PyObject *
mg_kernels_count_nonzero(MgSharedArrayObject *a)
{
    mg_view v = mg_view_of(a);
    ptrdiff_t n;
    mg_err status;
    MG_NOGIL(v.n, status = mg_kern_count_nonzero(&v, &n));
    if (status != MG_OK) {
        return kern_raise(status, a->dtype, "count_nonzero()");
    }
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

PyObject *
mg_kernels_stats(mg_state *st, MgSharedArrayObject *a)
{
    if (a->length == 0) {
        return make_stats(st, 0, NAN, 0.0, Py_None, Py_None);
    }
    mg_view v = mg_view_of(a);
    double mean, m2;
    ptrdiff_t imin, imax;
    mg_err status;
    MG_NOGIL(v.n, status = mg_kern_stats(&v, &mean, &m2, &imin, &imax));
    if (status != MG_OK) {
        return kern_raise(status, a->dtype, "stats()");
    }
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
combine_mg_kernels_stats(mg_state *st, PyObject *parts)
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

PyObject *
mg_kernels_var_std(MgSharedArrayObject *a, Py_ssize_t ddof, int want_std)
{
    double var;
    if (var_value(a, ddof, &var) < 0) {
        return NULL;
    }
    return PyFloat_FromDouble(want_std ? sqrt(var) : var);
}

/* -- fill, sort, in-place arithmetic -- */

PyObject *
mg_kernels_fill(MgSharedArrayObject *a, PyObject *value)
{
    uint64_t item[1];
    if (mg_shared_check_writable(a) < 0
        || mg_shared_pack(a->dtype, value, item) < 0) {
        return NULL;
    }
    mg_view v = mg_view_of(a);
    mg_err status;
    MG_NOGIL(v.n, status = mg_kern_fill(&v, item));
    if (status != MG_OK) {
        return kern_raise(status, a->dtype, "fill()");
    }
    Py_RETURN_NONE;
}

PyObject *
mg_kernels_sort(MgSharedArrayObject *a)
{
    if (mg_shared_check_writable(a) < 0) {
        return NULL;
    }
    mg_view v = mg_view_of(a);
    mg_err status;
    MG_NOGIL(v.n, status = mg_kern_sort(&v));
    if (status != MG_OK) {
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
scalar_operand(MgSharedArrayObject *a, PyObject *other, mg_binop op,
               mg_scalar *sc)
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
    mg_view v = {(char *)&item, 1, (ptrdiff_t)a->dtype->itemsize, a->dtype};
    mg_err status = mg_kern_sum(&v, sc); /* widen one item */
    if (status != MG_OK) {
        kern_raise(status, a->dtype, op_name(op));
        return -1;
    }
    return 0;
}

PyObject *
mg_kernels_binop(mg_state *st, MgSharedArrayObject *a, PyObject *other, mg_binop op)
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
    else if (scalar_operand(a, other, op, &sc) < 0) {
        return NULL;
    }
    mg_err status;
    MG_NOGIL(dst.n,
             status = mg_kern_binop(&dst, op, is_array ? &src : NULL, sc));
    if (status == MG_ETOOBIG) { /* scalar_operand already refuses these */
        return mg_raise(NULL, status, "%s(): the scalar does not fit in "
                        "dtype '%s'", op_name(op), a->dtype->name);
    }
    if (status != MG_OK) {
        return kern_raise(status, a->dtype, op_name(op));
    }
    Py_RETURN_NONE;
}

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
UNARY_FN(sum, mg_kernels_sum(a))
UNARY_FN(min, mg_kernels_argext(a, 0, 1))
UNARY_FN(max, mg_kernels_argext(a, 1, 1))
UNARY_FN(argmin, mg_kernels_argext(a, 0, 0))
UNARY_FN(argmax, mg_kernels_argext(a, 1, 0))
UNARY_FN(mean, mg_kernels_mean(a))
UNARY_FN(count_nonzero, mg_kernels_count_nonzero(a))
UNARY_FN(stats, mg_kernels_stats(mg_state_from_module(mod), a))
UNARY_FN(sort, mg_kernels_sort(a))
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
    return a ? mg_kernels_var_std(a, ddof, want_std) : NULL;
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
    return combine_mg_kernels_stats(mg_state_from_module(mod), parts);
}

static PyObject *
core_fill(PyObject *mod, PyObject *args)
{
    PyObject *arg, *value;
    if (!PyArg_ParseTuple(args, "OO:fill", &arg, &value)) {
        return NULL;
    }
    MgSharedArrayObject *a = array_arg(mod, arg, "fill");
    return a ? mg_kernels_fill(a, value) : NULL;
}

static PyObject *
binop_fn(PyObject *mod, PyObject *args, mg_binop op)
{
    PyObject *arg, *other;
    if (!PyArg_ParseTuple(args, "OO", &arg, &other)) {
        return NULL;
    }
    MgSharedArrayObject *a = array_arg(mod, arg, op_name(op));
    return a ? mg_kernels_binop(mg_state_from_module(mod), a, other, op) : NULL;
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

int
mg_kernels_state_traverse(mg_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->StatsType);
    return 0;
}

void
mg_kernels_state_clear(mg_state *st)
{
    Py_CLEAR(st->StatsType);
}
