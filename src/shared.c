/* shared.c - SharedArray: typed views on shared blocks (see block.h).
 *
 * Placeholder until the SharedArray issue lands: no type is registered and
 * nothing is a SharedArray.
 */
#include "shared.h"

int
mg_shared_check(mg_state *st, PyObject *obj)
{
    (void)st;
    (void)obj;
    return 0;
}

int
mg_shared_describe(mg_state *st, PyObject *obj, mg_shared_desc *desc)
{
    (void)st;
    (void)desc;
    PyErr_Format(PyExc_TypeError, "%.200s is not a SharedArray",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

PyObject *
mg_shared_from_desc(mg_state *st, const mg_shared_desc *desc)
{
    (void)st;
    (void)desc;
    PyErr_SetString(PyExc_ValueError, "SharedArray is not available");
    return NULL;
}

int
mg_shared_module_add(PyObject *mod, mg_state *st)
{
    (void)mod;
    (void)st;
    return 0;
}
