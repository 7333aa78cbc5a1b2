/* waitpy.c - timeout parsing and the sliced, signal-checking blocking
 * call that every wait of the Python layer's channels goes through
 * (waitpy.h).
 * Locks: none of its own; fn takes its object's. Never: call fn with the
 * GIL held, or hide a signal handler's exception.
 */
#include "waitpy.h"
#include "wait.h"

#include <math.h>

/* Timeouts beyond this (about 31 years) wait forever. */
#define MAX_TIMEOUT_S 1e9

static int
seconds_of(PyObject *timeout, double *secs)
{
    *secs = PyFloat_AsDouble(timeout);
    if (*secs == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (isnan(*secs)) {
        PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
        return -1;
    }
    return 0;
}

static int64_t
deadline_after(double secs)
{
    if (secs <= 0) {
        return 0;
    }
    if (secs > MAX_TIMEOUT_S) {
        return -1;
    }
    return mg_monotonic_ns() + (int64_t)(secs * 1e9);
}

int
mg_deadline_queue(int block, PyObject *timeout, int64_t *deadline)
{
    double secs;
    if (!block) {
        *deadline = 0;
        return 0;
    }
    if (timeout == NULL || timeout == Py_None) {
        *deadline = -1;
        return 0;
    }
    if (seconds_of(timeout, &secs) < 0) {
        return -1;
    }
    if (secs < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "'timeout' must be a non-negative number");
        return -1;
    }
    *deadline = deadline_after(secs);
    return 0;
}

/* threading.TIMEOUT_MAX, computed as _thread computes it. */
static double
threading_timeout_max(void)
{
    double t = (double)PY_TIMEOUT_MAX * 1e-6;
    double clock_max = (double)INT64_MAX * 1e-9;
    return floor(t < clock_max ? t : clock_max);
}

int
mg_deadline_threading(int blocking, PyObject *timeout, int64_t *deadline)
{
    double secs = -1;
    if (timeout != NULL && timeout != Py_None
        && seconds_of(timeout, &secs) < 0) {
        return -1;
    }
    if (!blocking) {
        if (secs != -1) {
            PyErr_SetString(PyExc_ValueError,
                            "can't specify a timeout for a non-blocking call");
            return -1;
        }
        *deadline = 0;
        return 0;
    }
    if (secs < 0 && secs != -1) {
        PyErr_SetString(PyExc_ValueError,
                        "timeout value must be a non-negative number");
        return -1;
    }
    if (secs > threading_timeout_max()) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return -1;
    }
    *deadline = secs == -1 ? -1 : deadline_after(secs);
    return 0;
}

int
mg_deadline_wait(PyObject *timeout, int64_t *deadline)
{
    double secs;
    if (timeout == NULL || timeout == Py_None) {
        *deadline = -1;
        return 0;
    }
    if (seconds_of(timeout, &secs) < 0) {
        return -1;
    }
    *deadline = deadline_after(secs);
    return 0;
}

int
mg_block_call(mg_blocking_fn fn, void *arg, int64_t deadline_ns)
{
    int first = 1;
    for (;;) {
        int rc;
        if (deadline_ns == 0) {
            rc = fn(arg, 0, first); /* never sleeps: keep the GIL */
        }
        else {
            Py_BEGIN_ALLOW_THREADS
            rc = fn(arg, deadline_ns, first);
            Py_END_ALLOW_THREADS
        }
        if (rc != MG_EINTR) {
            return rc;
        }
        if (PyErr_CheckSignals() < 0) {
            return MG_EINTR;
        }
        first = 0;
    }
}
