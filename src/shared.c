/* shared.c - SharedArray: typed views on shared blocks (see block.h).
 *
 * Placeholder until the SharedArray issue lands: registers nothing.
 */
#include "core.h"

int
mg_shared_module_add(PyObject *mod, mg_state *st)
{
    (void)mod;
    (void)st;
    return 0;
}
