/* engine.c - the C pool: worker threads, each owning one own-GIL
 * interpreter, their run loop, and completion of the owner's futures.
 *
 *   owner thread (owner GIL)          worker thread k
 *   ------------------------          ---------------------------------
 *   encode (fn, args) -> mg_buf       create its interpreter (interp.c)
 *   mg_taskq_push ---------------->   pop (no GIL: spin, then sleep)
 *                                     take own GIL: decode, call, encode
 *                                     drop own GIL, take owner GIL via
 *                                     owner_ts: decode result, complete
 *   future.result() <-------------    the Future, drop owner GIL
 *
 * Owns: mg_pool (refcounted: see engine.h), worker threads, the run loop,
 * owner completion, start-up, join, interrupt and orphaning, and each
 * worker's stats counters (written by its thread alone, relaxed atomics,
 * counted before the task's future completes). A join waits
 * until every worker is done with Python, then pthread_joins each thread
 * exactly once (a joiner claims a thread under p->mu), so any number of
 * threads may join at once; an orphaned pool's last worker detaches the
 * threads instead. The registry of live pools is registry.c.
 * No PyObject crosses: a task's future is an owner object and is touched
 * only while the owner GIL is held through owner_ts, a thread state of the
 * owner interpreter bound to the worker thread. Results cross as mg_buf.
 * Locks: p->mu (worker status and counters, broken_msg); the task queue's
 * own lock (taskq.c) is never taken while p->mu is held, nor the reverse;
 * registry.c's lock is never nested with p->mu. No lock is held across
 * user code: done-callbacks run in owner_complete with no lock held.
 * Never: block while holding a GIL (every wait drops it first); block
 * signals in worker threads (tasks' threads and child processes inherit
 * the mask); call PyGILState_*.
 * Loop invariant: at the top of the run loop the worker holds no GIL.
 */
#include "engine.h"
#include "codec.h"
#include "excinfo.h"
#include "interp.h"
#include "output.h"
#include "thread.h"

#include <stdio.h>
#include <string.h>

/* Longest broken-pool message kept (the start of a traceback). */
#define MG_BROKEN_MSG_MAX 16384

static _Thread_local mg_worker *tls_worker;

/* ---- references and small state helpers ---- */

static void
pool_free(mg_pool *p)
{
    /* Tasks still queued here never ran; the owner cleared their futures
     * (pool.c) before letting go. */
    mg_task *t = mg_taskq_drain(&p->q);
    while (t != NULL) {
        mg_task *next = t->next;
        mg_task_decref(t);
        t = next;
    }
    mg_taskq_fini(&p->q);
    mg_wait_fini(&p->completed);
    mg_wait_fini(&p->life);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    for (Py_ssize_t i = 0; i < p->nsys_path; i++) {
        MG_RAW_FREE(p->sys_path[i]);
    }
    MG_RAW_FREE(p->sys_path);
    mg_buf_release(&p->init_payload);
    MG_RAW_FREE(p->broken_msg);
    mg_out_free(p->out); /* its thread was joined by the last worker */
    MG_RAW_FREE(p->workers);
    MG_RAW_FREE(p);
}

void
mg_pool_incref(mg_pool *p)
{
    atomic_fetch_add(&p->refcnt, 1);
}

void
mg_pool_decref(mg_pool *p)
{
    if (p != NULL && atomic_fetch_sub(&p->refcnt, 1) == 1) {
        pool_free(p);
    }
}

/* Every started worker is done with Python; p->mu held. */
static int
all_exited_locked(mg_pool *p)
{
    return p->nexited >= p->nstarted;
}

int
mg_pool_done(mg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int done = all_exited_locked(p);
    pthread_mutex_unlock(&p->mu);
    return done;
}

int
mg_pool_busy(mg_pool *p)
{
    int n = 0;
    for (int i = 0; i < p->nworkers; i++) {
        n += atomic_load(&p->workers[i].busy);
    }
    return n;
}

int
mg_pool_idle(mg_pool *p)
{
    int n = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) {
        n += p->workers[i].status == MG_WORKER_RUNNING
             && !atomic_load(&p->workers[i].busy);
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

static void
signal_created(mg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->ncreated++;
    pthread_mutex_unlock(&p->mu);
    mg_wait_wake(&p->life, MG_WAKE_ALL);
}

/* Marks the pool broken with "worker K of pool NAME <what>: <detail>"
 * (the first reason wins). */
static void
pool_set_broken(mg_pool *p, int worker, const char *what, const char *detail)
{
    size_t n = strlen(p->name) + strlen(what) + strlen(detail) + 64;
    char *msg = MG_RAW_MALLOC(n);
    if (msg != NULL) {
        snprintf(msg, n, "worker %d of pool %s %s: %s", worker, p->name,
                 what, detail);
    }
    char *kept = msg ? mg_utf8_dup(msg, MG_BROKEN_MSG_MAX) : NULL;
    MG_RAW_FREE(msg);
    pthread_mutex_lock(&p->mu);
    if (!atomic_load(&p->broken)) {
        p->broken_msg = kept;
        kept = NULL;
        atomic_store(&p->broken, 1);
    }
    pthread_mutex_unlock(&p->mu);
    MG_RAW_FREE(kept);
}

PyObject *
mg_pool_broken_str(mg_pool *p)
{
    if (!atomic_load(&p->broken)) {
        Py_RETURN_NONE;
    }
    pthread_mutex_lock(&p->mu);
    char *copy = mg_utf8_dup(p->broken_msg ? p->broken_msg
                                           : "the pool is broken",
                             MG_BROKEN_MSG_MAX);
    pthread_mutex_unlock(&p->mu);
    if (copy == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *s = PyUnicode_DecodeUTF8(copy, (Py_ssize_t)strlen(copy),
                                       "replace");
    MG_RAW_FREE(copy);
    return s;
}

/* Nobody will join the exited threads of an orphaned pool: let them go by
 * themselves. p->mu held. */
static void
detach_exited_locked(mg_pool *p)
{
    for (int i = 0; i < p->nworkers; i++) {
        mg_worker *w = &p->workers[i];
        if (w->status == MG_WORKER_EXITED && w->have_thread) {
            pthread_detach(w->thread);
            w->status = MG_WORKER_DETACHED;
        }
    }
}

/* ---- inside the worker interpreter (its GIL held) ---- */

typedef enum task_status {
    TASK_OK = 0,     /* CALL: result is the value; CHUNK: ([values], info) */
    TASK_ERROR = 1,  /* result is exception info */
} task_status;

static task_status
run_call(mg_state *wst, PyObject *payload, mg_buf *result)
{
    PyObject *value = NULL;
    if (!PyTuple_Check(payload) || PyTuple_GET_SIZE(payload) != 3) {
        PyErr_SetString(PyExc_SystemError, "multigil: malformed call task");
        goto error;
    }
    PyObject *fn = PyTuple_GET_ITEM(payload, 0);
    PyObject *args = PyTuple_GET_ITEM(payload, 1);
    PyObject *kwargs = PyTuple_GET_ITEM(payload, 2);
    if (!PyTuple_Check(args)
        || (kwargs != Py_None && !PyDict_Check(kwargs))) {
        PyErr_SetString(PyExc_SystemError, "multigil: malformed call task");
        goto error;
    }
    value = PyObject_Call(fn, args, kwargs == Py_None ? NULL : kwargs);
    if (value == NULL) {
        goto error;
    }
    if (mg_codec_encode(wst, value, result) < 0) {
        goto error;
    }
    Py_DECREF(value);
    return TASK_OK;
error:
    Py_XDECREF(value);
    mg_buf_release(result);
    mg_encode_current_exception(wst, result);
    return TASK_ERROR;
}

/* fn(*item) or fn(item); NULL with an exception set. */
static PyObject *
call_item(PyObject *fn, PyObject *item, int star)
{
    if (!star) {
        return PyObject_CallOneArg(fn, item);
    }
    if (!PyTuple_Check(item)) {
        PyErr_Format(PyExc_TypeError,
                     "starmap items must be tuples, not %.200s",
                     Py_TYPE(item)->tp_name);
        return NULL;
    }
    return PyObject_Call(fn, item, NULL);
}

/* *raised: an item raised (the chunk stopped there). */
static task_status
run_chunk(mg_state *wst, PyObject *payload, mg_buf *result, int *raised)
{
    PyObject *values = NULL, *info = Py_NewRef(Py_None), *pair = NULL;
    if (!PyTuple_Check(payload) || PyTuple_GET_SIZE(payload) != 3
        || !PyList_Check(PyTuple_GET_ITEM(payload, 1))) {
        PyErr_SetString(PyExc_SystemError, "multigil: malformed chunk task");
        goto error;
    }
    PyObject *fn = PyTuple_GET_ITEM(payload, 0);
    PyObject *items = PyTuple_GET_ITEM(payload, 1);
    int star = PyObject_IsTrue(PyTuple_GET_ITEM(payload, 2));
    if (star < 0) {
        goto error;
    }
    Py_ssize_t n = PyList_GET_SIZE(items);
    values = PyList_New(0);
    if (values == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = call_item(fn, PyList_GET_ITEM(items, i), star);
        if (v == NULL) {
            /* Keep the results before the failing item. */
            PyObject *exc = PyErr_GetRaisedException();
            Py_SETREF(info, mg_exception_info(exc));
            Py_DECREF(exc);
            if (info == NULL) {
                goto error;
            }
            break;
        }
        int rc = PyList_Append(values, v);
        Py_DECREF(v);
        if (rc < 0) {
            goto error;
        }
    }
    *raised = info != Py_None;
    pair = PyTuple_Pack(2, values, info);
    if (pair == NULL || mg_codec_encode(wst, pair, result) < 0) {
        goto error;
    }
    Py_DECREF(pair);
    Py_DECREF(values);
    Py_DECREF(info);
    return TASK_OK;
error:
    Py_XDECREF(pair);
    Py_XDECREF(values);
    Py_XDECREF(info);
    mg_buf_release(result);
    mg_encode_current_exception(wst, result);
    return TASK_ERROR;
}

/* Runs t in the worker interpreter and encodes its outcome into result.
 * The payload is freed as soon as it is decoded. *raised: the task failed
 * (TASK_ERROR, or an item of a chunk raised). */
static task_status
run_task(mg_state *wst, mg_task *t, mg_buf *result, int *raised)
{
    PyObject *payload = mg_codec_decode(wst, &t->payload);
    mg_buf_release(&t->payload);
    *raised = 1;
    if (payload == NULL) {
        mg_encode_current_exception(wst, result);
        return TASK_ERROR;
    }
    task_status s = t->kind == MG_TASK_CHUNK
                        ? run_chunk(wst, payload, result, raised)
                        : run_call(wst, payload, result);
    if (t->kind != MG_TASK_CHUNK || s == TASK_ERROR) {
        *raised = s == TASK_ERROR;
    }
    Py_DECREF(payload);
    return s;
}

/* ---- in the owner interpreter (owner GIL held via owner_ts) ---- */

/* The value that completes the future of t, and whether it is an
 * exception (*is_exc). New reference; never NULL unless out of memory
 * while building an error (then the exception is set). */
static PyObject *
owner_outcome(mg_state *ost, mg_task *t, task_status status, mg_buf *result,
              int *is_exc)
{
    PyObject *value = mg_codec_decode(ost, result);
    mg_buf_release(result);
    *is_exc = 1;
    if (value == NULL) {
        return PyErr_GetRaisedException();
    }
    PyObject *out;
    if (status == TASK_ERROR) {
        out = mg_build_remote_exception(ost, value);
    }
    else if (t->kind == MG_TASK_CHUNK && PyTuple_Check(value)
             && PyTuple_GET_SIZE(value) == 2
             && PyTuple_GET_ITEM(value, 1) != Py_None) {
        PyObject *exc =
            mg_build_remote_exception(ost, PyTuple_GET_ITEM(value, 1));
        out = exc ? PyTuple_Pack(2, PyTuple_GET_ITEM(value, 0), exc) : NULL;
        Py_XDECREF(exc);
        *is_exc = 0;
    }
    else {
        out = Py_NewRef(value);
        *is_exc = 0;
    }
    Py_DECREF(value);
    if (out == NULL) {
        *is_exc = 1;
        out = PyErr_GetRaisedException();
    }
    return out;
}

/* fut.set_result(arg) or fut.set_exception(arg); runs the done-callbacks
 * (user code), so no lock may be held. Consumes fut. */
static void
owner_set(mg_state *ost, PyObject *fut, PyObject *arg, int is_exc)
{
    PyObject *meth = is_exc ? ost->str_set_exception : ost->str_set_result;
    PyObject *r = PyObject_CallMethodOneArg(fut, meth, arg);
    if (r == NULL) {
        PyErr_WriteUnraisable(fut);
    }
    Py_XDECREF(r);
    Py_DECREF(fut);
}

static void
owner_complete(mg_state *ost, mg_task *t, task_status status, mg_buf *result)
{
    PyObject *fut = (PyObject *)t->future;
    t->future = NULL;
    int is_exc;
    PyObject *arg = owner_outcome(ost, t, status, result, &is_exc);
    owner_set(ost, fut, arg, is_exc);
    Py_XDECREF(arg);
}

/* Fails the future of t with BrokenPool(msg). */
static void
owner_fail(mg_state *ost, mg_task *t, const char *msg)
{
    PyObject *fut = (PyObject *)t->future;
    t->future = NULL;
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg),
                                          "replace");
    PyObject *exc = text ? PyObject_CallOneArg(ost->BrokenPool, text) : NULL;
    Py_XDECREF(text);
    if (exc == NULL) {
        exc = PyErr_GetRaisedException();
    }
    owner_set(ost, fut, exc, 1);
    Py_DECREF(exc);
}

/* ---- worker thread ---- */

/* Decodes and runs the pool's initializer; 0, or -1 with an exception. */
static int
run_initializer(mg_pool *p, mg_state *wst)
{
    if (p->init_payload.len == 0) {
        return 0;
    }
    PyObject *init = mg_codec_decode(wst, &p->init_payload);
    if (init == NULL) {
        return -1;
    }
    PyObject *r = NULL;
    if (PyTuple_Check(init) && PyTuple_GET_SIZE(init) == 2
        && PyTuple_Check(PyTuple_GET_ITEM(init, 1))) {
        r = PyObject_Call(PyTuple_GET_ITEM(init, 0),
                          PyTuple_GET_ITEM(init, 1), NULL);
    }
    else {
        PyErr_SetString(PyExc_SystemError,
                        "multigil: malformed initializer payload");
    }
    Py_DECREF(init);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static int
start_abandoned(void *arg)
{
    mg_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    int abandoned = p->abandoned;
    pthread_mutex_unlock(&p->mu);
    return abandoned;
}

/* Creates the worker's interpreter on this thread and sets it up. On
 * success *ts is attached (worker GIL held) and the state is returned.
 * Otherwise no thread state of the worker is current and the pool is
 * broken (unless start-up was abandoned). first: count the creation for
 * the owner's start-up wait. */
static mg_state *
worker_start_interp(mg_worker *w, PyThreadState **ts, int first)
{
    mg_pool *p = w->pool;
    char *err = NULL;
    *ts = mg_interp_create(start_abandoned, p, &err);
    if (*ts == NULL) {
        if (first) {
            signal_created(p);
        }
        if (err != NULL) {
            pool_set_broken(p, w->index, "could not start", err);
            MG_RAW_FREE(err);
        }
        return NULL;
    }
    mg_state *wst = mg_interp_setup(p->sys_path, p->nsys_path);
    mg_interp_created();
    if (first) {
        signal_created(p);
    }
    if (wst != NULL
        && (p->out == NULL || mg_out_install(p->out, w->index, w->ident) == 0)
        && run_initializer(p, wst) == 0) {
        pthread_mutex_lock(&p->mu);
        w->interp = PyThreadState_GetInterpreter(*ts);
        pthread_mutex_unlock(&p->mu);
        w->tasks_done = 0;
        return wst;
    }
    char *detail = mg_current_exception_text(MG_BROKEN_MSG_MAX);
    pool_set_broken(p, w->index, "could not start",
                    detail ? detail : "out of memory");
    MG_RAW_FREE(detail);
    mg_interp_end(*ts);
    *ts = NULL;
    return NULL;
}

/* Ends the worker's interpreter; called with no GIL held. */
static void
worker_end_interp(mg_worker *w, PyThreadState *ts)
{
    mg_pool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    w->interp = NULL; /* no new interrupter may target it from now on */
    /* Py_EndInterpreter needs the interpreter's only thread state: wait
     * until interrupters have deleted theirs (they need our GIL, which we
     * do not hold here). */
    while (w->interrupters > 0) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    PyEval_RestoreThread(ts);
    /* Drop an interrupt that arrived after the last task finished. */
    PyThreadState_SetAsyncExc(w->ident, NULL);
    mg_interp_end(ts);
}

/* Counts a finished task in w's stats. Worker thread only: the only
 * writer, so a relaxed load and store suffice (no atomic add). */
static void
stats_count(mg_worker *w, int failed, int64_t busy_ns)
{
    mg_worker_stats *c = &w->stats;
    atomic_store_explicit(
        &c->done, atomic_load_explicit(&c->done, memory_order_relaxed) + 1,
        memory_order_relaxed);
    if (failed) {
        atomic_store_explicit(
            &c->failed,
            atomic_load_explicit(&c->failed, memory_order_relaxed) + 1,
            memory_order_relaxed);
    }
    atomic_store_explicit(
        &c->busy_ns,
        atomic_load_explicit(&c->busy_ns, memory_order_relaxed)
            + (uint64_t)(busy_ns > 0 ? busy_ns : 0),
        memory_order_relaxed);
}

void
mg_pool_worker_stats(mg_pool *p, int i, uint64_t *done, uint64_t *failed,
                     uint64_t *busy_ns, int *running)
{
    mg_worker *w = &p->workers[i];
    *done = atomic_load_explicit(&w->stats.done, memory_order_relaxed);
    *failed = atomic_load_explicit(&w->stats.failed, memory_order_relaxed);
    *busy_ns = atomic_load_explicit(&w->stats.busy_ns, memory_order_relaxed);
    *running = atomic_load_explicit(&w->busy, memory_order_relaxed);
}

static void
worker_fail_task(mg_worker *w, mg_task *t)
{
    mg_pool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    char *msg = mg_utf8_dup(p->broken_msg ? p->broken_msg
                                          : "the pool is broken",
                            MG_BROKEN_MSG_MAX);
    pthread_mutex_unlock(&p->mu);
    stats_count(w, 1, 0); /* before the future completes, as worker_run */
    PyEval_RestoreThread(w->owner_ts);
    owner_fail(p->owner_st, t, msg ? msg : "the pool is broken");
    (void)PyEval_SaveThread();
    MG_RAW_FREE(msg);
}

/* Runs one task that this worker took (state RUNNING); no GIL held on
 * entry and exit. */
static void
worker_run(mg_worker *w, PyThreadState *ts, mg_state *wst, mg_task *t)
{
    mg_pool *p = w->pool;
    mg_buf result = MG_BUF_INIT;
    atomic_fetch_add(&w->task_seq, 1);
    atomic_store(&w->busy, 1);
    PyEval_RestoreThread(ts);
    int raised;
    int64_t start = mg_monotonic_ns();
    task_status s = run_task(wst, t, &result, &raised);
    stats_count(w, raised, mg_monotonic_ns() - start);
    /* What the task printed goes out before its outcome (output.c). */
    uint64_t out_seq = p->out ? mg_out_task_end(p->out, w->index) : 0;
    /* With our GIL still held: an interrupter (which checks busy with our
     * GIL held) cannot aim at the next task, and an interrupt that arrived
     * too late to fire in this one is dropped, not left to fire in the
     * next. */
    atomic_store(&w->busy, 0);
    if (atomic_exchange(&w->interrupt_sent, 0)) {
        (void)PyThreadState_SetAsyncExc(w->ident, NULL);
    }
    (void)PyEval_SaveThread();
    PyEval_RestoreThread(w->owner_ts);
    if (out_seq != 0) {
        mg_out_deliver(p->out, out_seq);
    }
    owner_complete(p->owner_st, t, s, &result);
    (void)PyEval_SaveThread();
}

/* The run loop: takes tasks until the queue is closed and empty. */
static void
worker_loop(mg_worker *w, PyThreadState **ts, mg_state **wst)
{
    mg_pool *p = w->pool;
    for (;;) {
        mg_task *t = mg_taskq_pop(&p->q, w->index, p->spin_ns);
        if (t == NULL) {
            return;
        }
        int expected = MG_TASK_QUEUED;
        if (!atomic_compare_exchange_strong(&t->state, &expected,
                                            MG_TASK_RUNNING)) {
            mg_task_decref(t); /* cancelled: the canceller owns the future */
            continue;
        }
        if (*ts == NULL || atomic_load(&p->broken)) {
            worker_fail_task(w, t);
        }
        else {
            worker_run(w, *ts, *wst, t);
        }
        mg_task_decref(t);
        mg_wait_wake(&p->completed, MG_WAKE_ALL);
        if (*ts != NULL && p->max_tasks > 0
            && ++w->tasks_done >= p->max_tasks) {
            worker_end_interp(w, *ts);
            *wst = worker_start_interp(w, ts, 0);
            if (*ts != NULL) {
                (void)PyEval_SaveThread();
            }
        }
    }
}

/* Last act of a worker thread: count it out, and unregister an orphaned
 * pool when this was its last worker. Drops the thread's reference. */
static void
worker_exit(mg_worker *w)
{
    mg_pool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    w->status = MG_WORKER_EXITED;
    p->nexited++;
    int unregister = p->orphaned && all_exited_locked(p);
    if (unregister) {
        detach_exited_locked(p);
    }
    pthread_mutex_unlock(&p->mu);
    mg_wait_wake(&p->life, MG_WAKE_ALL);
    if (unregister) {
        mg_registry_remove(p);
    }
    tls_worker = NULL;
    mg_pool_decref(p);
}

static void *
worker_main(void *arg)
{
    mg_worker *w = arg;
    mg_pool *p = w->pool;
    char tname[16];
    snprintf(tname, sizeof(tname), "mg-%.6s-w%d", p->name, w->index);
    pthread_setname_np(pthread_self(), tname);
    tls_worker = w;
    pthread_mutex_lock(&p->mu);
    w->ident = PyThread_get_thread_ident();
    pthread_mutex_unlock(&p->mu);

    PyThreadState *ts = NULL;
    mg_state *wst = worker_start_interp(w, &ts, 1);
    /* A thread state of the owner interpreter, bound to this thread, to
     * complete futures. Created after the worker's own so that the worker
     * interpreter's is the thread's first. */
    w->owner_ts = PyThreadState_New(p->owner_interp);
    if (ts != NULL) {
        (void)PyEval_SaveThread();
    }
    if (w->owner_ts == NULL) {
        /* Without it no future can be completed: end this worker. A task
         * it would have taken is run by another worker, or fails there. */
        pool_set_broken(p, w->index, "could not start",
                        "no thread state to deliver results (out of "
                        "memory)");
    }
    else {
        worker_loop(w, &ts, &wst);
        PyEval_RestoreThread(w->owner_ts);
        PyThreadState_Clear(w->owner_ts);
        PyThreadState_DeleteCurrent();
        w->owner_ts = NULL;
    }
    if (ts != NULL) {
        worker_end_interp(w, ts);
    }
    if (p->out != NULL) {
        mg_out_worker_done(p->out, w->index); /* the last joins its thread */
    }
    worker_exit(w);
    return NULL;
}

/* ---- pool life (owner interpreter, owner GIL held unless noted) ---- */

static int
pool_copy_sys_path(mg_pool *p, PyObject *sys_path)
{
    PyObject *seq = PySequence_Fast(sys_path, "sys_path must be a sequence");
    if (seq == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    p->sys_path = MG_RAW_CALLOC((size_t)n + 1, sizeof(char *));
    if (p->sys_path == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *b = PyUnicode_Check(item) ? PyUnicode_EncodeFSDefault(item)
                                            : NULL;
        if (b == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError,
                                "sys_path entries must be str");
            }
            Py_DECREF(seq);
            return -1;
        }
        p->sys_path[i] = mg_utf8_dup(PyBytes_AS_STRING(b), SIZE_MAX - 1);
        Py_DECREF(b);
        if (p->sys_path[i] == NULL) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        p->nsys_path = i + 1;
    }
    Py_DECREF(seq);
    return 0;
}

/* Starts the worker threads; each holds a reference to p. Returns how
 * many started. */
static int
pool_start_threads(mg_pool *p)
{
    int started = 0;
    for (int i = 0; i < p->nworkers; i++) {
        mg_worker *w = &p->workers[i];
        pthread_mutex_lock(&p->mu);
        w->status = MG_WORKER_RUNNING;
        p->nstarted++;
        pthread_mutex_unlock(&p->mu);
        mg_pool_incref(p);
        pthread_t th;
        int rc = pthread_create(&th, NULL, worker_main, w);
        pthread_mutex_lock(&p->mu);
        if (rc != 0) {
            w->status = MG_WORKER_NEW;
            p->nstarted--;
        }
        else {
            w->thread = th;
            w->have_thread = 1;
            if (p->orphaned && w->status == MG_WORKER_EXITED) {
                pthread_detach(th); /* exited before we got here */
                w->status = MG_WORKER_DETACHED;
            }
        }
        pthread_mutex_unlock(&p->mu);
        mg_wait_wake(&p->life, MG_WAKE_ALL);
        if (rc != 0) {
            mg_pool_decref(p);
            break;
        }
        started++;
    }
    return started;
}

/* Waits, GIL released, until cond(p) holds (read under p->mu), or until
 * deadline_ns (< 0: none): 1 when it holds, 0 at the deadline, -1 with
 * KeyboardInterrupt set when interruptible and Ctrl-C came first. */
static int
pool_wait_for(mg_pool *p, int (*cond)(mg_pool *), int64_t deadline_ns,
              int interruptible)
{
    for (;;) {
        uint32_t seen = mg_wait_seq(&p->life);
        pthread_mutex_lock(&p->mu);
        int done = cond(p);
        pthread_mutex_unlock(&p->mu);
        if (done) {
            return 1;
        }
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = mg_wait_until(&p->life, seen, deadline_ns, MG_WAIT_SLICE_NS,
                           NULL);
        Py_END_ALLOW_THREADS
        if (rc == MG_EINTR && interruptible && PyErr_CheckSignals() < 0) {
            return -1;
        }
        if (rc == MG_ETIMEDOUT) {
            return 0;
        }
    }
}

static int
all_created_locked(mg_pool *p)
{
    return p->ncreated >= p->nstarted;
}

/* Waits until every started worker has created its interpreter (or failed
 * or skipped). With interruptible, -1 with KeyboardInterrupt set when
 * Ctrl-C arrives first. */
static int
pool_wait_created(mg_pool *p, int interruptible)
{
    return pool_wait_for(p, all_created_locked, -1, interruptible) < 0 ? -1
                                                                      : 0;
}

/* Start-up was interrupted: workers that have not created their
 * interpreter skip it, the others end; the pool is orphaned. */
static void
pool_abandon(mg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->abandoned = 1;
    pthread_mutex_unlock(&p->mu);
    mg_taskq_close(&p->q);
    PyObject *exc = PyErr_GetRaisedException();
    /* Bounded: at most the creations already under way. Keeps 3.12 from
     * creating types here while a worker creates its interpreter. */
    (void)pool_wait_created(p, 0);
    PyErr_SetRaisedException(exc);
    mg_pool_orphan(p);
}

static mg_pool *
pool_alloc(mg_state *st, int nworkers, long max_tasks, int64_t spin_ns,
           const char *name)
{
    mg_pool *p = MG_RAW_CALLOC(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->workers = MG_RAW_CALLOC((size_t)nworkers, sizeof(mg_worker));
    if (p->workers == NULL || mg_taskq_init(&p->q) != MG_OK) {
        MG_RAW_FREE(p->workers);
        MG_RAW_FREE(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&p->refcnt, 1);
    atomic_init(&p->broken, 0);
    mg_wait_init(&p->completed);
    mg_wait_init(&p->life);
    mg_spinner_init(&p->result_spin, spin_ns, 0);
    mg_spinner_pair(&p->result_spin, &p->q.spin);
    p->nworkers = nworkers;
    p->owner_interp = PyInterpreterState_Get();
    p->owner_id = PyInterpreterState_GetID(p->owner_interp);
    p->owner_st = st;
    p->max_tasks = max_tasks;
    p->spin_ns = spin_ns;
    snprintf(p->name, sizeof(p->name), "%s", name);
    for (int i = 0; i < nworkers; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        atomic_init(&p->workers[i].busy, 0);
    }
    return p;
}

mg_pool *
mg_pool_start(mg_state *st, int nworkers, PyObject *sys_path,
              mg_buf *init_payload, long max_tasks, int64_t spin_ns,
              const char *name, int forward_output, int log_level)
{
    mg_pool *p = pool_alloc(st, nworkers, max_tasks, spin_ns, name);
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    mg_buf_move(&p->init_payload, init_payload);
    if (pool_copy_sys_path(p, sys_path) < 0) {
        mg_pool_decref(p);
        return NULL;
    }
    if (forward_output) {
        p->out = mg_out_new(st, p->name, nworkers, log_level);
        if (p->out == NULL) {
            mg_pool_decref(p);
            return NULL;
        }
    }
    mg_registry_add(p);
    int started = pool_start_threads(p);
    if (p->out != NULL) {
        mg_out_starter_done(p->out, nworkers - started);
    }
    if (started < nworkers) {
        /* Threads that did start exit once the queue is closed. */
        PyErr_SetString(PyExc_OSError,
                        "multigil: cannot start worker threads");
        pool_abandon(p);
        return NULL;
    }
    /* Until every interpreter exists: tasks submitted next find workers
     * ready (as the stdlib executors' do), and on 3.12 this interpreter
     * creates no types while the workers create theirs (interp.c). */
    if (pool_wait_created(p, 1) < 0) {
        pool_abandon(p);
        return NULL;
    }
    return p;
}

/* Every worker is done with Python: pthread_join the threads nobody has
 * claimed, then wait until other joiners are done with theirs, so that on
 * return no joinable worker thread of p exists (the detached threads of an
 * orphaned pool may still be in the plain-C tail of worker_exit, holding
 * their own reference). No GIL held. */
static void
join_exited(mg_pool *p)
{
    for (;;) {
        uint32_t seen = mg_wait_seq(&p->life);
        pthread_mutex_lock(&p->mu);
        mg_worker *mine = NULL;
        int others = 0;
        for (int i = 0; i < p->nworkers && mine == NULL; i++) {
            mg_worker *w = &p->workers[i];
            if (w->status == MG_WORKER_EXITED && w->have_thread) {
                mine = w;
            }
            else if (w->status == MG_WORKER_JOINING
                     || (w->status == MG_WORKER_EXITED && !w->have_thread)) {
                others = 1;
            }
        }
        if (mine != NULL) {
            mine->status = MG_WORKER_JOINING;
        }
        pthread_t th = mine != NULL ? mine->thread : (pthread_t)0;
        pthread_mutex_unlock(&p->mu);
        if (mine != NULL) {
            pthread_join(th, NULL); /* done with Python: returns at once */
            pthread_mutex_lock(&p->mu);
            mine->status = MG_WORKER_JOINED;
            pthread_mutex_unlock(&p->mu);
            mg_wait_wake(&p->life, MG_WAKE_ALL);
        }
        else if (others) {
            (void)mg_wait_changed(&p->life, seen, -1, NULL);
        }
        else {
            return;
        }
    }
}

int
mg_pool_join(mg_pool *p, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns < 0 ? -1 : mg_monotonic_ns() + timeout_ns;
    int rc = pool_wait_for(p, all_exited_locked, deadline, 1);
    if (rc == 1) {
        Py_BEGIN_ALLOW_THREADS
        join_exited(p);
        Py_END_ALLOW_THREADS
    }
    return rc;
}

typedef struct interrupt_req {
    mg_worker *w;
    PyInterpreterState *interp; /* alive while w->interrupters > 0 */
    unsigned seq;               /* the task to interrupt */
    unsigned long ident;
} interrupt_req;

/* Helper thread: takes the worker's GIL through a thread state of its own
 * and raises SystemExit in the worker's thread, if that task still runs.
 * It may wait for the GIL as long as the task stays in C code; the owner
 * does not wait for it. It holds a reference to the pool. */
static void *
interrupt_main(void *arg)
{
    interrupt_req *r = arg;
    mg_worker *w = r->w;
    mg_pool *p = w->pool;
    PyThreadState *helper = PyThreadState_New(r->interp);
    if (helper != NULL) {
        PyEval_RestoreThread(helper);
        if (atomic_load(&w->busy) && atomic_load(&w->task_seq) == r->seq) {
            if (PyThreadState_SetAsyncExc(r->ident, PyExc_SystemExit) > 0) {
                atomic_store(&w->interrupt_sent, 1);
            }
        }
        PyThreadState_Clear(helper);
        PyThreadState_DeleteCurrent();
    }
    pthread_mutex_lock(&p->mu);
    w->interrupters--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    MG_RAW_FREE(r);
    mg_pool_decref(p);
    return NULL;
}

/* Starts one interrupter for w; p->mu held. 1 if started. */
static int
interrupt_start_locked(mg_pool *p, mg_worker *w)
{
    interrupt_req *r = MG_RAW_MALLOC(sizeof(*r));
    if (r == NULL) {
        return 0;
    }
    r->w = w;
    r->interp = w->interp;
    r->seq = atomic_load(&w->task_seq);
    r->ident = w->ident;
    w->interrupters++;
    mg_pool_incref(p);
    /* The helper never runs user code or starts anything: signals stay
     * with the threads that want them. */
    if (mg_thread_start_quiet(interrupt_main, r, 0) != 0) {
        w->interrupters--;
        MG_RAW_FREE(r);
        atomic_fetch_sub(&p->refcnt, 1); /* ours and another remain */
        return 0;
    }
    return 1;
}

int
mg_pool_interrupt(mg_pool *p)
{
    int n = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) {
        mg_worker *w = &p->workers[i];
        if (w->interp != NULL && atomic_load(&w->busy)) {
            n += interrupt_start_locked(p, w);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

void
mg_pool_orphan(mg_pool *p)
{
    mg_taskq_close(&p->q);
    pthread_mutex_lock(&p->mu);
    p->orphaned = 1;
    int unregister = all_exited_locked(p);
    if (unregister) {
        detach_exited_locked(p);
    }
    pthread_mutex_unlock(&p->mu);
    if (unregister) {
        mg_registry_remove(p);
    }
    mg_pool_decref(p);
}

mg_pool *
mg_pool_current(void)
{
    return tls_worker != NULL ? tls_worker->pool : NULL;
}
