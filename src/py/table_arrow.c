/* table_arrow.c - the Arrow C stream export of a multigil Table:
 * _core._arrow_stream(columns, nrows) -> PyCapsule "arrow_array_stream"
 * (the Arrow PyCapsule interface's __arrow_c_stream__).
 *
 * Owns: an ArrowArrayStream that yields one struct record batch whose
 * children point straight into the columns' shared blocks (validity,
 * values or int64 offsets, UTF-8 bytes). Every exported array owns one
 * reference to each block it points into, so the consumer may keep any
 * array after releasing the stream or the Table. Release callbacks may run
 * on any thread, with or without an interpreter: raw C only (free,
 * mg_block_decref). Bool columns are bit-packed into a fresh block (Arrow
 * booleans are bits): the one copy. No locks, no global state.
 * Never: call the Python C API from a release callback.
 */
#include "csvread.h"

#include "arrow_abi.h"
#include "sharedarray.h"

#include <string.h>

/* ---- C core (no Python API) ---- */

#define COL_BUFS 3

typedef struct col_plan {
    char *name, *format;
    int64_t length, offset, null_count;
    int nbufs;
    mg_block *blocks[COL_BUFS]; /* one reference each, or NULL */
    const void *bufs[COL_BUFS];
} col_plan;

typedef struct stream_plan {
    col_plan *cols;
    int64_t ncols, nrows;
    int done;
} stream_plan;

static void
col_plan_clear(col_plan *c)
{
    free(c->name);
    free(c->format);
    for (int i = 0; i < COL_BUFS; i++) {
        mg_block_decref(c->blocks[i]);
    }
    memset(c, 0, sizeof(*c));
}

static void
plan_free(stream_plan *p)
{
    if (p == NULL) {
        return;
    }
    for (int64_t i = 0; i < p->ncols; i++) {
        col_plan_clear(&p->cols[i]);
    }
    free(p->cols);
    free(p);
}

/* A child array: owns its block references and buffer pointer array. */
typedef struct child_private {
    mg_block *blocks[COL_BUFS];
    const void *bufs[COL_BUFS];
} child_private;

static void
child_release(struct ArrowArray *a)
{
    child_private *cp = a->private_data;
    if (cp != NULL) {
        for (int i = 0; i < COL_BUFS; i++) {
            mg_block_decref(cp->blocks[i]);
        }
        free(cp);
    }
    a->private_data = NULL;
    a->release = NULL;
}

typedef struct parent_private {
    struct ArrowArray *children; /* ncols */
    struct ArrowArray **child_ptrs;
    int64_t ncols;
    const void *bufs[1];
} parent_private;

static void
parent_release(struct ArrowArray *a)
{
    parent_private *pp = a->private_data;
    if (pp != NULL) {
        for (int64_t i = 0; i < pp->ncols; i++) {
            if (pp->children[i].release != NULL) {
                pp->children[i].release(&pp->children[i]);
            }
        }
        free(pp->children);
        free(pp->child_ptrs);
        free(pp);
    }
    a->private_data = NULL;
    a->release = NULL;
}

static int
child_fill(const col_plan *c, struct ArrowArray *a)
{
    child_private *cp = calloc(1, sizeof(*cp));
    if (cp == NULL) {
        return -1;
    }
    for (int i = 0; i < c->nbufs; i++) {
        cp->blocks[i] = c->blocks[i];
        if (cp->blocks[i] != NULL) {
            mg_block_incref(cp->blocks[i]);
        }
        cp->bufs[i] = c->bufs[i];
    }
    memset(a, 0, sizeof(*a));
    a->length = c->length;
    a->null_count = c->null_count;
    a->offset = c->offset;
    a->n_buffers = c->nbufs;
    a->buffers = cp->bufs;
    a->private_data = cp;
    a->release = child_release;
    return 0;
}

static int
batch_fill(const stream_plan *p, struct ArrowArray *out)
{
    parent_private *pp = calloc(1, sizeof(*pp));
    int64_t n = p->ncols;
    if (pp == NULL) {
        return -1;
    }
    pp->children = calloc((size_t)(n ? n : 1), sizeof(struct ArrowArray));
    pp->child_ptrs = calloc((size_t)(n ? n : 1), sizeof(void *));
    memset(out, 0, sizeof(*out));
    out->private_data = pp;
    out->release = parent_release;
    if (pp->children == NULL || pp->child_ptrs == NULL) {
        parent_release(out);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (child_fill(&p->cols[i], &pp->children[i]) < 0) {
            parent_release(out);
            return -1;
        }
        pp->ncols = i + 1;
        pp->child_ptrs[i] = &pp->children[i];
    }
    pp->bufs[0] = NULL;
    out->length = p->nrows;
    out->n_buffers = 1;
    out->buffers = pp->bufs;
    out->n_children = n;
    out->children = pp->child_ptrs;
    return 0;
}

/* Schema: a struct of named nullable children; strings are copied. */
typedef struct schema_private {
    struct ArrowSchema *children;
    struct ArrowSchema **child_ptrs;
    char **strings; /* 2 per child */
    int64_t n;
} schema_private;

static void
schema_release(struct ArrowSchema *s)
{
    schema_private *sp = s->private_data;
    if (sp != NULL) {
        for (int64_t i = 0; i < sp->n * 2; i++) {
            free(sp->strings[i]);
        }
        free(sp->strings);
        free(sp->children);
        free(sp->child_ptrs);
        free(sp);
    }
    s->private_data = NULL;
    s->release = NULL;
}

static void
child_schema_release(struct ArrowSchema *s)
{
    s->release = NULL; /* strings belong to the parent */
}

static int
schema_fill(const stream_plan *p, struct ArrowSchema *out)
{
    int64_t n = p->ncols;
    schema_private *sp = calloc(1, sizeof(*sp));
    memset(out, 0, sizeof(*out));
    if (sp == NULL) {
        return -1;
    }
    out->private_data = sp;
    out->release = schema_release;
    out->format = "+s";
    out->name = "";
    sp->children = calloc((size_t)(n ? n : 1), sizeof(struct ArrowSchema));
    sp->child_ptrs = calloc((size_t)(n ? n : 1), sizeof(void *));
    sp->strings = calloc((size_t)(n ? 2 * n : 1), sizeof(char *));
    if (sp->children == NULL || sp->child_ptrs == NULL
        || sp->strings == NULL) {
        schema_release(out);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        struct ArrowSchema *c = &sp->children[i];
        sp->strings[2 * i] = strdup(p->cols[i].format);
        sp->strings[2 * i + 1] = strdup(p->cols[i].name);
        sp->n = i + 1;
        if (sp->strings[2 * i] == NULL || sp->strings[2 * i + 1] == NULL) {
            schema_release(out);
            return -1;
        }
        c->format = sp->strings[2 * i];
        c->name = sp->strings[2 * i + 1];
        c->flags = 2; /* ARROW_FLAG_NULLABLE */
        c->release = child_schema_release;
        sp->child_ptrs[i] = c;
    }
    out->n_children = n;
    out->children = sp->child_ptrs;
    return 0;
}

static int
stream_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out)
{
    return schema_fill(s->private_data, out) < 0 ? 12 /* ENOMEM */ : 0;
}

static int
stream_get_next(struct ArrowArrayStream *s, struct ArrowArray *out)
{
    stream_plan *p = s->private_data;
    if (p->done) {
        memset(out, 0, sizeof(*out)); /* release NULL: end of stream */
        return 0;
    }
    if (batch_fill(p, out) < 0) {
        return 12;
    }
    p->done = 1;
    return 0;
}

static const char *
stream_last_error(struct ArrowArrayStream *s)
{
    (void)s;
    return "out of memory";
}

static void
stream_release(struct ArrowArrayStream *s)
{
    plan_free(s->private_data);
    s->private_data = NULL;
    s->release = NULL;
}

/* Bit-packed copy of n one-byte booleans. */
static mg_block *
pack_bools(const uint8_t *src, int64_t n)
{
    mg_block *b = mg_block_new((size_t)(n + 7) / 8);
    if (b == NULL) {
        return NULL;
    }
    uint8_t *bits = b->data;
    for (int64_t i = 0; i < n; i++) {
        if (src[i]) {
            bits[i >> 3] |= (uint8_t)(1u << (i & 7));
        }
    }
    return b;
}

/* ---- Python glue ---- */

static int
plan_buffer(mg_state *st, PyObject *obj, col_plan *c, int i, int bools)
{
    if (obj == Py_None) {
        c->bufs[i] = NULL;
        return 0;
    }
    MgSharedArrayObject *a = mg_shared_arg(st, obj, "Arrow export buffer");
    if (a == NULL) {
        return -1;
    }
    if (!mg_shared_is_contiguous(a)) {
        PyErr_SetString(PyExc_ValueError,
                        "Arrow export needs contiguous column arrays");
        return -1;
    }
    if (bools) {
        c->blocks[i] = pack_bools((const uint8_t *)a->base, a->length);
        if (c->blocks[i] == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->bufs[i] = c->blocks[i]->data;
        return 0;
    }
    mg_block_incref(a->block);
    c->blocks[i] = a->block;
    c->bufs[i] = a->base;
    return 0;
}

/* (name, format, length, offset, null_count, validity, values, data) */
static int
plan_column(mg_state *st, PyObject *spec, col_plan *c)
{
    const char *name, *format;
    PyObject *valid, *values, *data;
    if (!PyArg_ParseTuple(spec, "ssLLLOOO;column spec", &name, &format,
                          &c->length, &c->offset, &c->null_count, &valid,
                          &values, &data)) {
        return -1;
    }
    c->name = strdup(name);
    c->format = strdup(format);
    if (c->name == NULL || c->format == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int is_str = strcmp(format, "U") == 0;
    c->nbufs = is_str ? 3 : 2;
    if (plan_buffer(st, valid, c, 0, 0) < 0
        || plan_buffer(st, values, c, 1, strcmp(format, "b") == 0) < 0
        || (is_str && plan_buffer(st, data, c, 2, 0) < 0)) {
        return -1;
    }
    if (c->bufs[0] == NULL) {
        c->null_count = 0;
    }
    return 0;
}

static void
stream_capsule_destructor(PyObject *cap)
{
    struct ArrowArrayStream *s =
        PyCapsule_GetPointer(cap, "arrow_array_stream");
    if (s == NULL) {
        PyErr_Clear();
        return;
    }
    if (s->release != NULL) {
        s->release(s);
    }
    free(s);
}

static PyObject *
arrow_stream(PyObject *mod, PyObject *args)
{
    PyObject *cols;
    long long nrows;
    if (!PyArg_ParseTuple(args, "O!L:_arrow_stream", &PyList_Type, &cols,
                          &nrows)) {
        return NULL;
    }
    mg_state *st = mg_state_from_module(mod);
    stream_plan *p = calloc(1, sizeof(*p));
    Py_ssize_t n = PyList_GET_SIZE(cols);
    if (p == NULL
        || (p->cols = calloc((size_t)(n ? n : 1), sizeof(col_plan))) == NULL) {
        free(p);
        return PyErr_NoMemory();
    }
    p->nrows = nrows;
    for (Py_ssize_t i = 0; i < n; i++) {
        p->ncols = i + 1;
        if (plan_column(st, PyList_GET_ITEM(cols, i), &p->cols[i]) < 0) {
            plan_free(p);
            return NULL;
        }
    }
    struct ArrowArrayStream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        plan_free(p);
        return PyErr_NoMemory();
    }
    s->get_schema = stream_get_schema;
    s->get_next = stream_get_next;
    s->get_last_error = stream_last_error;
    s->release = stream_release;
    s->private_data = p;
    PyObject *cap = PyCapsule_New(s, "arrow_array_stream",
                                  stream_capsule_destructor);
    if (cap == NULL) {
        stream_release(s);
        free(s);
    }
    return cap;
}

static PyMethodDef table_arrow_methods[] = {
    {"_arrow_stream", arrow_stream, METH_VARARGS,
     PyDoc_STR("Internal: _arrow_stream(column_specs, nrows) -> capsule "
               "(Table.__arrow_c_stream__).")},
    {NULL, NULL, 0, NULL},
};

int
mg_table_arrow_module_add(PyObject *mod, mg_state *st)
{
    (void)st;
    return PyModule_AddFunctions(mod, table_arrow_methods);
}
