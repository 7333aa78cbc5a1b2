/* errors.h - the single place where C error codes become Python exceptions. */
#ifndef MG_ERRORS_H
#define MG_ERRORS_H
#include "core.h"

/* Raise the exception for err, with a printf-style context message.
 * Always returns NULL. */
PyObject *mg_raise(mg_state *st, mg_err err, const char *fmt, ...);
const char *mg_err_name(mg_err err);

#endif
