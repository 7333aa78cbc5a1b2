/* sync.c - multigil._core.Event, Lock, RLock, Semaphore, BoundedSemaphore,
 * Barrier and Condition: threading's API over mg_sync (sync.h), one
 * Python type per primitive, all one handle kind, so that they cross to
 * tasks inside any value.
 *
 * Owns: those types, argument checking, the owner of the calling thread
 * ((interpreter id, thread id): see docs/queue.md), the mapping of
 * release errors to threading's exceptions, and a Barrier's action (kept
 * on the object made with it; encoded into the mg_sync when the barrier
 * first leaves its interpreter, and run by the last arrival with no lock
 * held).
 * Locks: none of its own; mg_sync takes its mutexes inside each call.
 * Never: wait with the GIL held (mg_block_call), or leave a Condition's
 * lock released when wait() returns or raises.
 */
#include "core.h"
#include "codec.h"
#include "handles.h"
#include "sync.h"
#include "waitpy.h"

typedef struct {
    PyObject_HEAD
    mg_sync *s;          /* one reference */
    PyObject *action;    /* a Barrier made here: its action, called as is
                            when this object's wait() arrives last */
    PyObject *weakrefs;
    unsigned long encoding_in; /* the thread encoding the action, or 0 */
} MgSyncObject;

#define SYNC(o) (((MgSyncObject *)(o))->s)

static mg_owner
current_owner(void)
{
    mg_owner o = {PyInterpreterState_GetID(PyInterpreterState_Get()),
                  (uint64_t)PyThread_get_thread_ident()};
    return o;
}

static PyObject *
sync_wrap(mg_state *st, mg_sync *s)
{
    MgSyncObject *self = PyObject_GC_New(MgSyncObject,
                                         st->sync_types[s->type]);
    if (self == NULL) {
        return NULL;
    }
    mg_handle_incref(&s->h);
    self->s = s;
    self->action = NULL;
    self->weakrefs = NULL;
    self->encoding_in = 0;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* A new object of type (a sync type of this module) over a new mg_sync. */
static PyObject *
sync_make(PyTypeObject *type, mg_sync_type kind, int64_t value, mg_sync *lock)
{
    mg_state *st = mg_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    mg_sync *s = mg_sync_new(kind, value, lock);
    if (s == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *self = sync_wrap(st, s);
    mg_sync_decref(s);
    return self;
}

static int
Sync_traverse(MgSyncObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->action);
    return 0;
}

static int
Sync_clear(MgSyncObject *self)
{
    Py_CLEAR(self->action);
    return 0;
}

static void
Sync_dealloc(MgSyncObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Sync_clear(self);
    mg_sync_decref(self->s);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

/* threading's repr of each primitive, with this module's type name. */
static PyObject *
Sync_repr(MgSyncObject *self)
{
    mg_sync *s = self->s;
    const char *name = Py_TYPE(self)->tp_name;
    int64_t value, bound, count;
    int broken;
    pthread_mutex_lock(&s->mu);
    value = s->value;
    bound = s->bound;
    count = s->count;
    broken = s->broken;
    pthread_mutex_unlock(&s->mu);
    switch (s->type) {
    case MG_SYNC_LOCK:
        return PyUnicode_FromFormat("<%s %s object at %p>",
                                    value ? "locked" : "unlocked", name, self);
    case MG_SYNC_RLOCK:
        return PyUnicode_FromFormat("<%s %s object count=%lld at %p>",
                                    value ? "locked" : "unlocked", name,
                                    (long long)value, self);
    case MG_SYNC_EVENT:
        return PyUnicode_FromFormat("<%s at %p: %s>", name, self,
                                    value ? "set" : "unset");
    case MG_SYNC_SEMAPHORE:
        return PyUnicode_FromFormat("<%s at %p: value=%lld>", name, self,
                                    (long long)value);
    case MG_SYNC_BOUNDED:
        return PyUnicode_FromFormat("<%s at %p: value=%lld/%lld>", name, self,
                                    (long long)value, (long long)bound);
    case MG_SYNC_BARRIER:
        if (broken) {
            return PyUnicode_FromFormat("<%s at %p: broken>", name, self);
        }
        return PyUnicode_FromFormat("<%s at %p: waiters=%lld/%lld>", name,
                                    self, (long long)count, (long long)bound);
    default:
        return PyUnicode_FromFormat("<%s at %p>", name, self);
    }
}

static PyObject *
Sync_reduce(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyErr_Format(PyExc_TypeError, "a multigil %s crosses interpreters only "
                 "as a handle through multigil (pass it to a task, or put it "
                 "in a Queue); it cannot be pickled on its own",
                 Py_TYPE(self)->tp_name);
    return NULL;
}

static int
no_args(PyObject *args, PyObject *kwds, const char *name)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
        return -1;
    }
    return 0;
}

/* ---- blocking calls ---- */

typedef struct {
    mg_sync *s;
    mg_owner me;
    int64_t gen;
    mg_cond_waiter *w;
} sync_call;

static int
acquire_fn(void *arg, int64_t deadline, int first)
{
    sync_call *c = arg;
    return mg_sync_acquire(c->s, c->me, deadline, 0, first);
}

static int
event_fn(void *arg, int64_t deadline, int first)
{
    (void)first;
    sync_call *c = arg;
    return mg_event_wait(c->s, c->gen, deadline, 0);
}

static int
barrier_fn(void *arg, int64_t deadline, int first)
{
    (void)first;
    sync_call *c = arg;
    return mg_barrier_wait_gen(c->s, c->gen, deadline, 0);
}

static int
cond_fn(void *arg, int64_t deadline, int first)
{
    (void)first;
    sync_call *c = arg;
    return mg_cond_wait(c->s, c->w, deadline, 0);
}

/* True/False for an acquire with this deadline; NULL on a signal. */
static PyObject *
sync_acquire(mg_sync *s, int64_t deadline)
{
    sync_call c = {s, current_owner(), 0, NULL};
    int rc = mg_block_call(acquire_fn, &c, deadline);
    if (rc == MG_EINTR) {
        return NULL;
    }
    return PyBool_FromLong(rc == MG_OK);
}

/* ---- Lock, RLock ---- */

static PyObject *
Lock_acquire(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"blocking", "timeout", NULL};
    int blocking = 1;
    PyObject *timeout = NULL;
    int64_t deadline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pO:acquire", kwlist,
                                     &blocking, &timeout)
        || mg_deadline_threading(blocking, timeout, &deadline) < 0) {
        return NULL;
    }
    return sync_acquire(SYNC(self), deadline);
}

static PyObject *
Sync_release(PyObject *self, PyObject *unused)
{
    (void)unused;
    if (mg_sync_release(SYNC(self), current_owner(), 1) != MG_OK) {
        PyErr_SetString(PyExc_RuntimeError,
                        SYNC(self)->type == MG_SYNC_RLOCK
                            ? "cannot release un-acquired lock"
                            : "release unlocked lock");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Sync_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return sync_acquire(SYNC(self), -1);
}

static PyObject *
Sync_exit(PyObject *self, PyObject *args)
{
    (void)args;
    if (SYNC(self)->type == MG_SYNC_SEMAPHORE
        || SYNC(self)->type == MG_SYNC_BOUNDED) {
        if (mg_sync_release(SYNC(self), current_owner(), 1) != MG_OK) {
            PyErr_SetString(PyExc_ValueError,
                            "Semaphore released too many times");
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return Sync_release(self, NULL);
}

static PyObject *
Lock_locked(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(mg_sync_locked(SYNC(self)));
}

static PyObject *
Lock_is_owned(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(mg_sync_owned(SYNC(self), current_owner()));
}

static PyObject *
Lock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return no_args(args, kwds, "Lock") < 0
               ? NULL : sync_make(type, MG_SYNC_LOCK, 0, NULL);
}

static PyObject *
RLock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return no_args(args, kwds, "RLock") < 0
               ? NULL : sync_make(type, MG_SYNC_RLOCK, 0, NULL);
}

#define KW (METH_VARARGS | METH_KEYWORDS)
#define FN(f) ((PyCFunction)(void (*)(void))(f))

/* What Lock and RLock share (acquire's doc names threading.Lock). */
#define LOCK_METHODS                                                     \
    {"acquire", FN(Lock_acquire), KW,                                    \
     PyDoc_STR("acquire(blocking=True, timeout=-1)\n--\n\nAs "            \
               "threading.Lock.acquire; Ctrl-C interrupts the wait.")},  \
    {"release", Sync_release, METH_NOARGS, PyDoc_STR("release()\n--\n\n")}, \
    {"locked", Lock_locked, METH_NOARGS, PyDoc_STR("locked()\n--\n\n")},  \
    {"_is_owned", Lock_is_owned, METH_NOARGS, NULL},                     \
    {"__enter__", Sync_enter, METH_NOARGS, NULL},                        \
    {"__exit__", Sync_exit, METH_VARARGS, NULL},                         \
    {"__reduce__", Sync_reduce, METH_NOARGS, NULL}

static PyMethodDef Lock_methods[] = {
    LOCK_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyObject *
RLock_recursion_count(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLongLong(mg_rlock_count(SYNC(self), current_owner()));
}

static PyMethodDef RLock_methods[] = {
    LOCK_METHODS,
    {"_recursion_count", RLock_recursion_count, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* ---- Semaphore, BoundedSemaphore ---- */

static PyObject *
sem_new(PyTypeObject *type, PyObject *args, PyObject *kwds, mg_sync_type k)
{
    static char *kwlist[] = {"value", NULL};
    long long value = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|L", kwlist, &value)) {
        return NULL;
    }
    if (value < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "semaphore initial value must be >= 0");
        return NULL;
    }
    return sync_make(type, k, value, NULL);
}

static PyObject *
Semaphore_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return sem_new(type, args, kwds, MG_SYNC_SEMAPHORE);
}

static PyObject *
Bounded_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return sem_new(type, args, kwds, MG_SYNC_BOUNDED);
}

static PyObject *
Semaphore_acquire(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"blocking", "timeout", NULL};
    int blocking = 1;
    PyObject *timeout = Py_None;
    int64_t deadline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pO:acquire", kwlist,
                                     &blocking, &timeout)) {
        return NULL;
    }
    if (!blocking && timeout != Py_None) {
        PyErr_SetString(PyExc_ValueError,
                        "can't specify timeout for non-blocking acquire");
        return NULL;
    }
    if (mg_deadline_wait(blocking ? timeout : NULL, &deadline) < 0) {
        return NULL;
    }
    return sync_acquire(SYNC(self), blocking ? deadline : 0);
}

static PyObject *
Semaphore_release(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", NULL};
    long long n = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|L:release", kwlist, &n)) {
        return NULL;
    }
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be one or more");
        return NULL;
    }
    if (mg_sync_release(SYNC(self), current_owner(), n) != MG_OK) {
        PyErr_SetString(PyExc_ValueError,
                        "Semaphore released too many times");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Semaphore_methods[] = {
    {"acquire", FN(Semaphore_acquire), KW,
     PyDoc_STR("acquire(blocking=True, timeout=None)\n--\n\nAs "
               "threading.Semaphore.acquire.")},
    {"release", FN(Semaphore_release), KW,
     PyDoc_STR("release(n=1)\n--\n\n")},
    {"__enter__", Sync_enter, METH_NOARGS, NULL},
    {"__exit__", Sync_exit, METH_VARARGS, NULL},
    {"__reduce__", Sync_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* ---- Event ---- */

static PyObject *
Event_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return no_args(args, kwds, "Event") < 0
               ? NULL : sync_make(type, MG_SYNC_EVENT, 0, NULL);
}

static PyObject *
Event_set(PyObject *self, PyObject *unused)
{
    (void)unused;
    mg_event_set(SYNC(self));
    Py_RETURN_NONE;
}

static PyObject *
Event_clear(PyObject *self, PyObject *unused)
{
    (void)unused;
    mg_event_clear(SYNC(self));
    Py_RETURN_NONE;
}

static PyObject *
Event_is_set(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(mg_event_is_set(SYNC(self)));
}

static PyObject *
Event_wait(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    int64_t deadline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:wait", kwlist, &timeout)
        || mg_deadline_wait(timeout, &deadline) < 0) {
        return NULL;
    }
    sync_call c = {SYNC(self), current_owner(),
                   mg_event_generation(SYNC(self)), NULL};
    int rc = mg_block_call(event_fn, &c, deadline);
    return rc == MG_EINTR ? NULL : PyBool_FromLong(rc == MG_OK);
}

static PyMethodDef Event_methods[] = {
    {"set", Event_set, METH_NOARGS, PyDoc_STR("set()\n--\n\n")},
    {"clear", Event_clear, METH_NOARGS, PyDoc_STR("clear()\n--\n\n")},
    {"is_set", Event_is_set, METH_NOARGS, PyDoc_STR("is_set()\n--\n\n")},
    {"wait", FN(Event_wait), KW,
     PyDoc_STR("wait(timeout=None)\n--\n\nTrue once set, False on "
               "timeout; Ctrl-C interrupts it.")},
    {"__reduce__", Sync_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* ---- Barrier ---- */

static PyObject *
barrier_broken_error(mg_state *st)
{
    PyErr_SetNone(st->BrokenBarrierError);
    return NULL;
}

/* The first time a Barrier with an action leaves the interpreter that made
 * it, its action is encoded (by reference or as code, as a task's
 * function) into the barrier, for the parties elsewhere: whichever
 * arrives last rebuilds and calls it. An action that refers to its own
 * barrier would keep it alive forever, so such a barrier stays in its
 * interpreter. */
static PyObject *
barrier_refers_to_itself(mg_state *st)
{
    PyErr_SetString(st->NotShareableError, "a Barrier whose action refers "
                    "to the barrier itself cannot leave its interpreter "
                    "(it would never be freed)");
    return NULL;
}

static int
barrier_export_action(mg_state *st, MgSyncObject *self)
{
    if (self->action == NULL || mg_barrier_action(self->s) != NULL) {
        return 0;
    }
    unsigned long me = PyThread_get_thread_ident();
    if (self->encoding_in == me) { /* met again inside its own action */
        barrier_refers_to_itself(st);
        return -1;
    }
    /* Another thread may encode it too meanwhile (pickling can switch
     * threads): both encodings are equal, and the first one set wins. */
    mg_buf buf = MG_BUF_INIT;
    unsigned long outer = self->encoding_in;
    self->encoding_in = me;
    int rc = mg_codec_encode(st, self->action, &buf);
    self->encoding_in = outer;
    for (size_t i = 0; rc == 0 && i < buf.nhandles; i++) {
        if (buf.handles[i] == &self->s->h) {
            barrier_refers_to_itself(st);
            rc = -1;
        }
    }
    if (rc == 0 && mg_barrier_set_action(self->s, &buf) != MG_OK) {
        PyErr_NoMemory();
        rc = -1;
    }
    mg_buf_release(&buf);
    return rc;
}

/* The last arrival of generation gen runs the action: the callable itself
 * through the object that was made with it, else the encoded copy rebuilt
 * in this interpreter. An exception breaks the barrier and propagates. */
static int
barrier_run_action(mg_state *st, MgSyncObject *self, int64_t gen)
{
    mg_sync *s = self->s;
    PyObject *fn = NULL;
    if (self->action != NULL) {
        fn = Py_NewRef(self->action);
    }
    else if (mg_barrier_action(s) != NULL) {
        fn = mg_codec_decode(st, mg_barrier_action(s));
    }
    else {
        PyErr_SetString(PyExc_RuntimeError, "multigil.Barrier: the action "
                        "is missing (the barrier never left its interpreter)");
    }
    PyObject *res = fn != NULL ? PyObject_CallNoArgs(fn) : NULL;
    Py_XDECREF(fn);
    mg_barrier_finish(s, gen, res != NULL);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static int
barrier_idle_fn(void *arg, int64_t deadline, int first)
{
    (void)first;
    return mg_barrier_wait_idle(((sync_call *)arg)->s, deadline, 0);
}

/* mg_barrier_enter, waiting (GIL released) while another arrival runs the
 * action of the generation before. */
static int
barrier_enter(sync_call *c, int64_t deadline, int64_t *index, int *released)
{
    for (;;) {
        int rc = mg_barrier_enter(c->s, index, &c->gen, released);
        if (rc != MG_EFULL) {
            return rc;
        }
        rc = mg_block_call(barrier_idle_fn, c, deadline);
        if (rc != MG_OK) {
            return rc;
        }
    }
}

static PyObject *
Barrier_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"parties", "action", "timeout", NULL};
    long long parties;
    PyObject *action = Py_None, *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "L|OO:Barrier", kwlist,
                                     &parties, &action, &timeout)) {
        return NULL;
    }
    if (parties < 1) {
        PyErr_SetString(PyExc_ValueError, "parties must be >= 1");
        return NULL;
    }
    if (action != Py_None && !PyCallable_Check(action)) {
        PyErr_Format(PyExc_TypeError, "action must be callable, not %.100s",
                     Py_TYPE(action)->tp_name);
        return NULL;
    }
    double secs = -1;
    if (timeout != Py_None) {
        secs = PyFloat_AsDouble(timeout);
        if (secs == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        if (!(secs >= 0)) {
            PyErr_SetString(PyExc_ValueError, "timeout must be >= 0");
            return NULL;
        }
    }
    PyObject *self = sync_make(type, MG_SYNC_BARRIER, parties, NULL);
    if (self == NULL) {
        return NULL;
    }
    SYNC(self)->timeout_ns = secs < 0 ? -1 : (int64_t)(secs * 1e9);
    if (action != Py_None) {
        SYNC(self)->has_action = 1; /* set before the barrier is shared */
        ((MgSyncObject *)self)->action = Py_NewRef(action);
    }
    return self;
}

static PyObject *
Barrier_wait(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    int64_t deadline, index;
    int released;
    mg_sync *s = SYNC(self);
    mg_state *st = mg_state_from_type(Py_TYPE(self));
    if (st == NULL
        || !PyArg_ParseTupleAndKeywords(args, kwds, "|O:wait", kwlist,
                                        &timeout)
        || mg_deadline_wait(timeout, &deadline) < 0) {
        return NULL;
    }
    if (timeout == Py_None && s->timeout_ns >= 0) {
        deadline = mg_monotonic_ns() + s->timeout_ns;
    }
    sync_call c = {s, current_owner(), 0, NULL};
    int rc = barrier_enter(&c, deadline, &index, &released);
    if (rc == MG_EINTR) {
        return NULL;
    }
    if (rc == MG_ETIMEDOUT) {
        mg_barrier_abort(s); /* as a timed-out wait breaks it */
    }
    if (rc != MG_OK) {
        return barrier_broken_error(st);
    }
    if (released == 2
        && barrier_run_action(st, (MgSyncObject *)self, c.gen) < 0) {
        return NULL;
    }
    if (!released) {
        rc = mg_block_call(barrier_fn, &c, deadline);
        if (rc == MG_EINTR) {
            mg_barrier_abort(s); /* as threading: an error breaks it */
            return NULL;
        }
        if (rc != MG_OK) {
            return barrier_broken_error(st);
        }
    }
    return PyLong_FromLongLong(index);
}

static PyObject *
Barrier_reset(PyObject *self, PyObject *unused)
{
    (void)unused;
    mg_barrier_reset(SYNC(self));
    Py_RETURN_NONE;
}

static PyObject *
Barrier_abort(PyObject *self, PyObject *unused)
{
    (void)unused;
    mg_barrier_abort(SYNC(self));
    Py_RETURN_NONE;
}

static PyObject *
Barrier_parties(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(SYNC(self)->bound);
}

static PyObject *
Barrier_n_waiting(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(mg_barrier_n_waiting(SYNC(self)));
}

static PyObject *
Barrier_broken(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(mg_barrier_broken(SYNC(self)));
}

static PyMethodDef Barrier_methods[] = {
    {"wait", FN(Barrier_wait), KW,
     PyDoc_STR("wait(timeout=None)\n--\n\nAs threading.Barrier.wait: the "
               "arrival index; BrokenBarrierError if broken or timed out.")},
    {"reset", Barrier_reset, METH_NOARGS, PyDoc_STR("reset()\n--\n\n")},
    {"abort", Barrier_abort, METH_NOARGS, PyDoc_STR("abort()\n--\n\n")},
    {"__reduce__", Sync_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Barrier_getset[] = {
    {"parties", Barrier_parties, NULL, NULL, NULL},
    {"n_waiting", Barrier_n_waiting, NULL, NULL, NULL},
    {"broken", Barrier_broken, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- Condition ---- */

static PyObject *
Condition_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"lock", NULL};
    PyObject *lock = Py_None;
    mg_state *st = mg_state_from_type(type);
    if (st == NULL || !PyArg_ParseTupleAndKeywords(args, kwds, "|O:Condition",
                                                   kwlist, &lock)) {
        return NULL;
    }
    if (lock == Py_None) {
        mg_sync *r = mg_sync_new(MG_SYNC_RLOCK, 0, NULL);
        if (r == NULL) {
            return PyErr_NoMemory();
        }
        PyObject *self = sync_make(type, MG_SYNC_CONDITION, 0, r);
        mg_sync_decref(r);
        return self;
    }
    if (!PyObject_TypeCheck(lock, st->sync_types[MG_SYNC_LOCK])
        && !PyObject_TypeCheck(lock, st->sync_types[MG_SYNC_RLOCK])) {
        PyErr_SetString(PyExc_TypeError, "multigil.Condition needs a "
                        "multigil.Lock or multigil.RLock");
        return NULL;
    }
    return sync_make(type, MG_SYNC_CONDITION, 0, SYNC(lock));
}

static PyObject *
Condition_acquire(PyObject *self, PyObject *args, PyObject *kwds)
{
    mg_state *st = mg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    PyObject *lock = sync_wrap(st, SYNC(self)->lock);
    if (lock == NULL) {
        return NULL;
    }
    PyObject *r = Lock_acquire(lock, args, kwds);
    Py_DECREF(lock);
    return r;
}

static PyObject *
Condition_release(PyObject *self, PyObject *unused)
{
    (void)unused;
    mg_sync *l = SYNC(self)->lock;
    if (mg_sync_release(l, current_owner(), 1) != MG_OK) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Condition_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return sync_acquire(SYNC(self)->lock, -1);
}

static PyObject *
Condition_exit(PyObject *self, PyObject *args)
{
    (void)args;
    return Condition_release(self, NULL);
}

static int
restore_fn(void *arg, int64_t deadline, int first)
{
    (void)deadline;
    (void)first;
    sync_call *c = arg;
    return mg_cond_restore(c->s, c->me, c->gen, 0);
}

/* Condition.wait with a deadline: 1 notified, 0 timed out, -1 error. The
 * lock is held again on every return. */
static int
cond_wait(mg_sync *cond, int64_t deadline)
{
    mg_cond_waiter w;
    sync_call c = {cond, current_owner(), 0, &w};
    if (mg_cond_begin(cond, c.me, &w, &c.gen) != MG_OK) {
        PyErr_SetString(PyExc_RuntimeError, "cannot wait on un-acquired lock");
        return -1;
    }
    int rc = mg_block_call(cond_fn, &c, deadline);
    if (rc == MG_EINTR) {
        /* Interrupted: leave the queue before w goes out of scope. */
        PyObject *exc = PyErr_GetRaisedException();
        Py_BEGIN_ALLOW_THREADS
        (void)mg_cond_wait(cond, &w, 0, 0);
        Py_END_ALLOW_THREADS
        PyErr_SetRaisedException(exc);
    }
    /* Re-take the lock whatever happened; keep any pending exception. */
    PyObject *exc = PyErr_GetRaisedException();
    while (mg_block_call(restore_fn, &c, -1) == MG_EINTR) {
        if (exc == NULL) {
            exc = PyErr_GetRaisedException();
        }
        else {
            PyErr_Clear();
        }
    }
    if (exc != NULL) {
        PyErr_SetRaisedException(exc);
        return -1;
    }
    return rc == MG_OK;
}

static PyObject *
Condition_wait(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    int64_t deadline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:wait", kwlist, &timeout)
        || mg_deadline_wait(timeout, &deadline) < 0) {
        return NULL;
    }
    int r = cond_wait(SYNC(self), deadline);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
Condition_wait_for(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"predicate", "timeout", NULL};
    PyObject *pred, *timeout = Py_None;
    int64_t deadline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:wait_for", kwlist,
                                     &pred, &timeout)
        || mg_deadline_wait(timeout, &deadline) < 0) {
        return NULL;
    }
    for (;;) {
        PyObject *result = PyObject_CallNoArgs(pred);
        if (result == NULL) {
            return NULL;
        }
        int ok = PyObject_IsTrue(result);
        if (ok != 0 || (deadline >= 0 && mg_monotonic_ns() >= deadline)) {
            if (ok < 0) {
                Py_CLEAR(result);
            }
            return result;
        }
        Py_DECREF(result);
        if (cond_wait(SYNC(self), deadline) < 0) {
            return NULL;
        }
    }
}

static PyObject *
Condition_notify(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", NULL};
    long long n = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|L:notify", kwlist, &n)) {
        return NULL;
    }
    if (mg_cond_notify(SYNC(self), current_owner(), n) != MG_OK) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot notify on un-acquired lock");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Condition_notify_all(PyObject *self, PyObject *unused)
{
    (void)unused;
    if (mg_cond_notify(SYNC(self), current_owner(), INT64_MAX) != MG_OK) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot notify on un-acquired lock");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Condition_methods[] = {
    {"acquire", FN(Condition_acquire), KW,
     PyDoc_STR("acquire(blocking=True, timeout=-1)\n--\n\n")},
    {"release", Condition_release, METH_NOARGS, NULL},
    {"__enter__", Condition_enter, METH_NOARGS, NULL},
    {"__exit__", Condition_exit, METH_VARARGS, NULL},
    {"wait", FN(Condition_wait), KW,
     PyDoc_STR("wait(timeout=None)\n--\n\nAs threading.Condition.wait.")},
    {"wait_for", FN(Condition_wait_for), KW,
     PyDoc_STR("wait_for(predicate, timeout=None)\n--\n\n")},
    {"notify", FN(Condition_notify), KW, PyDoc_STR("notify(n=1)\n--\n\n")},
    {"notify_all", Condition_notify_all, METH_NOARGS, NULL},
    {"__reduce__", Sync_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* ---- types ---- */

#define SYNC_SPEC(var, pyname, newfn, methods, getset, doc)              \
    static PyType_Slot var##_slots[] = {                                 \
        {Py_tp_new, newfn},                                              \
        {Py_tp_dealloc, Sync_dealloc},                                   \
        {Py_tp_traverse, Sync_traverse},                                 \
        {Py_tp_clear, Sync_clear},                                       \
        {Py_tp_repr, Sync_repr},                                         \
        {Py_tp_members, sync_members},                                   \
        {Py_tp_methods, methods},                                        \
        {Py_tp_getset, getset},                                          \
        {Py_tp_doc, PyDoc_STR(doc)},                                     \
        {0, NULL},                                                       \
    };                                                                   \
    static PyType_Spec var = {                                           \
        .name = "multigil." pyname,                                      \
        .basicsize = sizeof(MgSyncObject),                               \
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE           \
                 | Py_TPFLAGS_HAVE_GC,                                   \
        .slots = var##_slots,                                            \
    }

static PyGetSetDef no_getset[] = {{NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef sync_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET,
     offsetof(MgSyncObject, weakrefs), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

#define CROSS " shared by every interpreter (crosses to tasks as a handle)."
SYNC_SPEC(Event_spec, "Event", Event_new, Event_methods, no_getset,
          "Event()\n--\n\nthreading.Event" CROSS);
SYNC_SPEC(Lock_spec, "Lock", Lock_new, Lock_methods, no_getset,
          "Lock()\n--\n\nthreading.Lock" CROSS);
SYNC_SPEC(RLock_spec, "RLock", RLock_new, RLock_methods, no_getset,
          "RLock()\n--\n\nthreading.RLock" CROSS " Its owner is the pair "
          "(interpreter, thread).");
SYNC_SPEC(Semaphore_spec, "Semaphore", Semaphore_new, Semaphore_methods,
          no_getset, "Semaphore(value=1)\n--\n\nthreading.Semaphore" CROSS);
SYNC_SPEC(Bounded_spec, "BoundedSemaphore", Bounded_new, Semaphore_methods,
          no_getset,
          "BoundedSemaphore(value=1)\n--\n\nthreading.BoundedSemaphore"
          CROSS);
SYNC_SPEC(Barrier_spec, "Barrier", Barrier_new, Barrier_methods,
          Barrier_getset, "Barrier(parties, action=None, timeout=None)\n--\n"
          "\nthreading.Barrier" CROSS " The action runs in the interpreter"
          " that arrives last.");
SYNC_SPEC(Condition_spec, "Condition", Condition_new, Condition_methods,
          no_getset, "Condition(lock=None)\n--\n\nthreading.Condition"
          CROSS " lock: a multigil Lock or RLock (default: a new RLock).");

static PyType_Spec *const sync_specs[MG_SYNC_NTYPES] = {
    &Event_spec, &Lock_spec, &RLock_spec, &Semaphore_spec,
    &Bounded_spec, &Barrier_spec, &Condition_spec,
};

/* ---- the handle (handles.h): the mg_sync; no metadata ---- */

static int
sync_handle_check(mg_state *st, PyObject *obj)
{
    for (int i = 0; i < MG_SYNC_NTYPES; i++) {
        if (st->sync_types[i] != NULL && Py_IS_TYPE(obj, st->sync_types[i])) {
            return 1;
        }
    }
    return 0;
}

static int
sync_handle_export(mg_state *st, PyObject *obj, mg_handle **h,
                   unsigned char *meta, size_t *meta_len)
{
    (void)meta;
    *meta_len = 0;
    if (barrier_export_action(st, (MgSyncObject *)obj) < 0) {
        return -1;
    }
    *h = &SYNC(obj)->h;
    return 0;
}

static PyObject *
sync_handle_wrap(mg_state *st, mg_handle *h, const unsigned char *meta,
                 size_t meta_len)
{
    (void)meta;
    mg_sync *s = mg_sync_from_handle(h);
    if (s == NULL || meta_len != 0 || (unsigned)s->type >= MG_SYNC_NTYPES) {
        return PyErr_Format(PyExc_ValueError, "invalid sync handle");
    }
    return sync_wrap(st, s);
}

static const mg_handle_type sync_handle_type = {
    &mg_sync_kind, sync_handle_check, sync_handle_export, sync_handle_wrap,
};

int
mg_sync_module_add(PyObject *mod, mg_state *st)
{
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        return -1;
    }
    st->BrokenBarrierError =
        PyObject_GetAttrString(threading, "BrokenBarrierError");
    Py_DECREF(threading);
    if (st->BrokenBarrierError == NULL
        || PyModule_AddObjectRef(mod, "BrokenBarrierError",
                                 st->BrokenBarrierError) < 0) {
        return -1;
    }
    for (int i = 0; i < MG_SYNC_NTYPES; i++) {
        st->sync_types[i] = (PyTypeObject *)PyType_FromModuleAndSpec(
            mod, sync_specs[i], NULL);
        if (st->sync_types[i] == NULL
            || PyModule_AddType(mod, st->sync_types[i]) < 0) {
            return -1;
        }
    }
    return mg_handles_register(st, &sync_handle_type);
}

int
mg_sync_state_traverse(mg_state *st, visitproc visit, void *arg)
{
    for (int i = 0; i < MG_SYNC_NTYPES; i++) {
        Py_VISIT(st->sync_types[i]);
    }
    Py_VISIT(st->BrokenBarrierError);
    return 0;
}

void
mg_sync_state_clear(mg_state *st)
{
    for (int i = 0; i < MG_SYNC_NTYPES; i++) {
        Py_CLEAR(st->sync_types[i]);
    }
    Py_CLEAR(st->BrokenBarrierError);
}
