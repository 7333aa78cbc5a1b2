/* worker.c - worker threads, each owning one own-GIL interpreter.
 *
 * Owns: the life of every worker thread and its interpreter (create, set
 * up, run tasks, recycle, end), delivery of results to the submitting
 * ("owner") interpreter, and pool start/join/interrupt/free.
 *
 *   owner thread (owner GIL)          worker thread k
 *   ------------------------          ---------------------------------
 *   encode (fn, args) -> mg_buf       Py_NewInterpreterFromConfig (own GIL)
 *   mg_taskq_push ---------------->   pop (no GIL: spin, then sleep)
 *                                     take own GIL: decode, call, encode
 *                                     drop own GIL, take owner GIL via
 *                                     owner_ts: decode result, complete
 *   future.result() <-------------    the Future, drop owner GIL
 *
 * No PyObject crosses: a task's future is an owner object and is touched
 * only while the owner GIL is held through owner_ts, a thread state of the
 * owner interpreter bound to the worker thread. Results cross as mg_buf.
 * Loop invariant: at the top of the run loop the worker holds no GIL.
 */
#include "worker.h"
#include "codec.h"
#include "errors.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Ending interpreters one at a time avoids CPython races in module
 * teardown (gh-136423 in 3.14). */
static pthread_mutex_t end_interp_mu = PTHREAD_MUTEX_INITIALIZER;

#if !MG_PY313
/* CPython 3.12 gives immutable types their version tags from one global
 * counter with a plain `++` (assign_version_tag in Objects/typeobject.c),
 * so interpreters that start at the same time (each creating the heap
 * types of the modules it imports) can hand two types the same tag, and
 * method lookups then return another type's method (seen here as "failed
 * to get the Python codec of the filesystem encoding" while creating an
 * interpreter). On 3.12, workers create their interpreter and import the
 * core one at a time. 3.13 made the counter atomic. */
static pthread_mutex_t create_interp_mu = PTHREAD_MUTEX_INITIALIZER;
#define CREATE_LOCK() pthread_mutex_lock(&create_interp_mu)
#define CREATE_UNLOCK() pthread_mutex_unlock(&create_interp_mu)
#else
#define CREATE_LOCK() ((void)0)
#define CREATE_UNLOCK() ((void)0)
#endif

/* Counts a worker whose interpreter exists and has imported the core (or
 * failed to): from here on it creates types only when user code does. */
static void
signal_created(mg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->ncreated++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- inside the worker interpreter (its GIL held) ---- */

/* traceback.format_exception(exc) joined into one str, or NULL with an
 * exception set. */
static PyObject *
format_traceback(PyObject *exc)
{
    PyObject *tbmod = PyImport_ImportModule("traceback");
    if (tbmod == NULL) {
        return NULL;
    }
    PyObject *lines = PyObject_CallMethod(tbmod, "format_exception", "(O)",
                                          exc);
    Py_DECREF(tbmod);
    if (lines == NULL) {
        return NULL;
    }
    PyObject *empty = PyUnicode_FromString("");
    PyObject *text = empty ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(lines);
    return text;
}

/* Writes the formatted traceback of the current exception into buf and
 * clears it. */
static void
format_current_exception(char *buf, size_t size)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *text = exc ? format_traceback(exc) : NULL;
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    PyErr_Clear();
    snprintf(buf, size, "%s", s ? s : "unknown error");
    Py_XDECREF(text);
    Py_XDECREF(exc);
}

/* Builds (exc, type name, message, formatted traceback) for exc. */
static PyObject *
exception_info(PyObject *exc)
{
    PyObject *name = NULL, *msg = NULL, *info = NULL;
    PyObject *text = format_traceback(exc);
    if (text == NULL) {
        goto done;
    }
    name = PyType_GetQualName(Py_TYPE(exc));
    if (name == NULL) {
        goto done;
    }
    msg = PyObject_Str(exc);
    if (msg == NULL) {
        goto done;
    }
    info = PyTuple_Pack(4, exc, name, msg, text);
done:
    Py_XDECREF(text);
    Py_XDECREF(name);
    Py_XDECREF(msg);
    return info;
}

/* Encodes exception info for exc into out. When exc itself cannot be
 * encoded, its slot becomes None and the owner raises a MultigilError with
 * the type name and message instead. Never fails with an exception set. */
static void
encode_exception(mg_state *wst, PyObject *exc, mg_buf *out)
{
    PyObject *info = exception_info(exc);
    if (info != NULL && mg_codec_encode(wst, info, out) == 0) {
        Py_DECREF(info);
        return;
    }
    PyErr_Clear();
    mg_buf_release(out);
    if (info != NULL) {
        Py_INCREF(Py_None);
        PyObject *old = PyTuple_GET_ITEM(info, 0);
        PyTuple_SET_ITEM(info, 0, Py_None);
        Py_DECREF(old);
        if (mg_codec_encode(wst, info, out) == 0) {
            Py_DECREF(info);
            return;
        }
        PyErr_Clear();
        mg_buf_release(out);
        Py_DECREF(info);
    }
    /* Last resort: a plain description that always encodes. */
    info = Py_BuildValue("(Osss)", Py_None, "Exception",
                         "the exception raised by the task could not be "
                         "described",
                         "");
    if (info != NULL) {
        (void)mg_codec_encode(wst, info, out);
        Py_DECREF(info);
    }
    PyErr_Clear();
}

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
    PyObject *exc = PyErr_GetRaisedException();
    encode_exception(wst, exc, result);
    Py_DECREF(exc);
    return TASK_ERROR;
}

static task_status
run_chunk(mg_state *wst, PyObject *payload, mg_buf *result)
{
    PyObject *values = NULL, *info = Py_None, *pair = NULL;
    Py_INCREF(info);
    if (!PyTuple_Check(payload) || PyTuple_GET_SIZE(payload) != 3
        || !PyList_Check(PyTuple_GET_ITEM(payload, 1))) {
        PyErr_SetString(PyExc_SystemError, "multigil: malformed chunk task");
        goto error;
    }
    PyObject *fn = PyTuple_GET_ITEM(payload, 0);
    PyObject *items = PyTuple_GET_ITEM(payload, 1);
    int star = PyObject_IsTrue(PyTuple_GET_ITEM(payload, 2));
    Py_ssize_t n = PyList_GET_SIZE(items);
    values = PyList_New(n);
    if (values == NULL) {
        goto error;
    }
    Py_ssize_t done = 0;
    for (; done < n; done++) {
        PyObject *item = PyList_GET_ITEM(items, done);
        PyObject *v;
        if (star) {
            v = PyTuple_Check(item) ? PyObject_Call(fn, item, NULL) : NULL;
            if (v == NULL && !PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError,
                             "starmap items must be tuples, not %.200s",
                             Py_TYPE(item)->tp_name);
            }
        }
        else {
            v = PyObject_CallOneArg(fn, item);
        }
        if (v == NULL) {
            PyObject *exc = PyErr_GetRaisedException();
            Py_SETREF(info, exception_info(exc));
            Py_DECREF(exc);
            if (info == NULL) {
                goto error;
            }
            break;
        }
        PyList_SET_ITEM(values, done, v);
    }
    if (done < n) {
        /* Keep only the results before the failing item. */
        if (PyList_SetSlice(values, done, n, NULL) < 0) {
            goto error;
        }
    }
    pair = PyTuple_Pack(2, values, info);
    if (pair == NULL) {
        goto error;
    }
    if (mg_codec_encode(wst, pair, result) < 0) {
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
    PyObject *exc = PyErr_GetRaisedException();
    encode_exception(wst, exc, result);
    Py_DECREF(exc);
    return TASK_ERROR;
}

/* Runs t in the worker interpreter and encodes its outcome into result. */
static task_status
run_task(mg_state *wst, mg_task *t, mg_buf *result)
{
    PyObject *payload = mg_codec_decode(wst, &t->payload);
    mg_buf_release(&t->payload);
    if (payload == NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        encode_exception(wst, exc, result);
        Py_DECREF(exc);
        return TASK_ERROR;
    }
    task_status s = t->kind == MG_TASK_CHUNK ? run_chunk(wst, payload, result)
                                             : run_call(wst, payload, result);
    Py_DECREF(payload);
    return s;
}

/* ---- in the owner interpreter (owner GIL held via owner_ts) ---- */

/* Turns exception info (exc, name, msg, tb) into an exception object with
 * the worker's traceback as its __cause__. */
static PyObject *
owner_build_exception(mg_state *ost, PyObject *info)
{
    if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 4) {
        return PyObject_CallFunction(PyExc_SystemError, "s",
                                     "multigil: malformed exception info");
    }
    PyObject *exc = PyTuple_GET_ITEM(info, 0);
    if (PyExceptionInstance_Check(exc)) {
        Py_INCREF(exc);
    }
    else {
        exc = PyUnicode_FromFormat(
            "a task raised %S: %S (the exception itself could not be sent "
            "back to the caller)",
            PyTuple_GET_ITEM(info, 1), PyTuple_GET_ITEM(info, 2));
        if (exc == NULL) {
            return NULL;
        }
        Py_SETREF(exc, PyObject_CallOneArg(ost->MultigilError, exc));
        if (exc == NULL) {
            return NULL;
        }
    }
    PyObject *cause =
        PyObject_CallOneArg(ost->RemoteTraceback, PyTuple_GET_ITEM(info, 3));
    if (cause == NULL) {
        PyErr_Clear();
    }
    else {
        PyException_SetCause(exc, cause); /* steals cause */
    }
    return exc;
}

/* Completes the future of t from the encoded outcome; owner GIL held. */
static void
owner_complete(mg_state *ost, mg_task *t, task_status status, mg_buf *result)
{
    PyObject *fut = (PyObject *)t->future;
    t->future = NULL;
    PyObject *value = mg_codec_decode(ost, result);
    mg_buf_release(result);
    PyObject *meth = ost->str_set_result, *arg = NULL;
    if (value == NULL) {
        meth = ost->str_set_exception;
        arg = PyErr_GetRaisedException();
    }
    else if (status == TASK_ERROR) {
        meth = ost->str_set_exception;
        arg = owner_build_exception(ost, value);
    }
    else if (t->kind == MG_TASK_CHUNK && PyTuple_Check(value)
             && PyTuple_GET_SIZE(value) == 2
             && PyTuple_GET_ITEM(value, 1) != Py_None) {
        PyObject *exc =
            owner_build_exception(ost, PyTuple_GET_ITEM(value, 1));
        arg = exc ? PyTuple_Pack(2, PyTuple_GET_ITEM(value, 0), exc) : NULL;
        Py_XDECREF(exc);
    }
    else {
        arg = Py_NewRef(value);
    }
    if (arg == NULL) {
        meth = ost->str_set_exception;
        arg = PyErr_GetRaisedException();
    }
    PyObject *r = PyObject_CallMethodOneArg(fut, meth, arg);
    if (r == NULL) {
        PyErr_WriteUnraisable(fut);
    }
    Py_XDECREF(r);
    Py_XDECREF(arg);
    Py_XDECREF(value);
    Py_DECREF(fut);
}

/* Fails the future of t with BrokenPool(msg); owner GIL held. */
static void
owner_fail(mg_state *ost, mg_task *t, const char *msg)
{
    PyObject *fut = (PyObject *)t->future;
    t->future = NULL;
    PyObject *exc = PyObject_CallFunction(ost->BrokenPool, "s", msg);
    if (exc == NULL) {
        exc = PyErr_GetRaisedException();
    }
    PyObject *r = PyObject_CallMethodOneArg(fut, ost->str_set_exception, exc);
    if (r == NULL) {
        PyErr_WriteUnraisable(fut);
    }
    Py_XDECREF(r);
    Py_DECREF(exc);
    Py_DECREF(fut);
}

/* ---- worker thread ---- */

static void
pool_set_broken(mg_pool *p, const char *msg)
{
    pthread_mutex_lock(&p->mu);
    if (!atomic_load(&p->broken)) {
        snprintf(p->broken_msg, sizeof(p->broken_msg), "%s", msg);
        atomic_store(&p->broken, 1);
    }
    pthread_mutex_unlock(&p->mu);
}

/* Sets sys.path, imports the core, runs the initializer. Worker GIL held.
 * Returns the worker's module state, or NULL with the reason in err. */
static mg_state *
worker_setup(mg_worker *w, char *err, size_t errsize)
{
    mg_pool *p = w->pool;
    int locked = 1;
    PyObject *path = PyList_New(p->nsys_path);
    if (path == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < p->nsys_path; i++) {
        PyObject *s = PyUnicode_FromString(p->sys_path[i]);
        if (s == NULL) {
            Py_DECREF(path);
            goto error;
        }
        PyList_SET_ITEM(path, i, s);
    }
    int rc = PySys_SetObject("path", path);
    Py_DECREF(path);
    if (rc < 0) {
        goto error;
    }
    mg_state *wst = mg_state_current();
    if (wst == NULL) {
        goto error;
    }
    CREATE_UNLOCK(); /* taken in worker_start_interp */
    locked = 0;
    signal_created(p);
    if (p->init_payload.len > 0) {
        PyObject *init = mg_codec_decode(wst, &p->init_payload);
        if (init == NULL) {
            goto error;
        }
        PyObject *r = NULL;
        if (PyTuple_Check(init) && PyTuple_GET_SIZE(init) == 2) {
            r = PyObject_Call(PyTuple_GET_ITEM(init, 0),
                              PyTuple_GET_ITEM(init, 1), NULL);
        }
        else {
            PyErr_SetString(PyExc_SystemError,
                            "multigil: malformed initializer payload");
        }
        Py_DECREF(init);
        if (r == NULL) {
            goto error;
        }
        Py_DECREF(r);
    }
    return wst;
error:
    if (locked) {
        CREATE_UNLOCK();
        signal_created(p);
    }
    char detail[800];
    format_current_exception(detail, sizeof(detail));
    snprintf(err, errsize, "worker %d of pool %s could not start: %s",
             w->index, p->name, detail);
    return NULL;
}

/* Creates the worker's interpreter on this thread and sets it up. On
 * success *ts is attached (worker GIL held) and the state is returned. On
 * failure no thread state of the worker is current and err says why. */
static mg_state *
worker_start_interp(mg_worker *w, PyThreadState **ts, char *err,
                    size_t errsize)
{
    mg_pool *p = w->pool;
    PyInterpreterConfig cfg = {
        .use_main_obmalloc = 0,
        .allow_fork = 0,
        .allow_exec = 0,
        .allow_threads = 1,
        .allow_daemon_threads = 0,
        .check_multi_interp_extensions = 1,
        .gil = PyInterpreterConfig_OWN_GIL,
    };
    *ts = NULL;
    CREATE_LOCK(); /* released by worker_setup, or below on failure */
    PyStatus status = Py_NewInterpreterFromConfig(ts, &cfg);
    if (PyStatus_Exception(status) || *ts == NULL) {
        CREATE_UNLOCK();
        signal_created(p);
        snprintf(err, errsize,
                 "worker %d of pool %s could not create its interpreter: %s",
                 w->index, p->name,
                 status.err_msg ? status.err_msg : "unknown error");
        *ts = NULL;
        return NULL;
    }
    mg_state *wst = worker_setup(w, err, errsize);
    if (wst == NULL) {
        pthread_mutex_lock(&end_interp_mu);
        Py_EndInterpreter(*ts);
        pthread_mutex_unlock(&end_interp_mu);
        *ts = NULL;
        return NULL;
    }
    PyInterpreterState *interp = PyThreadState_GetInterpreter(*ts);
    pthread_mutex_lock(&p->mu);
    w->interp = interp;
    w->interp_id = PyInterpreterState_GetID(interp);
    w->tasks_done = 0;
    pthread_mutex_unlock(&p->mu);
    return wst;
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
    PyThreadState_SetAsyncExc((unsigned long)PyThread_get_thread_ident(),
                              NULL);
    pthread_mutex_lock(&end_interp_mu);
    Py_EndInterpreter(ts);
    pthread_mutex_unlock(&end_interp_mu);
}

static void
worker_fail_task(mg_worker *w, mg_task *t)
{
    mg_pool *p = w->pool;
    char msg[1024];
    pthread_mutex_lock(&p->mu);
    snprintf(msg, sizeof(msg), "%s", p->broken_msg);
    pthread_mutex_unlock(&p->mu);
    PyEval_RestoreThread(w->owner_ts);
    owner_fail(p->owner_st, t, msg);
    (void)PyEval_SaveThread();
}

static void *
worker_main(void *arg)
{
    mg_worker *w = arg;
    mg_pool *p = w->pool;
    char err[1024];
    char tname[16];
    snprintf(tname, sizeof(tname), "mg-%.6s-w%d", p->name, w->index);
    pthread_setname_np(pthread_self(), tname);
    w->ident = PyThread_get_thread_ident();

    PyThreadState *ts = NULL;
    mg_state *wst = worker_start_interp(w, &ts, err, sizeof(err));
    if (wst == NULL) {
        pool_set_broken(p, err);
    }
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
        pool_set_broken(p, "a worker could not create a thread state to "
                           "deliver results (out of memory)");
        goto exit;
    }
    for (;;) {
        mg_task *t = mg_taskq_pop(&p->q, w->index, p->spin_ns);
        if (t == NULL) {
            break;
        }
        int expected = MG_TASK_QUEUED;
        if (!atomic_compare_exchange_strong(&t->state, &expected,
                                            MG_TASK_RUNNING)) {
            mg_task_decref(t); /* cancelled: the canceller owns the future */
            continue;
        }
        if (ts == NULL || atomic_load(&p->broken)) {
            worker_fail_task(w, t);
            mg_task_decref(t);
            continue;
        }
        mg_buf result = MG_BUF_INIT;
        atomic_fetch_add(&w->task_seq, 1);
        atomic_store(&w->busy, 1);
        PyEval_RestoreThread(ts);
        task_status s = run_task(wst, t, &result);
        /* With our GIL still held: an interrupter (which checks busy with
         * our GIL held) cannot aim at the next task, and an interrupt that
         * arrived too late to fire in this one is dropped, not left to
         * fire in the next. */
        atomic_store(&w->busy, 0);
        if (atomic_exchange(&w->interrupt_sent, 0)) {
            (void)PyThreadState_SetAsyncExc(w->ident, NULL);
        }
        (void)PyEval_SaveThread();
        PyEval_RestoreThread(w->owner_ts);
        owner_complete(p->owner_st, t, s, &result);
        (void)PyEval_SaveThread();
        mg_task_decref(t);
        mg_wait_wake(&p->completed, MG_WAKE_ALL);

        if (p->max_tasks > 0 && ++w->tasks_done >= p->max_tasks) {
            worker_end_interp(w, ts);
            wst = worker_start_interp(w, &ts, err, sizeof(err));
            if (wst == NULL) {
                pool_set_broken(p, err);
            }
            else {
                (void)PyEval_SaveThread();
            }
        }
    }

    if (w->owner_ts != NULL) {
        PyEval_RestoreThread(w->owner_ts);
        PyThreadState_Clear(w->owner_ts);
        PyThreadState_DeleteCurrent();
        w->owner_ts = NULL;
    }
exit:
    if (ts != NULL) {
        worker_end_interp(w, ts);
    }
    pthread_mutex_lock(&p->mu);
    w->status = MG_WORKER_EXITED;
    p->nexited++;
    int free_pool = p->orphaned && p->nexited == p->nworkers;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (free_pool) {
        /* Nobody will join: let every thread's resources go by itself. */
        for (int i = 0; i < p->nworkers; i++) {
            if (p->workers[i].status == MG_WORKER_EXITED) {
                pthread_detach(p->workers[i].thread);
            }
        }
        mg_pool_free(p);
    }
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
        const char *s = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
        if (s == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError,
                                "sys_path entries must be str");
            }
            Py_DECREF(seq);
            return -1;
        }
        size_t len = strlen(s) + 1;
        p->sys_path[i] = MG_RAW_MALLOC(len);
        if (p->sys_path[i] == NULL) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(p->sys_path[i], s, len);
        p->nsys_path = i + 1;
    }
    Py_DECREF(seq);
    return 0;
}

static int
pool_start_threads(mg_pool *p)
{
    sigset_t all, old;
    sigfillset(&all);
    /* Workers never take signals: only the main thread turns Ctrl-C into
     * KeyboardInterrupt, and worker syscalls never see EINTR. */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    for (int i = 0; i < p->nworkers; i++) {
        mg_worker *w = &p->workers[i];
        /* RUNNING before the thread exists: it sets EXITED under p->mu,
         * which must never be overwritten by this. */
        pthread_mutex_lock(&p->mu);
        w->status = MG_WORKER_RUNNING;
        pthread_mutex_unlock(&p->mu);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pthread_mutex_lock(&p->mu);
            w->status = MG_WORKER_NEW;
            p->nworkers_started = i;
            pthread_mutex_unlock(&p->mu);
            rc = -1;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

mg_pool *
mg_pool_start(mg_state *st, int nworkers, PyObject *sys_path,
              mg_buf *init_payload, long max_tasks, int64_t spin_ns,
              const char *name)
{
    mg_pool *p = MG_RAW_CALLOC(1, sizeof(*p));
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    p->workers = MG_RAW_CALLOC((size_t)nworkers, sizeof(mg_worker));
    if (p->workers == NULL) {
        MG_RAW_FREE(p);
        PyErr_NoMemory();
        return NULL;
    }
    if (mg_taskq_init(&p->q) != MG_OK) {
        MG_RAW_FREE(p->workers);
        MG_RAW_FREE(p);
        PyErr_SetString(PyExc_OSError, "multigil: cannot create task queue");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    p->nworkers = nworkers;
    atomic_init(&p->broken, 0);
    mg_wait_init(&p->completed);
    mg_spinner_init(&p->result_spin, spin_ns, 0);
    mg_spinner_pair(&p->result_spin, &p->q.spin);
    p->owner_interp = PyInterpreterState_Get();
    p->owner_st = st;
    p->max_tasks = max_tasks;
    p->spin_ns = spin_ns;
    snprintf(p->name, sizeof(p->name), "%s", name);
    mg_buf_move(&p->init_payload, init_payload);
    for (int i = 0; i < nworkers; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        atomic_init(&p->workers[i].busy, 0);
    }
    if (pool_copy_sys_path(p, sys_path) < 0) {
        p->nworkers = 0;
        mg_pool_free(p);
        return NULL;
    }
    if (pool_start_threads(p) < 0) {
        /* Threads that did start exit once the queue is closed. */
        mg_taskq_close(&p->q);
        Py_BEGIN_ALLOW_THREADS
        for (int i = 0; i < p->nworkers_started; i++) {
            pthread_join(p->workers[i].thread, NULL);
            p->workers[i].status = MG_WORKER_JOINED;
        }
        Py_END_ALLOW_THREADS
        mg_pool_free(p);
        PyErr_SetString(PyExc_OSError,
                        "multigil: cannot start worker threads");
        return NULL;
    }
#if !MG_PY313
    /* 3.12: keep this interpreter from creating types (see
     * create_interp_mu) while the workers create theirs. 3.12 imports in a
     * worker never need this interpreter's GIL, so waiting cannot block
     * them; initializers run after this point. */
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&p->mu);
    while (p->ncreated < p->nworkers) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    Py_END_ALLOW_THREADS
#endif
    return p;
}

int
mg_pool_join(mg_pool *p, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns < 0 ? -1 : mg_monotonic_ns() + timeout_ns;
    int done = 0;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&p->mu);
        /* Wait in slices so that the owner sees Ctrl-C promptly. */
        int64_t slice_end = mg_monotonic_ns() + 50 * 1000000LL;
        if (deadline >= 0 && deadline < slice_end) {
            slice_end = deadline;
        }
        struct timespec ts = {.tv_sec = slice_end / 1000000000,
                              .tv_nsec = slice_end % 1000000000};
        while (p->nexited < p->nworkers) {
            if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) != 0) {
                break;
            }
        }
        done = p->nexited >= p->nworkers;
        pthread_mutex_unlock(&p->mu);
        Py_END_ALLOW_THREADS
        if (done) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
        if (deadline >= 0 && mg_monotonic_ns() >= deadline) {
            return 0;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < p->nworkers; i++) {
        if (p->workers[i].status == MG_WORKER_EXITED) {
            pthread_join(p->workers[i].thread, NULL);
            p->workers[i].status = MG_WORKER_JOINED;
        }
    }
    Py_END_ALLOW_THREADS
    return 1;
}

typedef struct interrupt_req {
    mg_worker *w;
    PyInterpreterState *interp; /* alive while w->interrupters > 0 */
    unsigned seq;               /* the task to interrupt */
} interrupt_req;

/* Helper thread: takes the worker's GIL through a thread state of its own
 * and raises SystemExit in the worker's thread, if that task still runs.
 * It may wait for the GIL as long as the task stays in C code; the owner
 * does not wait for it. */
static void *
interrupt_main(void *arg)
{
    interrupt_req *r = arg;
    mg_worker *w = r->w;
    PyThreadState *helper = PyThreadState_New(r->interp);
    if (helper != NULL) {
        PyEval_RestoreThread(helper);
        if (atomic_load(&w->busy) && atomic_load(&w->task_seq) == r->seq) {
            if (PyThreadState_SetAsyncExc(w->ident, PyExc_SystemExit) > 0) {
                atomic_store(&w->interrupt_sent, 1);
            }
        }
        PyThreadState_Clear(helper);
        PyThreadState_DeleteCurrent();
    }
    pthread_mutex_lock(&w->pool->mu);
    w->interrupters--;
    pthread_cond_broadcast(&w->pool->cv);
    pthread_mutex_unlock(&w->pool->mu);
    MG_RAW_FREE(r);
    return NULL;
}

int
mg_pool_interrupt(mg_pool *p)
{
    int n = 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) {
        mg_worker *w = &p->workers[i];
        if (w->interp == NULL || !atomic_load(&w->busy)) {
            continue;
        }
        interrupt_req *r = MG_RAW_MALLOC(sizeof(*r));
        if (r == NULL) {
            break;
        }
        r->w = w;
        r->interp = w->interp;
        r->seq = atomic_load(&w->task_seq);
        pthread_t th;
        w->interrupters++;
        if (pthread_create(&th, NULL, interrupt_main, r) != 0) {
            w->interrupters--;
            MG_RAW_FREE(r);
            break;
        }
        pthread_detach(th);
        n++;
    }
    pthread_mutex_unlock(&p->mu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return n;
}

void
mg_pool_orphan(mg_pool *p)
{
    mg_taskq_close(&p->q);
    pthread_mutex_lock(&p->mu);
    p->orphaned = 1;
    pthread_mutex_unlock(&p->mu);
}

int
mg_pool_on_worker_thread(mg_pool *p)
{
    pthread_t me = pthread_self();
    int found = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) {
        if (p->workers[i].status != MG_WORKER_NEW
            && pthread_equal(p->workers[i].thread, me)) {
            found = 1;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

void
mg_pool_free(mg_pool *p)
{
    /* Tasks still queued here were never run; their futures were cleared
     * by the owner (see pool.c) before the threads were joined. */
    mg_task *t = mg_taskq_drain(&p->q);
    while (t != NULL) {
        mg_task *next = t->next;
        mg_task_decref(t);
        t = next;
    }
    mg_taskq_fini(&p->q);
    mg_wait_fini(&p->completed);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    for (Py_ssize_t i = 0; i < p->nsys_path; i++) {
        MG_RAW_FREE(p->sys_path[i]);
    }
    MG_RAW_FREE(p->sys_path);
    mg_buf_release(&p->init_payload);
    MG_RAW_FREE(p->workers);
    MG_RAW_FREE(p);
}
