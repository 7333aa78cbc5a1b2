/* waitpy.h - how the Python types of queue.c and sync.c wait: timeout
 * arguments parsed into deadlines, and a blocking C call run with the GIL
 * released, in slices, checking for signals between them (Ctrl-C lands
 * within one slice, MG_WAIT_SLICE_NS). */
#ifndef MG_WAITPY_H
#define MG_WAITPY_H

#include "core.h"

/* A deadline on the mg_monotonic_ns() clock: -1 none, 0 do not wait. */

/* queue.Queue's rules: block false: 0; timeout None: -1; a negative
 * timeout is a ValueError. -1 with an exception. */
int mg_deadline_queue(int block, PyObject *timeout, int64_t *deadline);
/* threading's acquire(blocking, timeout=-1): -1 waits forever; blocking
 * false with a timeout is a ValueError. */
int mg_deadline_threading(int blocking, PyObject *timeout, int64_t *deadline);
/* Event.wait / Barrier.wait / Condition.wait: None forever, <= 0 now. */
int mg_deadline_wait(PyObject *timeout, int64_t *deadline);

/* A blocking call of the C layer: returns MG_EINTR after a slice of
 * sleep (call again; spin only when first is 1), else its result. */
typedef int (*mg_blocking_fn)(void *arg, int64_t deadline_ns, int first);
/* Calls fn with the GIL released until it returns other than MG_EINTR,
 * running signal handlers between slices: MG_EINTR with an exception set
 * when one raised (KeyboardInterrupt), else fn's result. */
int mg_block_call(mg_blocking_fn fn, void *arg, int64_t deadline_ns);

#endif
