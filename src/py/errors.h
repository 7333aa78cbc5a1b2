/* errors.h - the single place where C error codes become Python exceptions. */
#ifndef MG_ERRORS_H
#define MG_ERRORS_H
#include "core.h"

/* Raise the exception for err, with a printf-style context message.
 * Always returns NULL. */
PyObject *mg_raise(mg_state *st, mg_err err, const char *fmt, ...);
/* Creates multigil.BrokenPool on first use (see errors.c); -1 on error. */
int mg_errors_ensure_broken_pool(PyObject *mod, mg_state *st);

#endif
