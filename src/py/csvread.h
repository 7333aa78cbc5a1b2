/* csvread.h - registration of the CSV reader's functions (csvread.c) and
 * the Arrow stream export of tables (table_arrow.c) in multigil._core. */
#ifndef MG_CSVREAD_H
#define MG_CSVREAD_H

#include "core.h"

int mg_csv_module_add(PyObject *mod, mg_state *st);
int mg_table_arrow_module_add(PyObject *mod, mg_state *st);

#endif /* MG_CSVREAD_H */
