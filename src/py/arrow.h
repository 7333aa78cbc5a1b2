/* arrow.h - the Arrow PyCapsule interface methods of SharedArray (arrow.c). */
#ifndef MG_ARROW_H
#define MG_ARROW_H

#include "sharedarray.h"

/* SharedArray.__arrow_c_schema__() */
PyObject *mg_arrow_meth_schema(PyObject *self, PyObject *unused);
/* SharedArray.__arrow_c_array__(requested_schema=None) */
PyObject *mg_arrow_meth_array(PyObject *self, PyObject *args, PyObject *kw);

#endif
