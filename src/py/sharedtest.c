/* sharedtest.c - test hooks for the SharedArray handle interface.
 *
 * Owns: multigil._core._shared_describe / _shared_from_desc (the calls of
 * shared.h, driven from Python in one interpreter), a "parking lot"
 * (_shared_park / _shared_unpark / _shared_parked) that moves a handle
 * between interpreters as a plain integer id, so the cross-interpreter
 * lifetime of blocks can be tested without the codec, and
 * _shared_forge_dtype (a view whose dtype is in no table, to test that no
 * dispatch falls back to another dtype's loop). Not public API.
 *
 * The lot is process-global C state: a list behind park_mu. Each entry
 * owns one block reference until it is unparked (or the process exits).
 * No function returns with park_mu held.
 *
 * Compiled in only with -DMG_TEST_HOOKS (the Makefile's test and asan
 * targets); a plain build or `pip install .` registers nothing here, so the
 * product never ships these functions.
 */
#include "shared.h"
#include "sharedarray.h"

#ifndef MG_TEST_HOOKS

int
mg_sharedtest_module_add(PyObject *mod, mg_state *st)
{
    (void)mod;
    (void)st;
    return 0;
}

#else

#include <pthread.h>
#include <stdlib.h>

typedef struct park_entry {
    uint64_t id;
    mg_shared_desc desc;     /* desc.block: one owned reference */
    struct park_entry *next; /* owned */
} park_entry;

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static park_entry *park_head; /* protected by park_mu */
static uint64_t park_next_id = 1; /* protected by park_mu */
static size_t park_count;  /* protected by park_mu */

/* ---- C core (no Python API) ---- */

static uint64_t
park_put(park_entry *e)
{
    pthread_mutex_lock(&park_mu);
    e->id = park_next_id++;
    e->next = park_head;
    park_head = e;
    park_count++;
    uint64_t id = e->id;
    pthread_mutex_unlock(&park_mu);
    return id;
}

/* The entry with this id, unlinked, or NULL. */
static park_entry *
park_take(uint64_t id)
{
    park_entry *found = NULL;
    pthread_mutex_lock(&park_mu);
    for (park_entry **pp = &park_head; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            found = *pp;
            *pp = found->next;
            park_count--;
            break;
        }
    }
    pthread_mutex_unlock(&park_mu);
    return found;
}

static size_t
park_size(void)
{
    pthread_mutex_lock(&park_mu);
    size_t n = park_count;
    pthread_mutex_unlock(&park_mu);
    return n;
}

/* ---- Python glue ---- */

static PyObject *
core_shared_describe(PyObject *mod, PyObject *arg)
{
    mg_shared_desc d;
    if (mg_shared_describe(mg_state_from_module(mod), arg, &d) < 0) {
        return NULL;
    }
    return Py_BuildValue("(Cnnni)", d.dtype, d.offset, d.length, d.stride,
                         d.readonly);
}

static PyObject *
core_shared_from_desc(PyObject *mod, PyObject *args)
{
    PyObject *arr;
    mg_shared_desc d;
    int code;
    mg_state *st = mg_state_from_module(mod);
    if (!PyArg_ParseTuple(args, "OCnnni:_shared_from_desc", &arr, &code,
                          &d.offset, &d.length, &d.stride, &d.readonly)) {
        return NULL;
    }
    MgSharedArrayObject *a = mg_shared_arg(st, arr, "_shared_from_desc()");
    if (a == NULL) {
        return NULL;
    }
    d.block = a->block;
    d.dtype = (char)code;
    return mg_shared_from_desc(st, &d);
}

static PyObject *
core_shared_park(PyObject *mod, PyObject *arg)
{
    park_entry *e = malloc(sizeof(*e));
    if (e == NULL) {
        return PyErr_NoMemory();
    }
    if (mg_shared_describe(mg_state_from_module(mod), arg, &e->desc) < 0) {
        free(e);
        return NULL;
    }
    mg_block_incref(e->desc.block);
    return PyLong_FromUnsignedLongLong(park_put(e));
}

static PyObject *
core_shared_unpark(PyObject *mod, PyObject *arg)
{
    unsigned long long id = PyLong_AsUnsignedLongLong(arg);
    if (id == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    park_entry *e = park_take(id);
    if (e == NULL) {
        return PyErr_Format(PyExc_KeyError, "no SharedArray parked as %llu",
                            id);
    }
    PyObject *res = mg_shared_from_desc(mg_state_from_module(mod), &e->desc);
    mg_block_decref(e->desc.block); /* the new array holds its own */
    free(e);
    return res;
}

static PyObject *
core_shared_parked(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyLong_FromSize_t(park_size());
}

/* A dtype that is in no table: what a corrupted descriptor would carry. */
static const mg_dtype forged_dtype = {'x', "x8", "forged", 8, MG_KIND_FLOAT,
                                      "d", "g"};

static PyObject *
core_shared_forge_dtype(PyObject *mod, PyObject *arg)
{
    mg_state *st = mg_state_from_module(mod);
    MgSharedArrayObject *a = mg_shared_arg(st, arg, "_shared_forge_dtype()");
    if (a == NULL) {
        return NULL;
    }
    if (!mg_shared_is_contiguous(a) || a->dtype->itemsize != 8) {
        return PyErr_Format(PyExc_ValueError,
                            "_shared_forge_dtype() needs a contiguous array "
                            "of 8-byte items");
    }
    mg_shared_desc d;
    if (mg_shared_describe(st, arg, &d) < 0) {
        return NULL;
    }
    PyObject *res = mg_shared_from_desc(st, &d);
    if (res != NULL) {
        ((MgSharedArrayObject *)res)->dtype = &forged_dtype;
    }
    return res;
}

static PyMethodDef sharedtest_functions[] = {
    {"_shared_forge_dtype", core_shared_forge_dtype, METH_O,
     PyDoc_STR("_shared_forge_dtype($module, a, /)\n--\n\n"
               "A view of a (contiguous, 8-byte items) whose dtype is in no "
               "table, to check that nothing runs the wrong loop for it "
               "(tests only).")},
    {"_shared_describe", core_shared_describe, METH_O,
     PyDoc_STR("_shared_describe($module, a, /)\n--\n\n"
               "(dtype, offset, length, stride, readonly): the handle the "
               "codec sends for a (tests only).")},
    {"_shared_from_desc", core_shared_from_desc, METH_VARARGS,
     PyDoc_STR("_shared_from_desc($module, a, dtype, offset, length, "
               "stride, readonly, /)\n--\n\n"
               "A new array on a's block from an (untrusted) handle "
               "(tests only).")},
    {"_shared_park", core_shared_park, METH_O,
     PyDoc_STR("_shared_park($module, a, /)\n--\n\n"
               "Park a's handle (and a block reference) under a new integer "
               "id that any interpreter can unpark once (tests only).")},
    {"_shared_unpark", core_shared_unpark, METH_O,
     PyDoc_STR("_shared_unpark($module, id, /)\n--\n\n"
               "A SharedArray of this interpreter from a parked handle; "
               "KeyError if id is not parked (tests only).")},
    {"_shared_parked", core_shared_parked, METH_NOARGS,
     PyDoc_STR("_shared_parked($module, /)\n--\n\n"
               "Number of parked handles (tests only).")},
    {NULL, NULL, 0, NULL},
};

int
mg_sharedtest_module_add(PyObject *mod, mg_state *st)
{
    (void)st;
    return PyModule_AddFunctions(mod, sharedtest_functions);
}

#endif /* MG_TEST_HOOKS */
