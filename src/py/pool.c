/* pool.c - the Python type multigil._core.Pool over the C pool (engine.c).
 *
 * Owns: argument checking, encoding of task payloads in the submitting
 * interpreter, task handles (capsules) for cancellation, close/join, the
 * spin before a caller sleeps on a result, the stats() snapshot of the
 * engine's counters, and _core._live_pools() (the
 * exit path's view of the registry). The friendly executor API lives in
 * multigil/pool.py; this type is its private engine.
 * An owner object (made by Pool()) holds the pool's owner reference and
 * ends the pool when freed; wrappers from _live_pools() only hold a
 * reference. Locks: none of its own; engine and queue functions take
 * theirs. Never: wait with the GIL held (joins and spins release it).
 */
#include "engine.h"
#include "codec.h"
#include "errors.h"

#include <math.h>

#include <string.h>

#define TASK_CAPSULE "multigil.task"

typedef struct {
    PyObject_HEAD
    mg_pool *pool; /* one reference */
    int owner;     /* made by Pool(): ends the pool when freed */
    int joined;    /* every worker is done with Python */
} MgPoolObject;

static int
pool_closed(mg_pool *p)
{
    return atomic_load(&p->q.closed);
}

static void
task_capsule_free(PyObject *cap)
{
    mg_task *t = PyCapsule_GetPointer(cap, TASK_CAPSULE);
    if (t != NULL) {
        mg_task_decref(t);
    }
}

static mg_task *
task_from_handle(PyObject *handle)
{
    return PyCapsule_GetPointer(handle, TASK_CAPSULE);
}

static int
pool_check_open(mg_state *st, MgPoolObject *self)
{
    if (pool_closed(self->pool)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot schedule new futures after shutdown");
        return -1;
    }
    if (atomic_load(&self->pool->broken)) {
        PyObject *msg = mg_pool_broken_str(self->pool);
        if (msg != NULL) {
            PyErr_SetObject(st->BrokenPool, msg);
            Py_DECREF(msg);
        }
        return -1;
    }
    return 0;
}

/* Re-raises the current encoding error as NotShareableError. */
static void
raise_not_shareable(mg_state *st, const char *what)
{
    if (PyErr_ExceptionMatches(st->NotShareableError)) {
        return; /* the codec already said what cannot cross, and why */
    }
    PyObject *cause = PyErr_GetRaisedException();
    PyObject *msg = PyUnicode_FromFormat(
        "cannot send %s to a worker interpreter: %S", what, cause);
    if (msg != NULL) {
        PyErr_SetObject(st->NotShareableError, msg);
        Py_DECREF(msg);
        PyObject *exc = PyErr_GetRaisedException();
        PyException_SetCause(exc, cause);
        PyErr_SetRaisedException(exc);
    }
    else {
        Py_DECREF(cause);
    }
}

/* Encodes payload into a new task and queues it; returns its handle. */
static PyObject *
pool_enqueue(MgPoolObject *self, mg_task_kind kind, int target,
             PyObject *future, PyObject *payload)
{
    mg_state *st = mg_state_from_type(Py_TYPE(self));
    if (st == NULL || pool_check_open(st, self) < 0) {
        return NULL;
    }
    mg_task *t = mg_task_new(kind, target);
    if (t == NULL) {
        return PyErr_NoMemory();
    }
    if (mg_codec_encode(st, payload, &t->payload) < 0) {
        mg_task_decref(t);
        raise_not_shareable(st, "the task");
        return NULL;
    }
    t->encoded_bytes = t->payload.len;
    mg_task_incref(t); /* for the handle */
    PyObject *handle = PyCapsule_New(t, TASK_CAPSULE, task_capsule_free);
    if (handle == NULL) {
        mg_task_decref(t);
        mg_task_decref(t);
        return NULL;
    }
    t->future = Py_NewRef(future);
    if (mg_taskq_push(&self->pool->q, t) != MG_OK) {
        Py_CLEAR(t->future);
        mg_task_decref(t);
        Py_DECREF(handle);
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot schedule new futures after shutdown");
        return NULL;
    }
    return handle;
}

/* (fn, args, kwargs) for a call task; NULL with TypeError when args is not
 * a tuple or kwargs neither None nor a dict. */
static PyObject *
call_payload(PyObject *fn, PyObject *args, PyObject *kwargs)
{
    if (!PyTuple_Check(args)) {
        PyErr_SetString(PyExc_TypeError, "args must be a tuple");
        return NULL;
    }
    if (kwargs != Py_None && !PyDict_Check(kwargs)) {
        PyErr_Format(PyExc_TypeError, "kwargs must be a dict or None, not "
                     "%.200s", Py_TYPE(kwargs)->tp_name);
        return NULL;
    }
    return PyTuple_Pack(3, fn, args, kwargs);
}

PyDoc_STRVAR(Pool_submit_doc,
"submit($self, future, fn, args, kwargs, /)\n--\n\n"
"Queue fn(*args, **kwargs); its outcome completes future. Returns the\n"
"task handle.");

static PyObject *
Pool_submit(MgPoolObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "submit() takes 4 arguments");
        return NULL;
    }
    PyObject *payload = call_payload(args[1], args[2], args[3]);
    if (payload == NULL) {
        return NULL;
    }
    PyObject *h = pool_enqueue(self, MG_TASK_CALL, -1, args[0], payload);
    Py_DECREF(payload);
    return h;
}

PyDoc_STRVAR(Pool_submit_chunk_doc,
"submit_chunk($self, future, fn, items, star, /)\n--\n\n"
"Queue fn(*item) (star true) or fn(item) for every item in the list\n"
"items, run in order on one worker. future gets ([results], exc):\n"
"exc is None, or the exception that stopped the chunk after the results\n"
"listed.");

static PyObject *
Pool_submit_chunk(MgPoolObject *self, PyObject *const *args,
                  Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "submit_chunk() takes 4 arguments");
        return NULL;
    }
    if (!PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "items must be a list");
        return NULL;
    }
    PyObject *payload = PyTuple_Pack(3, args[1], args[2], args[3]);
    if (payload == NULL) {
        return NULL;
    }
    PyObject *h = pool_enqueue(self, MG_TASK_CHUNK, -1, args[0], payload);
    Py_DECREF(payload);
    return h;
}

PyDoc_STRVAR(Pool_submit_to_doc,
"submit_to($self, worker, future, fn, args, kwargs, /)\n--\n\n"
"Like submit(), but only the worker with this index runs it.");

static PyObject *
Pool_submit_to(MgPoolObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "submit_to() takes 5 arguments");
        return NULL;
    }
    long index = PyLong_AsLong(args[0]);
    if (index == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (index < 0 || index >= self->pool->nworkers) {
        PyErr_Format(PyExc_IndexError, "no worker %ld in a pool of %d", index,
                     self->pool->nworkers);
        return NULL;
    }
    PyObject *payload = call_payload(args[2], args[3], args[4]);
    if (payload == NULL) {
        return NULL;
    }
    PyObject *h =
        pool_enqueue(self, MG_TASK_CALL, (int)index, args[1], payload);
    Py_DECREF(payload);
    return h;
}

/* Moves t from QUEUED to CANCELLED and hands back its future (a new
 * reference), or returns NULL if a worker already took it. */
static PyObject *
task_cancel(mg_task *t)
{
    int expected = MG_TASK_QUEUED;
    if (!atomic_compare_exchange_strong(&t->state, &expected,
                                        MG_TASK_CANCELLED)) {
        return NULL;
    }
    PyObject *fut = (PyObject *)t->future;
    t->future = NULL;
    return fut;
}

PyDoc_STRVAR(Pool_cancel_doc,
"cancel($self, handle, /)\n--\n\n"
"Cancel the task if no worker has started it. Returns True if it will\n"
"never run.");

static PyObject *
Pool_cancel(MgPoolObject *self, PyObject *handle)
{
    (void)self;
    mg_task *t = task_from_handle(handle);
    if (t == NULL) {
        return NULL;
    }
    PyObject *fut = task_cancel(t);
    if (fut != NULL) {
        Py_DECREF(fut);
        Py_RETURN_TRUE;
    }
    return PyBool_FromLong(atomic_load(&t->state) == MG_TASK_CANCELLED);
}

PyDoc_STRVAR(Pool_encoded_bytes_doc,
"encoded_bytes($self, handle, /)\n--\n\n"
"Size of the task's encoded payload when it was queued.");

static PyObject *
Pool_encoded_bytes(MgPoolObject *self, PyObject *handle)
{
    (void)self;
    mg_task *t = task_from_handle(handle);
    if (t == NULL) {
        return NULL;
    }
    return PyLong_FromSize_t(t->encoded_bytes);
}

PyDoc_STRVAR(Pool_started_doc,
"started($self, handle, /)\n--\n\n"
"True once a worker has taken the task.");

static PyObject *
Pool_started(MgPoolObject *self, PyObject *handle)
{
    (void)self;
    mg_task *t = task_from_handle(handle);
    if (t == NULL) {
        return NULL;
    }
    return PyBool_FromLong(atomic_load(&t->state) == MG_TASK_RUNNING);
}

PyDoc_STRVAR(Pool_close_doc,
"close($self, cancel_futures, spare_idle=True, /)\n--\n\n"
"Stop accepting tasks; workers exit when the queue is empty. With\n"
"cancel_futures, queued tasks are dropped and their futures returned in\n"
"a list (the caller cancels them), except (with spare_idle) the first\n"
"ones that idle workers are about to take: an idle worker has started\n"
"the task at the head of the queue, as an idle thread of a thread pool\n"
"would have.");

/* Cancels every queued task but the first `spare` untargeted ones (put
 * back, in order); appends the cancelled futures to out. */
static void
cancel_queued(mg_pool *p, int spare, PyObject *out)
{
    mg_task *t = mg_taskq_drain(&p->q);
    while (t != NULL) {
        mg_task *next = t->next;
        if (spare > 0 && t->target < 0
            && atomic_load(&t->state) == MG_TASK_QUEUED
            && mg_taskq_push(&p->q, t) == MG_OK) {
            spare--;
            t = next;
            continue; /* the queue owns it again */
        }
        PyObject *fut = task_cancel(t);
        if (fut != NULL) {
            if (PyList_Append(out, fut) < 0) {
                PyErr_Clear(); /* cancelled regardless */
            }
            Py_DECREF(fut);
        }
        mg_task_decref(t);
        t = next;
    }
}

static PyObject *
Pool_close(MgPoolObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "close() takes 1 or 2 arguments");
        return NULL;
    }
    int cancel = PyObject_IsTrue(args[0]);
    int spare_idle = nargs < 2 ? 1 : PyObject_IsTrue(args[1]);
    if (cancel < 0 || spare_idle < 0) {
        return NULL;
    }
    PyObject *cancelled = PyList_New(0);
    if (cancelled == NULL) {
        return NULL;
    }
    if (cancel) {
        cancel_queued(self->pool, spare_idle ? mg_pool_idle(self->pool) : 0,
                      cancelled);
    }
    mg_taskq_close(&self->pool->q);
    return cancelled;
}

PyDoc_STRVAR(Pool_join_doc,
"join($self, timeout=None, /)\n--\n\n"
"Wait for every worker to exit (after close()). Returns False on timeout.\n"
"Ctrl-C interrupts the wait.");

static PyObject *
Pool_join(MgPoolObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t timeout_ns = -1;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "join() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        double secs = PyFloat_AsDouble(args[0]);
        if (secs == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        timeout_ns = secs <= 0 ? 0 : (int64_t)(secs * 1e9);
    }
    if (!pool_closed(self->pool)) {
        PyErr_SetString(PyExc_RuntimeError, "join() needs close() first");
        return NULL;
    }
    if (self->joined) {
        Py_RETURN_TRUE;
    }
    if (mg_pool_current() == self->pool) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot wait for a pool's workers from one of them "
                        "(a done-callback runs on the worker that completed "
                        "the future): use shutdown(wait=False) there");
        return NULL;
    }
    int rc = mg_pool_join(self->pool, timeout_ns);
    if (rc < 0) {
        return NULL;
    }
    if (rc == 1) {
        self->joined = 1;
    }
    return PyBool_FromLong(rc);
}

PyDoc_STRVAR(Pool_interrupt_doc,
"interrupt($self, /)\n--\n\n"
"Raise SystemExit inside every task that is running now (it only fires\n"
"while the task runs Python code). Returns how many were interrupted.");

static PyObject *
Pool_interrupt(MgPoolObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(mg_pool_interrupt(self->pool));
}

PyDoc_STRVAR(Pool_spin_doc,
"spin($self, /)\n--\n\n"
"Wait briefly, without the GIL, until any task completes. A result that\n"
"lands during the spin is picked up without a thread wake-up. Spins only\n"
"while recent spins paid off (see wait.h), so it may return at once.");

static PyObject *
Pool_spin(MgPoolObject *self, PyObject *unused)
{
    (void)unused;
    mg_pool *p = self->pool;
    /* Read before releasing the GIL: a completion needs our GIL, so the
     * word cannot move between the caller's check and this read. */
    uint32_t seen = mg_wait_seq(&p->completed);
    Py_BEGIN_ALLOW_THREADS
    (void)mg_spin_changed(&p->completed, seen, &p->result_spin);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *
Pool_get_broken(MgPoolObject *self, void *closure)
{
    (void)closure;
    return mg_pool_broken_str(self->pool);
}

static PyObject *
Pool_get_workers(MgPoolObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(self->pool->nworkers);
}

static PyObject *
Pool_get_completed(MgPoolObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(mg_wait_seq(&self->pool->completed));
}

static PyObject *
Pool_get_queued_bytes(MgPoolObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSize_t(mg_taskq_queued_bytes(&self->pool->q));
}

static PyObject *
Pool_get_name(MgPoolObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_DecodeUTF8(self->pool->name,
                                (Py_ssize_t)strlen(self->pool->name),
                                "replace");
}

static PyObject *
Pool_get_closed(MgPoolObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(pool_closed(self->pool));
}

static PyObject *
Pool_get_done(MgPoolObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(mg_pool_done(self->pool));
}

static PyObject *
Pool_get_busy(MgPoolObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(mg_pool_busy(self->pool));
}

PyDoc_STRVAR(Pool_stats_doc,
"stats($self, /)\n--\n\n"
"(queued, workers): tasks in the queue that may still run, and for each\n"
"worker a tuple (done, failed, busy_ns, running): tasks finished (failed\n"
"ones included), those that raised, nanoseconds spent running them, and\n"
"whether it runs one now. Counters are read one by one (relaxed), not at\n"
"one instant.");

static PyObject *
Pool_stats(MgPoolObject *self, PyObject *unused)
{
    (void)unused;
    mg_pool *p = self->pool;
    size_t queued;
    Py_BEGIN_ALLOW_THREADS
    queued = mg_taskq_waiting(&p->q); /* takes the queue's lock */
    Py_END_ALLOW_THREADS
    PyObject *workers = PyTuple_New(p->nworkers);
    if (workers == NULL) {
        return NULL;
    }
    for (int i = 0; i < p->nworkers; i++) {
        uint64_t done, failed, busy_ns;
        int running;
        mg_pool_worker_stats(p, i, &done, &failed, &busy_ns, &running);
        PyObject *w = Py_BuildValue("(KKKO)", (unsigned long long)done,
                                    (unsigned long long)failed,
                                    (unsigned long long)busy_ns,
                                    running ? Py_True : Py_False);
        if (w == NULL) {
            Py_DECREF(workers);
            return NULL;
        }
        PyTuple_SET_ITEM(workers, i, w);
    }
    return Py_BuildValue("(nN)", (Py_ssize_t)queued, workers);
}

PyDoc_STRVAR(Pool_on_worker_thread_doc,
"on_worker_thread($self, /)\n--\n\n"
"True when called on one of this pool's worker threads (in a\n"
"done-callback of one of its futures).");

static PyObject *
Pool_on_worker_thread(MgPoolObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(mg_pool_current() == self->pool);
}

/* A Python object for p holding a new reference; owner says whether it
 * ends the pool when freed. */
static PyObject *
pool_wrap(PyTypeObject *type, mg_pool *p, int owner)
{
    MgPoolObject *self = (MgPoolObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    mg_pool_incref(p);
    self->pool = p;
    self->owner = owner;
    return (PyObject *)self;
}

/* Validates spin_us (a finite number >= 0) and converts it, capped at
 * 100 ms, to nanoseconds; -1 with ValueError. */
static int
spin_ns_from_us(double spin_us, int64_t *out)
{
    if (!isfinite(spin_us) || spin_us < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "spin_us must be a finite number >= 0");
        return -1;
    }
    if (spin_us > 100000.0) {
        spin_us = 100000.0;
    }
    *out = (int64_t)(spin_us * 1000.0);
    return 0;
}

static PyObject *
Pool_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"workers",  "sys_path",  "initializer",
                             "initargs", "max_tasks", "spin_us",
                             "name",     "output",    "log_level",
                             NULL};
    int workers;
    PyObject *sys_path, *initializer, *initargs;
    long max_tasks;
    double spin_us;
    const char *name;
    int output = 0, log_level = 30;
    int64_t spin_ns;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iOOO!lds|pi:Pool", kwlist,
                                     &workers, &sys_path, &initializer,
                                     &PyTuple_Type, &initargs, &max_tasks,
                                     &spin_us, &name, &output, &log_level)) {
        return NULL;
    }
    if (workers < 1 || workers > 1024) {
        PyErr_Format(PyExc_ValueError,
                     "workers must be between 1 and 1024, not %d", workers);
        return NULL;
    }
    if (max_tasks < 0) {
        PyErr_SetString(PyExc_ValueError, "max_tasks must be >= 0");
        return NULL;
    }
    if (spin_ns_from_us(spin_us, &spin_ns) < 0) {
        return NULL;
    }
    PyObject *mod = PyType_GetModuleByDef(type, &mg_module_def);
    if (mod == NULL) {
        return NULL;
    }
    mg_state *st = mg_state_from_module(mod);
    if (mg_errors_ensure_broken_pool(mod, st) < 0) {
        return NULL;
    }
    mg_buf init = MG_BUF_INIT;
    if (initializer != Py_None) {
        PyObject *pair = PyTuple_Pack(2, initializer, initargs);
        if (pair == NULL) {
            return NULL;
        }
        int rc = mg_codec_encode(st, pair, &init);
        Py_DECREF(pair);
        if (rc < 0) {
            mg_buf_release(&init);
            raise_not_shareable(st, "the initializer");
            return NULL;
        }
    }
    mg_pool *p = mg_pool_start(st, workers, sys_path, &init, max_tasks,
                               spin_ns, name, output, log_level);
    mg_buf_release(&init); /* empty unless start failed early */
    if (p == NULL) {
        return NULL;
    }
    PyObject *self = pool_wrap(type, p, 1);
    mg_pool_decref(p); /* the object holds it now (or failed: orphan) */
    if (self == NULL) {
        mg_pool_incref(p);
        mg_pool_orphan(p);
    }
    return self;
}

static int
runtime_finalizing(void)
{
#if MG_PY313
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing(); /* public as Py_IsFinalizing from 3.13 */
#endif
}

/* The owner object is freed before its pool was joined. */
static void
pool_end_unjoined(mg_pool *p)
{
    if (mg_pool_current() == p) {
        /* The last reference went away in a done-callback on one of our
         * own workers: it cannot wait for itself. The last worker to exit
         * unregisters the pool; the exit path still sees it until then. */
        mg_pool_incref(p);
        mg_pool_orphan(p);
        return;
    }
    mg_taskq_close(&p->q);
    if (runtime_finalizing()) {
        /* Too late to wait (workers cannot take the owner's GIL any
         * more); the exit hook ended the pool long before. */
        return;
    }
    /* Dropped without shutdown: finish queued work, as the stdlib
     * executors do, then wait for the threads. */
    PyObject *exc = PyErr_GetRaisedException();
    while (mg_pool_join(p, -1) < 0) {
        PyErr_Clear();
    }
    PyErr_SetRaisedException(exc);
    mg_registry_remove(p);
}

static void
Pool_dealloc(MgPoolObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    mg_pool *p = self->pool;
    if (p != NULL && self->owner) {
        if (self->joined) {
            mg_registry_remove(p);
        }
        else {
            pool_end_unjoined(p); /* joins the threads, even if all exited */
        }
    }
    mg_pool_decref(p);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

PyDoc_STRVAR(core_live_pools_doc,
"_live_pools($module, /)\n--\n\n"
"Every pool this interpreter started whose workers may still run Python,\n"
"orphans included, oldest first, as engine objects (the exit path ends\n"
"them).");

static PyObject *
core_live_pools(PyObject *mod, PyObject *unused)
{
    (void)unused;
    mg_state *st = mg_state_from_module(mod);
    size_t n = 0;
    mg_pool **pools = mg_registry_snapshot(
        PyInterpreterState_GetID(PyInterpreterState_Get()), &n);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; i < n; i++) {
        PyObject *w = list ? pool_wrap(st->PoolType, pools[i], 0) : NULL;
        if (w == NULL || PyList_Append(list, w) < 0) {
            Py_CLEAR(list);
        }
        Py_XDECREF(w);
        mg_pool_decref(pools[i]);
    }
    MG_RAW_FREE(pools);
    return list;
}

PyDoc_STRVAR(core_pool_types_doc,
"_pool_types($module, /)\n--\n\n"
"Create the exception types that only pools need (BrokenPool); the\n"
"multigil.pool module calls this once at import.");

static PyObject *
core_pool_types(PyObject *mod, PyObject *unused)
{
    (void)unused;
    if (mg_errors_ensure_broken_pool(mod, mg_state_from_module(mod)) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Pool_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))Pool_submit, METH_FASTCALL,
     Pool_submit_doc},
    {"submit_chunk", (PyCFunction)(void (*)(void))Pool_submit_chunk,
     METH_FASTCALL, Pool_submit_chunk_doc},
    {"submit_to", (PyCFunction)(void (*)(void))Pool_submit_to, METH_FASTCALL,
     Pool_submit_to_doc},
    {"cancel", (PyCFunction)Pool_cancel, METH_O, Pool_cancel_doc},
    {"started", (PyCFunction)Pool_started, METH_O, Pool_started_doc},
    {"encoded_bytes", (PyCFunction)Pool_encoded_bytes, METH_O,
     Pool_encoded_bytes_doc},
    {"close", (PyCFunction)(void (*)(void))Pool_close, METH_FASTCALL,
     Pool_close_doc},
    {"join", (PyCFunction)(void (*)(void))Pool_join, METH_FASTCALL,
     Pool_join_doc},
    {"interrupt", (PyCFunction)Pool_interrupt, METH_NOARGS,
     Pool_interrupt_doc},
    {"spin", (PyCFunction)Pool_spin, METH_NOARGS, Pool_spin_doc},
    {"on_worker_thread", (PyCFunction)Pool_on_worker_thread, METH_NOARGS,
     Pool_on_worker_thread_doc},
    {"stats", (PyCFunction)Pool_stats, METH_NOARGS, Pool_stats_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Pool_getset[] = {
    {"broken", (getter)Pool_get_broken, NULL,
     PyDoc_STR("Why the pool is broken, or None."), NULL},
    {"workers", (getter)Pool_get_workers, NULL,
     PyDoc_STR("Number of worker interpreters."), NULL},
    {"completed", (getter)Pool_get_completed, NULL,
     PyDoc_STR("Tasks completed so far (modulo 2**32)."), NULL},
    {"name", (getter)Pool_get_name, NULL, PyDoc_STR("The pool's name."),
     NULL},
    {"closed", (getter)Pool_get_closed, NULL,
     PyDoc_STR("True once close() was called."), NULL},
    {"done", (getter)Pool_get_done, NULL,
     PyDoc_STR("True once every worker is done with Python."), NULL},
    {"busy", (getter)Pool_get_busy, NULL,
     PyDoc_STR("How many workers are running a task now."), NULL},
    {"queued_bytes", (getter)Pool_get_queued_bytes, NULL,
     PyDoc_STR("Bytes of encoded tasks waiting for a worker."), NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Pool_slots[] = {
    {Py_tp_new, Pool_new},
    {Py_tp_dealloc, Pool_dealloc},
    {Py_tp_methods, Pool_methods},
    {Py_tp_getset, Pool_getset},
    {Py_tp_doc, PyDoc_STR("Engine of multigil.Pool: worker interpreters fed "
                          "by a C task queue.")},
    {0, NULL},
};

static PyType_Spec Pool_spec = {
    .name = "multigil._core.Pool",
    .basicsize = sizeof(MgPoolObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Pool_slots,
};

int
mg_pool_module_add(PyObject *mod, mg_state *st)
{
    st->str_set_result = PyUnicode_InternFromString("set_result");
    st->str_set_exception = PyUnicode_InternFromString("set_exception");
    if (st->str_set_result == NULL || st->str_set_exception == NULL) {
        return -1;
    }
    static PyMethodDef defs[] = {
        {"_pool_types", core_pool_types, METH_NOARGS, core_pool_types_doc},
        {"_live_pools", core_live_pools, METH_NOARGS, core_live_pools_doc},
        {NULL, NULL, 0, NULL},
    };
    if (PyModule_AddFunctions(mod, defs) < 0) {
        return -1;
    }
    st->PoolType =
        (PyTypeObject *)PyType_FromModuleAndSpec(mod, &Pool_spec, NULL);
    if (st->PoolType == NULL) {
        return -1;
    }
    return PyModule_AddType(mod, st->PoolType);
}

int
mg_pool_state_traverse(mg_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->PoolType);
    Py_VISIT(st->str_set_result);
    Py_VISIT(st->str_set_exception);
    return 0;
}

void
mg_pool_state_clear(mg_state *st)
{
    Py_CLEAR(st->PoolType);
    Py_CLEAR(st->str_set_result);
    Py_CLEAR(st->str_set_exception);
}
