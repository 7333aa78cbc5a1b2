/* thread.h - starting a helper thread of the core's own.
 *
 * A helper (the block cache's reaper, the pool's interrupters) never runs
 * user code, so it is started detached and with every signal blocked in
 * it: signals stay with the threads that handle them (Python's main
 * thread), and nobody joins it.
 */
#ifndef MG_THREAD_H
#define MG_THREAD_H

#include <stddef.h>

/* Starts fn(arg) on a detached thread with every signal blocked there
 * (stack bytes of stack, or the default for 0): 0, or the error number of
 * pthread_create. The caller's signal mask is unchanged. */
int mg_thread_start_quiet(void *(*fn)(void *), void *arg, size_t stack);

#endif
