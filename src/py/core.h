/* core.h - included first by every C file of multigil._core.
 *
 * Owns: the module state struct (one per interpreter), error codes shared by
 * the C layers, raw-allocation macros and the Python-version shims.
 * Rule: nothing declared here holds a PyObject that crosses interpreters;
 * mg_state belongs to exactly one interpreter.
 */
#ifndef MG_CORE_H
#define MG_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#if PY_VERSION_HEX < 0x030C0000
#error "multigil needs CPython 3.12 or newer (per-interpreter GIL, PEP 684)"
#endif

#define MG_PY313 (PY_VERSION_HEX >= 0x030D0000)
#define MG_PY314 (PY_VERSION_HEX >= 0x030E0000)

/* Error codes and raw allocation come from the pure-C layer. */
#include "base.h"

/* Most handle kinds one interpreter registers (handles.h). */
#define MG_HANDLE_TYPES_MAX 8
struct mg_handle_type;

/* Per-interpreter module state. Each concern keeps its own block of fields;
 * all are strong references owned by this interpreter's module. */
typedef struct mg_state {
    /* module.c / errors.c */
    PyObject *MultigilError;     /* base of our exceptions */
    PyObject *BrokenPool;        /* (MultigilError, BrokenExecutor) */
    PyObject *NotShareableError; /* (MultigilError, TypeError) */
    PyObject *RemoteTraceback;   /* cause carrying a worker's traceback */

    /* pool.c */
    PyTypeObject *PoolType;
    PyObject *str_set_result;    /* interned method names */
    PyObject *str_set_exception;

    /* codec.c, codefn.c */
    PyObject *pickle_dumps;
    PyObject *pickle_loads;
    PyObject *pickle_error;   /* pickle.PicklingError */
    PyObject *pickler_type;   /* multigil._picklers.HandlePickler, lazy */
    PyObject *unpickler_type; /* multigil._picklers.HandleUnpickler, lazy */
    PyObject *bytesio_type;   /* io.BytesIO */
    PyObject *partial_type;   /* functools.partial */
    PyObject *codefn_helper;  /* multigil._codefn.global_names, lazy */
    PyObject *fn_cache;       /* dict: TAG_FNREF record bytes -> function */
    PyObject *code_cache;     /* dict: id(code) -> (code, marshal, names) */
    PyObject *code_by_bytes;  /* dict: marshal bytes -> code (decoder) */

    /* handles.c: static const C data, registered at module init */
    const struct mg_handle_type *handle_types[MG_HANDLE_TYPES_MAX];
    int nhandle_types;

    /* sharedarray.c */
    PyTypeObject *SharedArrayType;

    /* kernels.c */
    PyTypeObject *StatsType; /* struct sequence returned by stats() */

    /* queue.c */
    PyTypeObject *QueueType;
    PyObject *QueueEmpty;  /* (MultigilError, queue.Empty) */
    PyObject *QueueFull;   /* (MultigilError, queue.Full) */
    PyObject *QueueClosed; /* MultigilError */

    /* sync.c: Event, Lock, RLock, Semaphore, BoundedSemaphore, Barrier,
     * Condition (indexed by mg_sync_type) */
    PyTypeObject *sync_types[7];
    PyObject *BrokenBarrierError; /* threading.BrokenBarrierError */

    /* output.c */
    PyTypeObject *OutWriterType; /* a worker's sys.stdout / sys.stderr */
    PyTypeObject *OutHookType;   /* its logging import hook */
    PyObject *out_deliver;       /* multigil._output.deliver, lazy */
    struct mg_out_port *out_port; /* this worker's port (C, the pool's) */
} mg_state;

extern PyModuleDef mg_module_def;

mg_state *mg_state_from_module(PyObject *mod);
mg_state *mg_state_from_type(PyTypeObject *tp);
/* State of multigil._core in the current interpreter (imports it if
 * needed). Returns NULL with an exception set on failure. */
mg_state *mg_state_current(void);

/* Each concern registers its types and functions; -1 with exception. */
int mg_errors_module_add(PyObject *mod, mg_state *st);
int mg_codec_module_add(PyObject *mod, mg_state *st);
int mg_pool_module_add(PyObject *mod, mg_state *st);
int mg_shared_module_add(PyObject *mod, mg_state *st);
int mg_queue_module_add(PyObject *mod, mg_state *st);
int mg_sync_module_add(PyObject *mod, mg_state *st);
int mg_buildinfo_module_add(PyObject *mod, mg_state *st);
int mg_output_module_add(PyObject *mod, mg_state *st);

/* Each concern traverses and clears its own fields of mg_state. */
int mg_errors_state_traverse(mg_state *st, visitproc visit, void *arg);
void mg_errors_state_clear(mg_state *st);
int mg_codec_state_traverse(mg_state *st, visitproc visit, void *arg);
void mg_codec_state_clear(mg_state *st);
int mg_pool_state_traverse(mg_state *st, visitproc visit, void *arg);
void mg_pool_state_clear(mg_state *st);
int mg_shared_state_traverse(mg_state *st, visitproc visit, void *arg);
void mg_shared_state_clear(mg_state *st);
int mg_kernels_state_traverse(mg_state *st, visitproc visit, void *arg);
void mg_kernels_state_clear(mg_state *st);
int mg_queue_state_traverse(mg_state *st, visitproc visit, void *arg);
void mg_queue_state_clear(mg_state *st);
int mg_sync_state_traverse(mg_state *st, visitproc visit, void *arg);
void mg_sync_state_clear(mg_state *st);
int mg_output_state_traverse(mg_state *st, visitproc visit, void *arg);
void mg_output_state_clear(mg_state *st);

#endif /* MG_CORE_H */
