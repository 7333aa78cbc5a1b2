/* excinfo.h - exceptions that cross from a worker to its caller. */
#ifndef MG_EXCINFO_H
#define MG_EXCINFO_H

#include "core.h"
#include "buf.h"

/* traceback.format_exception(exc) joined into one str, or NULL with an
 * exception set. */
PyObject *mg_format_traceback(PyObject *exc);
/* The formatted traceback of the current exception (which is cleared) as
 * a new malloc'd UTF-8 string of at most max_bytes, cut only at a
 * character boundary; never NULL unless out of memory. */
char *mg_current_exception_text(size_t max_bytes);
/* Encodes (exc, type name, message, traceback text) for exc into out.
 * Falls back to a description when exc itself cannot cross. Never fails
 * with an exception set. */
void mg_encode_exception(mg_state *wst, PyObject *exc, mg_buf *out);
/* Encodes the current exception (which is cleared) into out. */
void mg_encode_current_exception(mg_state *wst, mg_buf *out);
/* Builds (exc, name, msg, tb) for exc, as mg_encode_exception sends it;
 * NULL with an exception set. */
PyObject *mg_exception_info(PyObject *exc);
/* In the caller: the exception for decoded info, with the worker's
 * traceback as its __cause__ (a RemoteTraceback). New reference. */
PyObject *mg_build_remote_exception(mg_state *ost, PyObject *info);
/* A malloc'd copy of s, cut to at most max_bytes at a UTF-8 character
 * boundary; NULL when out of memory. */
char *mg_utf8_dup(const char *s, size_t max_bytes);

#endif
