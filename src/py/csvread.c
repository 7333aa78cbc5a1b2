/* csvread.c - the Python face of the C CSV reader (src/base/csv*.c):
 * _core._csv_read, _core._csv_row and _core._csv_line_of, called by
 * multigil/csv.py.
 *
 * Owns: argument conversion into an mg_csv_job, the buffer views of the
 * inputs for the length of a call, and wrapping the result blocks as
 * SharedArrays of this interpreter. Takes no locks; drops the GIL around
 * mg_csv_read (which runs plain C on its own short-lived threads and never
 * touches a Python object). Errors of the input come back as a tuple for
 * the Python layer to name file, line and column; only misuse raises.
 */
#include "csvread.h"

#include "csv_read.h"
#include "sharedarray.h"

#include <string.h>

/* ---- argument helpers ---- */

/* (delimiter, quote, escape, comment, doublequote); -1: none. */
static int
dialect_from(PyObject *t, mg_csv_dialect *d)
{
    int delim, quote, esc, comment, dq;
    if (!PyArg_ParseTuple(t, "iiiip;dialect", &delim, &quote, &esc, &comment,
                          &dq)) {
        return -1;
    }
    if (delim < 0 || delim > 255 || quote > 255 || esc > 255
        || comment > 255) {
        PyErr_SetString(PyExc_ValueError, "dialect characters are bytes");
        return -1;
    }
    memset(d, 0, sizeof(*d));
    d->delim = (unsigned char)delim;
    d->has_quote = quote >= 0;
    d->quote = (unsigned char)(quote >= 0 ? quote : 0);
    d->has_escape = esc >= 0;
    d->escape = (unsigned char)(esc >= 0 ? esc : 0);
    d->has_comment = comment >= 0;
    d->comment = (unsigned char)(comment >= 0 ? comment : 0);
    d->doublequote = (unsigned char)dq;
    return 0;
}

/* A list of bytes into a set; the bytes stay owned by the list. */
static int
strset_from(PyObject *list, mg_csv_strset *set, const char *what)
{
    if (!PyList_Check(list) || PyList_GET_SIZE(list) > MG_CSV_SET_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: a list of at most %d bytes",
                     what, MG_CSV_SET_MAX);
        return -1;
    }
    set->n = (size_t)PyList_GET_SIZE(list);
    for (size_t i = 0; i < set->n; i++) {
        PyObject *b = PyList_GET_ITEM(list, i);
        if (!PyBytes_Check(b)) {
            PyErr_Format(PyExc_TypeError, "%s: bytes expected", what);
            return -1;
        }
        set->s[i] = PyBytes_AS_STRING(b);
        set->len[i] = (size_t)PyBytes_GET_SIZE(b);
    }
    return 0;
}

/* A list of ints into a new int array of exactly n items. */
static int *
ints_from(PyObject *list, size_t n, const char *what)
{
    if (!PyList_Check(list) || (size_t)PyList_GET_SIZE(list) != n) {
        PyErr_Format(PyExc_ValueError, "%s: a list of %zu ints", what, n);
        return NULL;
    }
    int *out = PyMem_Calloc(n ? n : 1, sizeof(int));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PyList_GET_ITEM(list, i));
        if (v == -1 && PyErr_Occurred()) {
            PyMem_Free(out);
            return NULL;
        }
        out[i] = (int)v;
    }
    return out;
}

/* ---- result ---- */

static PyObject *
wrap_block(mg_state *st, mg_block *b, Py_ssize_t n, char code)
{
    if (b == NULL) {
        Py_RETURN_NONE;
    }
    const mg_dtype *dt = mg_dtype_from_code(code);
    return mg_shared_wrap(st, b, b->data, n, (Py_ssize_t)dt->itemsize, dt);
}

static const char value_code[MG_CSV_NTYPES] = {'q', 'd', '?', 'i', 'q', 'q'};

static PyObject *
column_result(mg_state *st, const mg_csv_job *j, const mg_csv_colout *c)
{
    Py_ssize_t n = (Py_ssize_t)j->nrows;
    Py_ssize_t nv = c->type == MG_CSV_STR ? n + 1 : n;
    PyObject *vals = wrap_block(st, c->values, nv, value_code[c->type]);
    PyObject *bytes = c->bytes == NULL
        ? Py_NewRef(Py_None)
        : wrap_block(st, c->bytes,
                     (Py_ssize_t)((int64_t *)c->values->data)[j->nrows], 'B');
    PyObject *valid = wrap_block(st, c->validity, (n + 7) / 8, 'B');
    PyObject *res = NULL;
    if (vals != NULL && bytes != NULL && valid != NULL) {
        res = Py_BuildValue("(inOOO)", (int)c->type, (Py_ssize_t)c->nulls,
                            vals, bytes, valid);
    }
    Py_XDECREF(vals);
    Py_XDECREF(bytes);
    Py_XDECREF(valid);
    return res;
}

static PyObject *
job_result(mg_state *st, const mg_csv_job *j)
{
    PyObject *cols = PyList_New((Py_ssize_t)j->ncols);
    if (cols == NULL) {
        return NULL;
    }
    for (size_t k = 0; k < j->ncols; k++) {
        PyObject *c = column_result(st, j, &j->cols[k]);
        if (c == NULL) {
            Py_DECREF(cols);
            return NULL;
        }
        PyList_SET_ITEM(cols, (Py_ssize_t)k, c);
    }
    return Py_BuildValue("(OnnnnN)", Py_True, (Py_ssize_t)j->nrows,
                         (Py_ssize_t)j->nskipped,
                         (Py_ssize_t)j->first_skipped_seg,
                         (Py_ssize_t)j->first_skipped_pos, cols);
}

static PyObject *
error_result(const mg_csv_job *j)
{
    if (j->err.code == MG_CSV_ENOMEM) {
        return PyErr_NoMemory();
    }
    return Py_BuildValue("(Oinnnn)", Py_False, (int)j->err.code,
                         (Py_ssize_t)j->err_seg, (Py_ssize_t)j->err.pos,
                         (Py_ssize_t)j->err.field, (Py_ssize_t)j->err.nfields);
}

/* ---- _csv_read ---- */

typedef struct read_args {
    Py_buffer *views;
    size_t nviews;
    mg_csv_segment *segs;
    int *keep, *forced;
} read_args;

static void
read_args_free(read_args *a)
{
    for (size_t i = 0; i < a->nviews; i++) {
        PyBuffer_Release(&a->views[i]);
    }
    PyMem_Free(a->views);
    PyMem_Free(a->segs);
    PyMem_Free(a->keep);
    PyMem_Free(a->forced);
}

/* segments: list of (buffer, start, end[, droppable]); droppable: the
 * buffer is a read-only file mapping (csv_read.h). */
static int
segments_from(PyObject *list, read_args *a)
{
    if (!PyList_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "segments: a list");
        return -1;
    }
    size_t n = (size_t)PyList_GET_SIZE(list);
    a->views = PyMem_Calloc(n ? n : 1, sizeof(Py_buffer));
    a->segs = PyMem_Calloc(n ? n : 1, sizeof(mg_csv_segment));
    if (a->views == NULL || a->segs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *obj;
        Py_ssize_t start, end;
        int droppable = 0;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, i), "Onn|p;segment", &obj,
                              &start, &end, &droppable)) {
            return -1;
        }
        if (PyObject_GetBuffer(obj, &a->views[i], PyBUF_SIMPLE) < 0) {
            return -1;
        }
        a->nviews++;
        if (start < 0 || end < start || end > a->views[i].len) {
            PyErr_SetString(PyExc_ValueError, "segment out of its buffer");
            return -1;
        }
        a->segs[i].buf = a->views[i].buf;
        a->segs[i].start = (size_t)start;
        a->segs[i].end = (size_t)end;
        a->segs[i].droppable = droppable;
    }
    return 0;
}

static PyObject *
csv_read(PyObject *mod, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"segments", "dialect", "nfields", "keep",
                             "forced", "null_values", "true_values",
                             "false_values", "bad_lines", "n_rows",
                             "skip_footer", "chunk_size", "nthreads",
                             "sync_window", NULL};
    PyObject *segs, *dial, *keep, *forced, *nulls, *trues, *falses;
    Py_ssize_t nfields, n_rows, skip_footer, chunk_size, sync_window = 0;
    int bad_lines, nthreads;
    if (!PyArg_ParseTupleAndKeywords(
            args, kw, "OOnOOOOOinnni|n:_csv_read", kwlist, &segs, &dial,
            &nfields, &keep, &forced, &nulls, &trues, &falses, &bad_lines,
            &n_rows, &skip_footer, &chunk_size, &nthreads, &sync_window)) {
        return NULL;
    }
    mg_state *st = mg_state_from_module(mod);
    mg_csv_dialect d;
    mg_csv_job j;
    memset(&j, 0, sizeof(j));
    read_args a;
    memset(&a, 0, sizeof(a));
    PyObject *res = NULL;
    if (nfields < 0 || skip_footer < 0 || chunk_size <= 0 || nthreads < 1
        || sync_window < 0) {
        PyErr_SetString(PyExc_ValueError, "bad _csv_read sizes");
        goto done;
    }
    if (dialect_from(dial, &d) < 0 || segments_from(segs, &a) < 0
        || (a.keep = ints_from(keep, (size_t)nfields, "keep")) == NULL
        || strset_from(nulls, &j.values.nulls, "null_values") < 0
        || strset_from(trues, &j.values.trues, "true_values") < 0
        || strset_from(falses, &j.values.falses, "false_values") < 0) {
        goto done;
    }
    size_t ncols = 0;
    for (Py_ssize_t i = 0; i < nfields; i++) {
        if (a.keep[i] >= nfields || a.keep[i] < -1) {
            PyErr_SetString(PyExc_ValueError, "keep: bad column index");
            goto done;
        }
        if (a.keep[i] >= 0 && (size_t)a.keep[i] + 1 > ncols) {
            ncols = (size_t)a.keep[i] + 1;
        }
    }
    if ((a.forced = ints_from(forced, ncols, "forced")) == NULL) {
        goto done;
    }
    for (size_t k = 0; k < ncols; k++) {
        if (a.forced[k] < -1 || a.forced[k] >= MG_CSV_NTYPES) {
            PyErr_SetString(PyExc_ValueError, "forced: bad type code");
            goto done;
        }
    }
    j.dialect = &d;
    j.segs = a.segs;
    j.nsegs = a.nviews;
    j.nfields = (size_t)nfields;
    j.keep = a.keep;
    j.ncols = ncols;
    j.forced = a.forced;
    j.bad_lines = bad_lines;
    j.n_rows = n_rows < 0 ? SIZE_MAX : (size_t)n_rows;
    j.skip_footer = (size_t)skip_footer;
    j.chunk_size = (size_t)chunk_size;
    j.sync_window = (size_t)sync_window;
    j.nthreads = nthreads;
    mg_csv_code rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mg_csv_read(&j);
    Py_END_ALLOW_THREADS
    res = rc == MG_CSV_OK ? job_result(st, &j) : error_result(&j);
    mg_csv_job_free(&j);
done:
    read_args_free(&a);
    return res;
}

/* ---- _csv_row, _csv_line_of ---- */

static PyObject *
csv_row(PyObject *mod, PyObject *args)
{
    (void)mod;
    Py_buffer view;
    PyObject *dial;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "y*On:_csv_row", &view, &dial, &pos)) {
        return NULL;
    }
    mg_csv_dialect d;
    PyObject *res = NULL;
    if (dialect_from(dial, &d) < 0) {
        goto done;
    }
    if (pos < 0 || pos > view.len) {
        PyErr_SetString(PyExc_ValueError, "position out of the buffer");
        goto done;
    }
    mg_csv_piece p;
    size_t next = (size_t)pos;
    mg_csv_error err;
    memset(&err, 0, sizeof(err));
    long nf = mg_csv_row(&d, view.buf, (size_t)pos, (size_t)view.len, &p,
                         &next, &err);
    if (nf < 0) {
        if (err.code == MG_CSV_ENOMEM) {
            PyErr_NoMemory();
        }
        else {
            res = Py_BuildValue("(Oinnnn)", Py_False, (int)err.code,
                                (Py_ssize_t)0, (Py_ssize_t)err.pos,
                                (Py_ssize_t)err.field, (Py_ssize_t)0);
        }
        mg_csv_piece_free(&p);
        goto done;
    }
    PyObject *fields = PyList_New(nf);
    for (long i = 0; fields != NULL && i < nf; i++) {
        PyObject *b = PyBytes_FromStringAndSize(
            p.data + p.offs[i], (Py_ssize_t)(p.offs[i + 1] - p.offs[i]));
        if (b == NULL) {
            Py_CLEAR(fields);
            break;
        }
        PyList_SET_ITEM(fields, i, b);
    }
    mg_csv_piece_free(&p);
    if (fields != NULL) {
        res = Py_BuildValue("(ONn)", Py_True, fields, (Py_ssize_t)next);
    }
done:
    PyBuffer_Release(&view);
    return res;
}

static PyObject *
csv_line_of(PyObject *mod, PyObject *args)
{
    (void)mod;
    Py_buffer view;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "y*n:_csv_line_of", &view, &pos)) {
        return NULL;
    }
    if (pos < 0 || pos > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "position out of the buffer");
        return NULL;
    }
    size_t line = mg_csv_line_of(view.buf, (size_t)pos);
    PyBuffer_Release(&view);
    return PyLong_FromSize_t(line);
}

static PyMethodDef csv_methods[] = {
    {"_csv_read", (PyCFunction)(void (*)(void))csv_read,
     METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("Internal: one CSV read (multigil.csv.read_csv).")},
    {"_csv_row", csv_row, METH_VARARGS,
     PyDoc_STR("Internal: _csv_row(buf, dialect, pos) -> (True, fields, "
               "next) or an error tuple.")},
    {"_csv_line_of", csv_line_of, METH_VARARGS,
     PyDoc_STR("Internal: the 1-based line of a byte position.")},
    {NULL, NULL, 0, NULL},
};

int
mg_csv_module_add(PyObject *mod, mg_state *st)
{
    (void)st;
    return PyModule_AddFunctions(mod, csv_methods);
}
