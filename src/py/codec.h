/* codec.h - the transport's one narrow interface: values <-> mg_buf.
 *
 * Everything the pool sends (functions, arguments, results, exceptions)
 * goes through these two calls, so the encoding can change behind them.
 */
#ifndef MG_CODEC_H
#define MG_CODEC_H

#include "core.h"
#include "buf.h"

/* Append the encoding of obj to out. The current interpreter owns obj.
 * Returns 0, or -1 with an exception set (out may hold partial data; the
 * caller releases it). */
int mg_codec_encode(mg_state *st, PyObject *obj, mg_buf *out);

/* Decode the value in in (the whole buffer) into a new object of the
 * current interpreter. in is treated as untrusted. NULL with an exception
 * set on failure. */
PyObject *mg_codec_decode(mg_state *st, const mg_buf *in);

#endif
