/* module.c - multigil._core: module init, module state, registration.
 *
 * Owns: the module definition (multi-phase init, per-interpreter-GIL slot)
 * and the table of concerns: each registers its types and functions
 * (mg_<concern>_module_add) and traverses and clears its own fields of
 * mg_state. Every interpreter that imports the module gets its own
 * mg_state; there is no static PyObject anywhere in this extension.
 * Locks: none. Never: keep a PyObject outside mg_state.
 */
#include "core.h"
#include "block.h"
#include "block_cache.h"
#include "csvread.h"
#include "tablecols.h"
#include "kernels.h"
#include "sharedarray.h"

mg_state *
mg_state_from_module(PyObject *mod)
{
    return (mg_state *)PyModule_GetState(mod);
}

mg_state *
mg_state_from_type(PyTypeObject *tp)
{
    PyObject *mod = PyType_GetModuleByDef(tp, &mg_module_def);
    if (mod == NULL) {
        return NULL;
    }
    return mg_state_from_module(mod);
}

mg_state *
mg_state_current(void)
{
    PyObject *mod = PyImport_ImportModule("multigil._core");
    if (mod == NULL) {
        return NULL;
    }
    mg_state *st = mg_state_from_module(mod);
    /* sys.modules keeps the module (and so its state) alive. */
    Py_DECREF(mod);
    return st;
}

static PyObject *
core_live_blocks(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyLong_FromSize_t(mg_block_live_count());
}

static PyObject *
core_block_cache(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    mg_block_cache_stats s;
    mg_block_cache_stats_get(&s);
    return Py_BuildValue("{snsnsnsnsn}", "held_bytes",
                         (Py_ssize_t)s.held_bytes, "entries",
                         (Py_ssize_t)s.entries, "limit_bytes",
                         (Py_ssize_t)s.limit_bytes, "puts",
                         (Py_ssize_t)s.puts, "hits", (Py_ssize_t)s.hits);
}

static PyObject *
core_block_cache_release(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    Py_BEGIN_ALLOW_THREADS
    mg_block_cache_release();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *
core_interpreter_id(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyLong_FromLongLong(
        PyInterpreterState_GetID(PyInterpreterState_Get()));
}

static PyMethodDef core_methods[] = {
    {"_live_blocks", core_live_blocks, METH_NOARGS,
     PyDoc_STR("_live_blocks($module, /)\n--\n\n"
               "Number of shared memory blocks alive in the process.")},
    {"_block_cache", core_block_cache, METH_NOARGS,
     PyDoc_STR("_block_cache($module, /)\n--\n\n"
               "The cache of freed large blocks: bytes held, entries, "
               "limit, and mappings taken (puts) and given out (hits).")},
    {"_release_cached_memory", core_block_cache_release, METH_NOARGS,
     PyDoc_STR("_release_cached_memory($module, /)\n--\n\n"
               "Gives the memory of freed large blocks, kept a second "
               "for reuse, back to the system now.")},
    {"interpreter_id", core_interpreter_id, METH_NOARGS,
     PyDoc_STR("interpreter_id($module, /)\n--\n\n"
               "The id of the interpreter that calls this (0 is the main "
               "interpreter).")},
    {NULL, NULL, 0, NULL},
};

/* Each concern of the module: how it registers its types and functions,
 * and how its own fields of mg_state are traversed and cleared. */
typedef struct mg_concern {
    int (*add)(PyObject *mod, mg_state *st);
    int (*traverse)(mg_state *st, visitproc visit, void *arg);
    void (*clear)(mg_state *st);
} mg_concern;

static const mg_concern concerns[] = {
    {mg_errors_module_add, mg_errors_state_traverse, mg_errors_state_clear},
    {mg_codec_module_add, mg_codec_state_traverse, mg_codec_state_clear},
    {mg_pool_module_add, mg_pool_state_traverse, mg_pool_state_clear},
    {mg_shared_module_add, mg_shared_state_traverse, mg_shared_state_clear},
    {mg_kernels_module_add, mg_kernels_state_traverse,
     mg_kernels_state_clear},
    {mg_csv_module_add, NULL, NULL},
    {mg_table_arrow_module_add, NULL, NULL},
    {mg_tablecols_module_add, NULL, NULL},
    {mg_queue_module_add, mg_queue_state_traverse, mg_queue_state_clear},
    {mg_sync_module_add, mg_sync_state_traverse, mg_sync_state_clear},
    {mg_sharedproc_module_add, NULL, NULL},
    {mg_sharedtest_module_add, NULL, NULL},
    {mg_buildinfo_module_add, NULL, NULL},
    {mg_output_module_add, mg_output_state_traverse, mg_output_state_clear},
};

#define NCONCERNS (sizeof(concerns) / sizeof(concerns[0]))

static int
core_exec(PyObject *mod)
{
    mg_state *st = mg_state_from_module(mod);
    for (size_t i = 0; i < NCONCERNS; i++) {
        if (concerns[i].add(mod, st) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
core_traverse(PyObject *mod, visitproc visit, void *arg)
{
    mg_state *st = mg_state_from_module(mod);
    for (size_t i = 0; i < NCONCERNS; i++) {
        if (concerns[i].traverse != NULL) {
            int rc = concerns[i].traverse(st, visit, arg);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int
core_clear(PyObject *mod)
{
    mg_state *st = mg_state_from_module(mod);
    for (size_t i = 0; i < NCONCERNS; i++) {
        if (concerns[i].clear != NULL) {
            concerns[i].clear(st);
        }
    }
    return 0;
}

static void
core_free(void *mod)
{
    (void)core_clear((PyObject *)mod);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyModuleDef mg_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "multigil._core",
    .m_doc = "C core of multigil: worker interpreters, transport, shared "
             "memory.",
    .m_size = sizeof(mg_state),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC PyInit__core(void);

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&mg_module_def);
}
