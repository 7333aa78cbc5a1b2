/* base.h - included first by every file of the pure-C layer (src/base).
 *
 * Owns: the error codes shared by the C layers and the allocation macros
 * for memory that crosses threads and interpreters.
 * Rule: nothing under src/base includes Python.h; every function there may
 * run on any thread, with or without an interpreter attached, and is
 * tested by the C tests in tests/c (also under ThreadSanitizer).
 */
#ifndef MG_BASE_H
#define MG_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Memory that may be freed by another thread or interpreter: plain
 * malloc, never PyMem_Malloc/PyObject_Malloc (those are per-interpreter).
 * Every allocation that crosses goes through these, and so does its free. */
#define MG_RAW_MALLOC(n) malloc(n)
#define MG_RAW_CALLOC(n, s) calloc((n), (s))
#define MG_RAW_REALLOC(p, n) realloc((p), (n))
#define MG_RAW_FREE(p) free(p)

/* Error codes of the C layers (no Python API below the glue; errors.c in
 * src/py turns them into exceptions). */
typedef enum mg_err {
    MG_OK = 0,
    MG_ENOMEM = -1,
    MG_ECLOSED = -2,
    MG_ETIMEDOUT = -3,
    MG_ESYS = -4,
    MG_ECORRUPT = -5,
    MG_ETOOBIG = -6,
    MG_EBROKEN = -7,
    MG_EINTR = -8,
    MG_EEMPTY = -9,
    MG_EFULL = -10,
    MG_EZERODIV = -11, /* integer division by zero (kernels) */
    MG_EDTYPE = -12,   /* a dtype code the operation does not handle */
} mg_err;

#endif /* MG_BASE_H */
