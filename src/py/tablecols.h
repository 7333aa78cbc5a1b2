/* tablecols.h - C loops over the columns of a multigil.Table. */
#ifndef MG_TABLECOLS_H
#define MG_TABLECOLS_H

#include "core.h"

int mg_tablecols_module_add(PyObject *mod, mg_state *st);

#endif
