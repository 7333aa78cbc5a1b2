/* interp.h - the life of one worker interpreter, on its own thread. */
#ifndef MG_INTERP_H
#define MG_INTERP_H

#include "core.h"

/* Creates an own-GIL interpreter on the calling thread, which must have no
 * thread state. On success returns its thread state, attached (its GIL
 * held). On failure returns NULL, no thread state is current, and *err is
 * a malloc'd message. On 3.12 the creation is serialised with every other
 * one (see interp.c) until mg_interp_created() is called. skip (may be
 * NULL) is asked inside that section: when it returns 1 nothing is created
 * and NULL is returned with *err NULL. */
PyThreadState *mg_interp_create(int (*skip)(void *), void *arg, char **err);
/* Sets sys.path and imports the core; worker GIL held. Returns the
 * worker's module state, or NULL with an exception set. */
mg_state *mg_interp_setup(char *const *sys_path, Py_ssize_t n);
/* Ends the 3.12 creation section begun by mg_interp_create (a no-op on
 * 3.13+). Call once per successful mg_interp_create, after setup. */
void mg_interp_created(void);
/* Ends the interpreter whose thread state ts is current (its GIL held):
 * runs its exit code (thread joins on 3.13+, atexit hooks) with no lock
 * held, then Py_EndInterpreter. Afterwards no thread state is current. */
void mg_interp_end(PyThreadState *ts);

#endif
