/* queue.c - multigil._core.Queue, the Python face of mg_queue (queue.h),
 * and its exceptions QueueEmpty, QueueFull (subclasses of queue.Empty and
 * queue.Full) and QueueClosed.
 *
 * Owns: the Queue type (one object per interpreter over a shared
 * mg_queue), encoding items into queue nodes with the codec before the
 * put and decoding them after the get, and Queue as a handle type
 * (handles.h), so a queue crosses to tasks inside any value.
 * Locks: none of its own; mg_queue takes its mutex inside each call.
 * Never: wait with the GIL held (every blocking call goes through
 * mg_block_call), or encode/decode while the queue's lock is held.
 */
#include "core.h"
#include "codec.h"
#include "errors.h"
#include "handles.h"
#include "queue.h"
#include "waitpy.h"

typedef struct {
    PyObject_HEAD
    mg_queue *q; /* one reference */
} MgQueueObject;

static PyObject *
queue_wrap(mg_state *st, mg_queue *q)
{
    MgQueueObject *self = PyObject_New(MgQueueObject, st->QueueType);
    if (self == NULL) {
        return NULL;
    }
    mg_queue_incref(q);
    self->q = q;
    return (PyObject *)self;
}

static PyObject *
Queue_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"maxsize", NULL};
    Py_ssize_t maxsize = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:Queue", kwlist,
                                     &maxsize)) {
        return NULL;
    }
    mg_state *st = mg_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    mg_queue *q = mg_queue_new(maxsize > 0 ? (size_t)maxsize : 0);
    if (q == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *self = queue_wrap(st, q);
    mg_queue_decref(q);
    return self;
}

static void
Queue_dealloc(MgQueueObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    mg_queue_decref(self->q);
    PyObject_Free(self);
    Py_DECREF(tp);
}

static mg_state *
queue_state(MgQueueObject *self)
{
    return mg_state_from_type(Py_TYPE(self));
}

/* ---- encoding ---- */

/* A node holding obj's encoding, or NULL with an exception. */
static mg_qitem *
encode_item(mg_state *st, PyObject *obj)
{
    mg_qitem *it = mg_qitem_new();
    if (it == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (mg_codec_encode(st, obj, &it->buf) < 0) {
        mg_qitem_free_chain(it);
        return NULL;
    }
    return it;
}

/* A chain of the encodings of every item of iterable, its length in *n;
 * NULL with an exception (and nothing allocated) on failure. */
static mg_qitem *
encode_all(mg_state *st, PyObject *iterable, size_t *n)
{
    mg_qitem *chain = NULL, **tail = &chain;
    *n = 0;
    PyObject *iter = PyObject_GetIter(iterable);
    if (iter == NULL) {
        return NULL;
    }
    PyObject *obj;
    while ((obj = PyIter_Next(iter)) != NULL) {
        *tail = encode_item(st, obj);
        Py_DECREF(obj);
        if (*tail == NULL) {
            break;
        }
        tail = &(*tail)->next;
        (*n)++;
    }
    Py_DECREF(iter);
    if (PyErr_Occurred()) {
        mg_qitem_free_chain(chain);
        return NULL;
    }
    return chain;
}

/* ---- put ---- */

typedef struct {
    mg_queue *q;
    mg_qitem *chain;
    size_t n;
} put_call;

static int
put_fn(void *arg, int64_t deadline_ns, int first)
{
    put_call *c = arg;
    return mg_queue_put(c->q, &c->chain, &c->n, deadline_ns, 0, first);
}

/* Sets exc (QueueFull or QueueClosed) with msg and the attribute
 * items_put: how many of the n items were put before it. */
static void
raise_partial(PyObject *exc, const char *msg, size_t put)
{
    PyErr_SetString(exc, msg);
    PyObject *e = PyErr_GetRaisedException();
    PyObject *v = PyLong_FromSize_t(put);
    if (v == NULL || PyObject_SetAttrString(e, "items_put", v) < 0) {
        Py_XDECREF(v);
        Py_DECREF(e);
        return;
    }
    Py_DECREF(v);
    PyErr_SetRaisedException(e);
}

/* Puts the chain (taking it over); None, or NULL with QueueFull,
 * QueueClosed (both with items_put) or a signal handler's exception. */
static PyObject *
queue_put_chain(MgQueueObject *self, mg_state *st, mg_qitem *chain,
                size_t n, int64_t deadline)
{
    put_call c = {self->q, chain, n};
    int rc = mg_block_call(put_fn, &c, deadline);
    size_t put = n - c.n;
    mg_qitem_free_chain(c.chain);
    switch (rc) {
    case MG_OK:
        Py_RETURN_NONE;
    case MG_EINTR:
        return NULL;
    case MG_ECLOSED:
        raise_partial(st->QueueClosed, "put() on a closed Queue", put);
        return NULL;
    case MG_ETIMEDOUT:
        raise_partial(st->QueueFull, "Queue is full", put);
        return NULL;
    default:
        return mg_raise(st, rc, "Queue put");
    }
}

static PyObject *
Queue_put(MgQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"obj", "block", "timeout", NULL};
    PyObject *obj, *timeout = Py_None;
    int block = 1;
    int64_t deadline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|pO:put", kwlist, &obj,
                                     &block, &timeout)
        || mg_deadline_queue(block, timeout, &deadline) < 0) {
        return NULL;
    }
    mg_state *st = queue_state(self);
    if (st == NULL) {
        return NULL;
    }
    mg_qitem *it = encode_item(st, obj);
    return it == NULL ? NULL : queue_put_chain(self, st, it, 1, deadline);
}

static PyObject *
Queue_put_nowait(MgQueueObject *self, PyObject *obj)
{
    mg_state *st = queue_state(self);
    if (st == NULL) {
        return NULL;
    }
    mg_qitem *it = encode_item(st, obj);
    return it == NULL ? NULL : queue_put_chain(self, st, it, 1, 0);
}

static PyObject *
Queue_put_many(MgQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"items", "block", "timeout", NULL};
    PyObject *items, *timeout = Py_None;
    int block = 1;
    int64_t deadline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|pO:put_many", kwlist,
                                     &items, &block, &timeout)
        || mg_deadline_queue(block, timeout, &deadline) < 0) {
        return NULL;
    }
    mg_state *st = queue_state(self);
    if (st == NULL) {
        return NULL;
    }
    size_t n;
    mg_qitem *chain = encode_all(st, items, &n);
    if (chain == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE; /* nothing to put */
    }
    return queue_put_chain(self, st, chain, n, deadline);
}

/* ---- get ---- */

typedef struct {
    mg_queue *q;
    size_t max;
    mg_qitem *out;
    size_t got;
} get_call;

static int
get_fn(void *arg, int64_t deadline_ns, int first)
{
    get_call *c = arg;
    return mg_queue_get(c->q, c->max, &c->out, &c->got, deadline_ns, 0,
                        first);
}

/* Takes 1 to max items into c; 0, or -1 with QueueEmpty, QueueClosed or
 * a signal handler's exception. */
static int
queue_take(mg_state *st, get_call *c, int64_t deadline)
{
    int rc = mg_block_call(get_fn, c, deadline);
    switch (rc) {
    case MG_OK:
        return 0;
    case MG_EINTR:
        return -1;
    case MG_ECLOSED:
        PyErr_SetString(st->QueueClosed, "Queue is closed and empty");
        return -1;
    case MG_ETIMEDOUT:
        PyErr_SetString(st->QueueEmpty, "Queue is empty");
        return -1;
    default:
        mg_raise(st, rc, "Queue get");
        return -1;
    }
}

static PyObject *
queue_get_one(MgQueueObject *self, mg_state *st, int64_t deadline)
{
    get_call c = {self->q, 1, NULL, 0};
    if (queue_take(st, &c, deadline) < 0) {
        return NULL;
    }
    PyObject *v = mg_codec_decode(st, &c.out->buf);
    mg_qitem_free_chain(c.out);
    return v;
}

static PyObject *
Queue_get(MgQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"block", "timeout", NULL};
    PyObject *timeout = Py_None;
    int block = 1;
    int64_t deadline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pO:get", kwlist, &block,
                                     &timeout)
        || mg_deadline_queue(block, timeout, &deadline) < 0) {
        return NULL;
    }
    mg_state *st = queue_state(self);
    return st == NULL ? NULL : queue_get_one(self, st, deadline);
}

static PyObject *
Queue_get_nowait(MgQueueObject *self, PyObject *unused)
{
    (void)unused;
    mg_state *st = queue_state(self);
    return st == NULL ? NULL : queue_get_one(self, st, 0);
}

/* A list of the decoded items of chain (freed here). */
static PyObject *
decode_all(mg_state *st, mg_qitem *chain, size_t n)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    Py_ssize_t i = 0;
    for (mg_qitem *it = chain; list != NULL && it != NULL; it = it->next) {
        PyObject *v = mg_codec_decode(st, &it->buf);
        if (v == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i++, v);
    }
    mg_qitem_free_chain(chain);
    return list;
}

static PyObject *
Queue_get_many(MgQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_items", "block", "timeout", NULL};
    Py_ssize_t max;
    PyObject *timeout = Py_None;
    int block = 1;
    int64_t deadline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|pO:get_many", kwlist,
                                     &max, &block, &timeout)
        || mg_deadline_queue(block, timeout, &deadline) < 0) {
        return NULL;
    }
    if (max < 1) {
        PyErr_SetString(PyExc_ValueError, "max_items must be at least 1");
        return NULL;
    }
    mg_state *st = queue_state(self);
    if (st == NULL) {
        return NULL;
    }
    get_call c = {self->q, (size_t)max, NULL, 0};
    if (queue_take(st, &c, deadline) < 0) {
        return NULL;
    }
    return decode_all(st, c.out, c.got);
}

static PyObject *
Queue_iternext(MgQueueObject *self)
{
    mg_state *st = queue_state(self);
    if (st == NULL) {
        return NULL;
    }
    PyObject *v = queue_get_one(self, st, -1);
    if (v == NULL && PyErr_ExceptionMatches(st->QueueClosed)) {
        PyErr_Clear(); /* closed and drained: the iteration ends */
    }
    return v;
}

/* ---- state, close, asyncio helpers ---- */

static PyObject *
Queue_qsize(MgQueueObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(mg_queue_size(self->q));
}

static PyObject *
Queue_empty(MgQueueObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(mg_queue_size(self->q) == 0);
}

static PyObject *
Queue_full(MgQueueObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->q->maxsize != 0
                           && mg_queue_size(self->q) >= self->q->maxsize);
}

static PyObject *
Queue_close(MgQueueObject *self, PyObject *unused)
{
    (void)unused;
    mg_queue_close(self->q);
    Py_RETURN_NONE;
}

/* queue.Queue.shutdown: close(); immediate also discards what is queued
 * (each discarded item counts as task_done) so that join() returns once
 * the items already taken are done. */
static PyObject *
Queue_shutdown(MgQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"immediate", NULL};
    int immediate = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p:shutdown", kwlist,
                                     &immediate)) {
        return NULL;
    }
    mg_qitem *dropped = mg_queue_shutdown(self->q, immediate);
    mg_qitem_free_chain(dropped); /* no lock held; handles are plain C */
    Py_RETURN_NONE;
}

static PyObject *
Queue_task_done(MgQueueObject *self, PyObject *unused)
{
    (void)unused;
    if (mg_queue_task_done(self->q) != MG_OK) {
        PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
        return NULL;
    }
    Py_RETURN_NONE;
}

static int
join_fn(void *arg, int64_t deadline_ns, int first)
{
    (void)first;
    return mg_queue_join_wait(arg, deadline_ns, 0);
}

static PyObject *
Queue_join(MgQueueObject *self, PyObject *unused)
{
    (void)unused;
    return mg_block_call(join_fn, self->q, -1) == MG_EINTR ? NULL
                                                           : Py_NewRef(Py_None);
}

static PyObject *
Queue_get_unfinished(MgQueueObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSize_t(mg_queue_unfinished(self->q));
}

typedef struct {
    mg_queue *q;
    int for_put;
} ready_call;

static int
ready_fn(void *arg, int64_t deadline_ns, int first)
{
    (void)first;
    ready_call *c = arg;
    return mg_queue_wait_ready(c->q, c->for_put, deadline_ns, 0);
}

static PyObject *
Queue_wait_ready(MgQueueObject *self, PyObject *args)
{
    int for_put;
    PyObject *timeout;
    int64_t deadline;
    if (!PyArg_ParseTuple(args, "pO:_wait_ready", &for_put, &timeout)
        || mg_deadline_wait(timeout, &deadline) < 0) {
        return NULL;
    }
    ready_call c = {self->q, for_put};
    int rc = mg_block_call(ready_fn, &c, deadline);
    if (rc == MG_EINTR) {
        return NULL;
    }
    return PyBool_FromLong(rc == MG_OK);
}

/* aget()/aput() are coroutines of multigil._aio (Python: the event loop
 * waits in an executor thread on _wait_ready, then takes without waiting). */
static PyObject *
call_aio(PyObject *self, const char *name, PyObject *arg)
{
    PyObject *mod = PyImport_ImportModule("multigil._aio");
    if (mod == NULL) {
        return NULL;
    }
    PyObject *fn = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    if (fn == NULL) {
        return NULL;
    }
    PyObject *r = arg ? PyObject_CallFunctionObjArgs(fn, self, arg, NULL)
                      : PyObject_CallOneArg(fn, self);
    Py_DECREF(fn);
    return r;
}

static PyObject *
Queue_aget(PyObject *self, PyObject *unused)
{
    (void)unused;
    return call_aio(self, "aget", NULL);
}

static PyObject *
Queue_aput(PyObject *self, PyObject *obj)
{
    return call_aio(self, "aput", obj);
}

static PyObject *
Queue_reduce(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyErr_SetString(PyExc_TypeError,
                    "a multigil Queue crosses interpreters only as a handle "
                    "through multigil (pass it to a task, or put it in a "
                    "Queue); it cannot be pickled on its own");
    return NULL;
}

static PyObject *
Queue_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || !PyObject_TypeCheck(b, Py_TYPE(a))) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int same = ((MgQueueObject *)a)->q == ((MgQueueObject *)b)->q;
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

static Py_hash_t
Queue_hash(MgQueueObject *self)
{
    Py_hash_t h = (Py_hash_t)((uintptr_t)self->q >> 4);
    return h == -1 ? -2 : h;
}

static PyObject *
Queue_get_maxsize(MgQueueObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSize_t(self->q->maxsize);
}

static PyObject *
Queue_get_closed(MgQueueObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(mg_queue_is_closed(self->q));
}

static PyObject *
Queue_repr(MgQueueObject *self)
{
    return PyUnicode_FromFormat("<multigil.Queue maxsize=%zu qsize=%zu%s>",
                                self->q->maxsize, mg_queue_size(self->q),
                                mg_queue_is_closed(self->q) ? " closed" : "");
}

#define KW (METH_VARARGS | METH_KEYWORDS)

static PyMethodDef Queue_methods[] = {
    {"put", (PyCFunction)(void (*)(void))Queue_put, KW,
     PyDoc_STR("put(obj, block=True, timeout=None)\n--\n\nAppend obj "
               "(encoded now); waits for room in a bounded queue. "
               "QueueFull on timeout, QueueClosed after close().")},
    {"put_nowait", (PyCFunction)Queue_put_nowait, METH_O,
     PyDoc_STR("put_nowait(obj, /)\n--\n\nput(obj, block=False).")},
    {"put_many", (PyCFunction)(void (*)(void))Queue_put_many, KW,
     PyDoc_STR("put_many(items, block=True, timeout=None)\n--\n\nEncode "
               "every item, then append them with one lock round trip "
               "(more when a bounded queue must make room). On QueueFull "
               "or QueueClosed the items already appended stay; the "
               "exception's items_put says how many.")},
    {"get", (PyCFunction)(void (*)(void))Queue_get, KW,
     PyDoc_STR("get(block=True, timeout=None)\n--\n\nRemove and return "
               "the oldest item. QueueEmpty on timeout; QueueClosed once "
               "closed and drained.")},
    {"get_nowait", (PyCFunction)Queue_get_nowait, METH_NOARGS,
     PyDoc_STR("get_nowait()\n--\n\nget(block=False).")},
    {"get_many", (PyCFunction)(void (*)(void))Queue_get_many, KW,
     PyDoc_STR("get_many(max_items, block=True, timeout=None)\n--\n\n"
               "A list of 1 to max_items oldest items, taken with one lock "
               "round trip; waits for the first.")},
    {"qsize", (PyCFunction)Queue_qsize, METH_NOARGS,
     PyDoc_STR("qsize()\n--\n\nItems queued now.")},
    {"empty", (PyCFunction)Queue_empty, METH_NOARGS,
     PyDoc_STR("empty()\n--\n\nqsize() == 0.")},
    {"full", (PyCFunction)Queue_full, METH_NOARGS,
     PyDoc_STR("full()\n--\n\nA bounded queue holds maxsize items.")},
    {"task_done", (PyCFunction)Queue_task_done, METH_NOARGS,
     PyDoc_STR("task_done()\n--\n\nAs queue.Queue.task_done: a consumer "
               "is done with an item it got (in any interpreter). "
               "ValueError if called more times than items were put.")},
    {"join", (PyCFunction)Queue_join, METH_NOARGS,
     PyDoc_STR("join()\n--\n\nAs queue.Queue.join: waits until every "
               "item put has had its task_done(); Ctrl-C interrupts it.")},
    {"shutdown", (PyCFunction)(void (*)(void))Queue_shutdown, KW,
     PyDoc_STR("shutdown(immediate=False)\n--\n\nAs queue.Queue.shutdown "
               "(3.13): close(); with immediate, what is queued is dropped "
               "(and counted as done for join()).")},
    {"close", (PyCFunction)Queue_close, METH_NOARGS,
     PyDoc_STR("close()\n--\n\nLater puts raise QueueClosed; gets drain "
               "what is left, then raise QueueClosed (iteration ends).")},
    {"aget", (PyCFunction)Queue_aget, METH_NOARGS,
     PyDoc_STR("aget()\n--\n\nAwaitable get() that does not block the "
               "event loop.")},
    {"aput", (PyCFunction)Queue_aput, METH_O,
     PyDoc_STR("aput(obj, /)\n--\n\nAwaitable put() that does not block "
               "the event loop.")},
    {"_wait_ready", (PyCFunction)Queue_wait_ready, METH_VARARGS,
     PyDoc_STR("_wait_ready(for_put, timeout, /)\n--\n\nWait until a get "
               "(a put) would not block; takes nothing. True if ready.")},
    {"__reduce__", Queue_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Queue_getset[] = {
    {"maxsize", (getter)Queue_get_maxsize, NULL,
     PyDoc_STR("The bound given at creation (0: unbounded)."), NULL},
    {"closed", (getter)Queue_get_closed, NULL,
     PyDoc_STR("True once close() was called."), NULL},
    {"is_shutdown", (getter)Queue_get_closed, NULL,
     PyDoc_STR("queue.Queue's name for closed (3.13)."), NULL},
    {"unfinished_tasks", (getter)Queue_get_unfinished, NULL,
     PyDoc_STR("Items put and not yet task_done()'d."), NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Queue_slots[] = {
    {Py_tp_new, Queue_new},
    {Py_tp_dealloc, Queue_dealloc},
    {Py_tp_methods, Queue_methods},
    {Py_tp_getset, Queue_getset},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, Queue_iternext},
    {Py_tp_richcompare, Queue_richcompare},
    {Py_tp_hash, Queue_hash},
    {Py_tp_repr, Queue_repr},
    {Py_tp_doc, PyDoc_STR(
        "Queue(maxsize=0)\n--\n\nA FIFO shared by every interpreter of the "
        "process: items are encoded by the codec on put and decoded on get "
        "(SharedArrays and Queues move as handles). maxsize > 0 bounds it.")},
    {0, NULL},
};

static PyType_Spec Queue_spec = {
    .name = "multigil.Queue",
    .basicsize = sizeof(MgQueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Queue_slots,
};

/* ---- Queue as a handle (handles.h): the handle is the mg_queue; no
 * metadata. ---- */

static int
queue_handle_check(mg_state *st, PyObject *obj)
{
    return st->QueueType != NULL && PyObject_TypeCheck(obj, st->QueueType);
}

static int
queue_handle_export(mg_state *st, PyObject *obj, mg_handle **h,
                    unsigned char *meta, size_t *meta_len)
{
    (void)st;
    (void)meta;
    *meta_len = 0;
    *h = &((MgQueueObject *)obj)->q->h;
    return 0;
}

static PyObject *
queue_handle_wrap(mg_state *st, mg_handle *h, const unsigned char *meta,
                  size_t meta_len)
{
    (void)meta;
    mg_queue *q = mg_queue_from_handle(h);
    if (q == NULL || meta_len != 0) {
        return PyErr_Format(PyExc_ValueError, "invalid Queue handle");
    }
    return queue_wrap(st, q);
}

static const mg_handle_type queue_handle_type = {
    &mg_queue_kind, queue_handle_check, queue_handle_export,
    queue_handle_wrap,
};

/* ---- module ---- */

/* A new exception class mod.name with these bases (a tuple, or a type). */
static PyObject *
add_exception(PyObject *mod, const char *name, const char *doc,
              PyObject *bases)
{
    PyObject *exc = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
    if (exc != NULL && PyModule_AddObjectRef(mod, strrchr(name, '.') + 1,
                                             exc) < 0) {
        Py_CLEAR(exc);
    }
    return exc;
}

/* (MultigilError, queue.<name>) */
static PyObject *
stdlib_bases(mg_state *st, PyObject *queue_mod, const char *name)
{
    PyObject *base = PyObject_GetAttrString(queue_mod, name);
    if (base == NULL) {
        return NULL;
    }
    PyObject *bases = PyTuple_Pack(2, st->MultigilError, base);
    Py_DECREF(base);
    return bases;
}

static int
queue_add_exceptions(PyObject *mod, mg_state *st)
{
    PyObject *qmod = PyImport_ImportModule("queue");
    if (qmod == NULL) {
        return -1;
    }
    PyObject *eb = stdlib_bases(st, qmod, "Empty");
    PyObject *fb = eb ? stdlib_bases(st, qmod, "Full") : NULL;
    /* 3.13+: queue.ShutDown, so code written for queue.Queue.shutdown()
     * catches a closed mg.Queue. */
    PyObject *cb = NULL;
    if (fb != NULL && PyObject_HasAttrString(qmod, "ShutDown")) {
        cb = stdlib_bases(st, qmod, "ShutDown");
    }
    else if (fb != NULL) {
        cb = Py_NewRef(st->MultigilError);
    }
    Py_DECREF(qmod);
    if (cb != NULL) {
        st->QueueEmpty = add_exception(
            mod, "multigil.QueueEmpty",
            "get() found no item in time (a queue.Empty).", eb);
        st->QueueFull = st->QueueEmpty == NULL ? NULL : add_exception(
            mod, "multigil.QueueFull",
            "put() found no room in time (a queue.Full).", fb);
        st->QueueClosed = st->QueueFull == NULL ? NULL : add_exception(
            mod, "multigil.QueueClosed",
            "put() on a closed Queue, or get() on a closed, drained one "
            "(on 3.13+ a queue.ShutDown).", cb);
    }
    Py_XDECREF(eb);
    Py_XDECREF(fb);
    Py_XDECREF(cb);
    return st->QueueClosed == NULL ? -1 : 0;
}

int
mg_queue_module_add(PyObject *mod, mg_state *st)
{
    if (queue_add_exceptions(mod, st) < 0) {
        return -1;
    }
    st->QueueType =
        (PyTypeObject *)PyType_FromModuleAndSpec(mod, &Queue_spec, NULL);
    if (st->QueueType == NULL
        || PyModule_AddType(mod, st->QueueType) < 0) {
        return -1;
    }
    return mg_handles_register(st, &queue_handle_type);
}

int
mg_queue_state_traverse(mg_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->QueueType);
    Py_VISIT(st->QueueEmpty);
    Py_VISIT(st->QueueFull);
    Py_VISIT(st->QueueClosed);
    return 0;
}

void
mg_queue_state_clear(mg_state *st)
{
    Py_CLEAR(st->QueueType);
    Py_CLEAR(st->QueueEmpty);
    Py_CLEAR(st->QueueFull);
    Py_CLEAR(st->QueueClosed);
}
