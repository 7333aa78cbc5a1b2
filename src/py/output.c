/* output.c - a pool's output channel (output.h): worker interpreters'
 * sys.stdout / sys.stderr and logging records, delivered in the owner.
 *
 *   worker interpreter (its GIL)         owner interpreter (owner GIL)
 *   ----------------------------         -----------------------------
 *   sys.stdout.write(s): line buffer     the pump thread: woken by a push,
 *   per stream (mg_linebuf); complete    takes a batch, writes it to the
 *   lines, tagged "[mg-<pool>-w<i>] ",   owner's *current* sys.stdout /
 *   go into the pool's FIFO (outq.c)     sys.stderr; logging records go to
 *   logging: multigil._output's handler  multigil._output.deliver (a
 *   encodes the record (codec) into it   LogRecord for the owner's logging)
 *
 * A task's worker, at the end of the task, pushes its unfinished lines
 * and, holding the owner GIL to complete the future, delivers the FIFO up
 * to them first (or waits, owner GIL released, while another thread
 * delivers them): what a task printed is out before its result is.
 * Threads a task started write into the same FIFO; the pump delivers
 * their lines. Nothing is lost at shutdown: the pump runs until every
 * worker has ended its interpreter, then delivers what is left and exits;
 * the last worker joins it before counting itself out of the pool.
 * Bounded memory: a push beyond MG_OUT_LIMIT bytes queued waits (its GIL
 * released) until a batch is delivered (backpressure; nothing dropped).
 * Owns: mg_out and its ports (one per worker: tag, line buffers), the
 * writer type, the logging import hook type, the pump thread.
 * Locks: only the FIFO's own (outq.c), never held across user code or a
 * wait; one drainer at a time (the FIFO's drainer role) keeps batches in
 * order. Never: hold a lock while writing to a stream or calling logging
 * (user code); block holding a GIL (every wait drops it); call
 * PyGILState_*. A line buffer is touched only under its worker's GIL, or
 * with no GIL once that worker's interpreter has ended.
 */
#include "output.h"
#include "codec.h"
#include "outq.h"

#include <stdio.h>
#include <string.h>

/* Bytes queued before a writer waits for delivery. */
#define MG_OUT_LIMIT ((size_t)1 << 20)

enum { OUT_STDOUT = 0, OUT_STDERR = 1, OUT_LOG = 2 };

typedef struct mg_out_port {
    mg_out *out;
    int index;
    unsigned long ident;     /* the worker thread (for logging) */
    char name[64];           /* mg-<pool>-w<i> */
    char tag[72];            /* "[name] " */
    size_t taglen;
    mg_linebuf line[2];      /* stdout, stderr (see the header) */
    int unflushed[2];        /* lines pushed since the last flush marker
                                (worker GIL) */
    atomic_int wrote;        /* pushed since the last task end */
} mg_out_port;

struct mg_out {
    mg_outq q;
    int nports;
    mg_out_port *ports;
    PyInterpreterState *owner_interp;
    mg_state *owner_st;
    int log_level;
    atomic_int live;   /* workers and the starter that may still push */
    atomic_int stop;   /* the pump delivers what is left and exits */
    pthread_t pump;
    int have_pump;
    char pool_name[48];
};

/* ---- pushing (any thread; waits drop the caller's GIL) ---- */

/* Queues r, waiting with the GIL released while the FIFO is full. */
static void
push_wait(mg_out_port *port, mg_outrec *r)
{
    mg_outq *q = &port->out->q;
    int kind = r->kind, flush = r->flush; /* r is the drainer's once in */
    uint64_t seq;
    uint32_t seen;
    while (mg_outq_push(q, r, 0, &seq, &seen) == MG_EFULL) {
        Py_BEGIN_ALLOW_THREADS
        (void)mg_wait_changed(&q->progress, seen, MG_WAIT_SLICE_NS, NULL);
        Py_END_ALLOW_THREADS
    }
    if (kind != OUT_LOG) {
        port->unflushed[kind] = !flush;
    }
    atomic_store(&port->wrote, 1);
}

/* Pushes the text waiting in the port's line buffers (as lines). force:
 * no GIL to drop (the interpreter has ended), never wait. */
static void
push_partial(mg_out_port *port, int force)
{
    for (int k = OUT_STDOUT; k <= OUT_STDERR; k++) {
        mg_outrec *r = mg_linebuf_flush(&port->line[k], port->tag,
                                        port->taglen, k);
        if (r == NULL) {
            continue;
        }
        if (force) {
            uint64_t seq;
            uint32_t seen;
            (void)mg_outq_push(&port->out->q, r, 1, &seq, &seen);
            atomic_store(&port->wrote, 1);
        }
        else {
            push_wait(port, r);
        }
    }
}

/* ---- delivering (owner GIL held, no lock held) ---- */

/* stream.write(text); a text the stream cannot encode (a lone surrogate
 * for a strict stream) is written with backslash escapes instead. */
static void
write_text(int kind, PyObject *text)
{
    PyObject *stream = PySys_GetObject(kind == OUT_STDERR ? "stderr"
                                                          : "stdout");
    if (stream == NULL || stream == Py_None) {
        PyErr_Clear();
        return; /* no stream: as print() does, nothing to write to */
    }
    Py_INCREF(stream);
    PyObject *r = PyObject_CallMethod(stream, "write", "O", text);
    if (r == NULL && PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
        PyErr_Clear();
        PyObject *b = PyUnicode_AsEncodedString(text, "utf-8",
                                                "backslashreplace");
        PyObject *esc = b ? PyUnicode_FromEncodedObject(b, "utf-8", "strict")
                          : NULL;
        Py_XDECREF(b);
        r = esc ? PyObject_CallMethod(stream, "write", "O", esc) : NULL;
        Py_XDECREF(esc);
    }
    if (r == NULL) {
        PyErr_WriteUnraisable(stream);
    }
    Py_XDECREF(r);
    Py_DECREF(stream);
}

static void
flush_stream(int kind)
{
    PyObject *stream = PySys_GetObject(kind == OUT_STDERR ? "stderr"
                                                          : "stdout");
    if (stream == NULL || stream == Py_None) {
        PyErr_Clear();
        return;
    }
    Py_INCREF(stream);
    PyObject *r = PyObject_CallMethod(stream, "flush", NULL);
    if (r == NULL) {
        PyErr_WriteUnraisable(stream);
    }
    Py_XDECREF(r);
    Py_DECREF(stream);
}

/* Writes the text of the run of records [first, end) (all of one kind)
 * as one string. */
static void
deliver_run(mg_outrec *first, mg_outrec *end)
{
    size_t n = 0;
    for (mg_outrec *r = first; r != end; r = r->next) {
        n += r->len;
    }
    if (n == 0) {
        return;
    }
    PyObject *text;
    if (first->next == end) {
        text = PyUnicode_DecodeUTF8(first->text, (Py_ssize_t)first->len,
                                    "surrogatepass");
    }
    else {
        char *joined = MG_RAW_MALLOC(n);
        if (joined == NULL) {
            PyErr_NoMemory();
            PyErr_WriteUnraisable(NULL);
            return;
        }
        char *p = joined;
        for (mg_outrec *r = first; r != end; r = r->next) {
            memcpy(p, r->text, r->len);
            p += r->len;
        }
        text = PyUnicode_DecodeUTF8(joined, (Py_ssize_t)n, "surrogatepass");
        MG_RAW_FREE(joined);
    }
    if (text == NULL) {
        PyErr_WriteUnraisable(NULL);
        return;
    }
    write_text(first->kind, text);
    Py_DECREF(text);
}

/* multigil._output.deliver(fields) for a logging record. */
static void
deliver_log(mg_out *o, mg_outrec *r)
{
    mg_state *st = o->owner_st;
    if (st->out_deliver == NULL) {
        PyObject *mod = PyImport_ImportModule("multigil._output");
        st->out_deliver = mod ? PyObject_GetAttrString(mod, "deliver") : NULL;
        Py_XDECREF(mod);
        if (st->out_deliver == NULL) {
            PyErr_WriteUnraisable(NULL);
            return;
        }
    }
    PyObject *fields = mg_codec_decode(st, &r->msg);
    PyObject *res = fields ? PyObject_CallOneArg(st->out_deliver, fields)
                           : NULL;
    if (res == NULL) {
        PyErr_WriteUnraisable(st->out_deliver);
    }
    Py_XDECREF(res);
    Py_XDECREF(fields);
}

/* Delivers a batch in order: runs of text of one stream as one write,
 * logging records one by one, flushes where writers asked for them. */
static void
deliver_batch(mg_out *o, mg_outrec *batch)
{
    int flush[2] = {0, 0};
    mg_outrec *r = batch;
    while (r != NULL) {
        if (r->kind == OUT_LOG) {
            deliver_log(o, r);
            r = r->next;
            continue;
        }
        mg_outrec *end = r;
        while (end != NULL && end->kind == r->kind) {
            flush[r->kind] |= end->flush;
            end = end->next;
        }
        deliver_run(r, end);
        r = end;
    }
    for (int k = OUT_STDOUT; k <= OUT_STDERR; k++) {
        if (flush[k]) {
            flush_stream(k);
        }
    }
}

/* Takes and delivers one batch if nobody else is delivering: 1 if one
 * was delivered, 0 if the FIFO was empty, -1 if another thread is busy
 * delivering. */
static int
deliver_one_batch(mg_out *o)
{
    int busy;
    mg_outrec *batch = mg_outq_take(&o->q, &busy);
    if (batch == NULL) {
        return busy ? -1 : 0;
    }
    deliver_batch(o, batch);
    mg_outq_done(&o->q, batch);
    return 1;
}

void
mg_out_deliver(mg_out *o, uint64_t seq)
{
    while (atomic_load(&o->q.delivered) < seq) {
        uint32_t seen = mg_wait_seq(&o->q.progress);
        int rc = deliver_one_batch(o);
        if (rc == 0) {
            return; /* empty and nobody delivering: all of it is out */
        }
        if (rc < 0 && atomic_load(&o->q.delivered) < seq) {
            Py_BEGIN_ALLOW_THREADS
            (void)mg_wait_changed(&o->q.progress, seen, MG_WAIT_SLICE_NS,
                                  NULL);
            Py_END_ALLOW_THREADS
        }
    }
}

/* ---- the pump thread (owner interpreter, a thread state of its own) ---- */

static void *
pump_main(void *arg)
{
    mg_out *o = arg;
    char tname[16];
    snprintf(tname, sizeof(tname), "mg-%.6s-out", o->pool_name);
    pthread_setname_np(pthread_self(), tname);
    PyThreadState *ts = PyThreadState_New(o->owner_interp);
    for (;;) {
        uint32_t seen = mg_wait_seq(&o->q.avail);
        uint32_t progress = mg_wait_seq(&o->q.progress);
        if (mg_outq_pending(&o->q)) {
            int rc;
            if (ts != NULL) {
                PyEval_RestoreThread(ts);
                while ((rc = deliver_one_batch(o)) > 0) {
                }
                (void)PyEval_SaveThread();
            }
            else {
                /* No thread state (out of memory): nothing can be
                 * written; let writers go on rather than wait forever. */
                int busy;
                mg_outrec *batch = mg_outq_take(&o->q, &busy);
                if (batch != NULL) {
                    mg_outq_done(&o->q, batch);
                }
                rc = busy ? -1 : 0;
            }
            if (rc < 0) {
                (void)mg_wait_changed(&o->q.progress, progress,
                                      MG_WAIT_SLICE_NS, NULL);
            }
            continue;
        }
        if (atomic_load(&o->stop)) {
            break;
        }
        (void)mg_wait_changed(&o->q.avail, seen, -1, NULL);
    }
    if (ts != NULL) {
        PyEval_RestoreThread(ts);
        PyThreadState_Clear(ts);
        PyThreadState_DeleteCurrent();
    }
    return NULL;
}

/* One fewer thread may push; the last one stops and joins the pump. No
 * GIL held. */
static void
out_release(mg_out *o)
{
    if (atomic_fetch_sub(&o->live, 1) != 1) {
        return;
    }
    atomic_store(&o->stop, 1);
    mg_wait_wake(&o->q.avail, MG_WAKE_ALL);
    if (o->have_pump) {
        pthread_join(o->pump, NULL);
        o->have_pump = 0;
    }
}

/* ---- life ---- */

static void
port_init(mg_out *o, mg_out_port *port, int index)
{
    port->out = o;
    port->index = index;
    snprintf(port->name, sizeof(port->name), "mg-%s-w%d", o->pool_name,
             index);
    snprintf(port->tag, sizeof(port->tag), "[%s] ", port->name);
    port->taglen = strlen(port->tag);
    mg_linebuf_init(&port->line[0]);
    mg_linebuf_init(&port->line[1]);
    atomic_init(&port->wrote, 0);
}

mg_out *
mg_out_new(mg_state *owner_st, const char *pool_name, int nworkers,
           int log_level)
{
    mg_out *o = MG_RAW_CALLOC(1, sizeof(*o));
    if (o == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    o->ports = MG_RAW_CALLOC((size_t)nworkers, sizeof(mg_out_port));
    if (o->ports == NULL || mg_outq_init(&o->q, MG_OUT_LIMIT) != MG_OK) {
        MG_RAW_FREE(o->ports);
        MG_RAW_FREE(o);
        PyErr_NoMemory();
        return NULL;
    }
    o->nports = nworkers;
    o->owner_interp = PyInterpreterState_Get();
    o->owner_st = owner_st;
    o->log_level = log_level;
    snprintf(o->pool_name, sizeof(o->pool_name), "%s", pool_name);
    atomic_init(&o->live, nworkers + 1);
    atomic_init(&o->stop, 0);
    for (int i = 0; i < nworkers; i++) {
        port_init(o, &o->ports[i], i);
    }
    if (pthread_create(&o->pump, NULL, pump_main, o) != 0) {
        mg_out_free(o);
        PyErr_SetString(PyExc_OSError,
                        "multigil: cannot start the output thread");
        return NULL;
    }
    o->have_pump = 1;
    return o;
}

void
mg_out_free(mg_out *o)
{
    if (o == NULL) {
        return;
    }
    for (int i = 0; i < o->nports; i++) {
        mg_linebuf_fini(&o->ports[i].line[0]);
        mg_linebuf_fini(&o->ports[i].line[1]);
    }
    mg_outq_fini(&o->q);
    MG_RAW_FREE(o->ports);
    MG_RAW_FREE(o);
}

void
mg_out_starter_done(mg_out *o, int unstarted)
{
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < unstarted; i++) {
        out_release(o);
    }
    out_release(o);
    Py_END_ALLOW_THREADS
}

uint64_t
mg_out_task_end(mg_out *o, int index)
{
    mg_out_port *port = &o->ports[index];
    push_partial(port, 0);
    if (!atomic_exchange(&port->wrote, 0)) {
        return 0;
    }
    return atomic_load(&o->q.pushed);
}

void
mg_out_worker_done(mg_out *o, int index)
{
    push_partial(&o->ports[index], 1);
    out_release(o);
}

/* ---- the writer type (worker interpreters' sys.stdout / sys.stderr) ---- */

typedef struct {
    PyObject_HEAD
    mg_out_port *port; /* its worker's; outlives the interpreter */
    int kind;          /* OUT_STDOUT or OUT_STDERR */
} WriterObject;

static PyObject *
Writer_write(WriterObject *self, PyObject *s)
{
    if (!PyUnicode_Check(s)) {
        return PyErr_Format(PyExc_TypeError,
                            "write() argument must be str, not %.100s",
                            Py_TYPE(s)->tp_name);
    }
    Py_ssize_t n;
    PyObject *bytes = NULL;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) {
        /* Lone surrogates (surrogateescape'd bytes) cross as they are. */
        PyErr_Clear();
        bytes = PyUnicode_AsEncodedString(s, "utf-8", "surrogatepass");
        if (bytes == NULL) {
            return NULL;
        }
        u = PyBytes_AS_STRING(bytes);
        n = PyBytes_GET_SIZE(bytes);
    }
    mg_out_port *port = self->port;
    int err;
    mg_outrec *r = mg_linebuf_feed(&port->line[self->kind], port->tag,
                                   port->taglen, u, (size_t)n, self->kind,
                                   &err);
    Py_XDECREF(bytes);
    if (r != NULL) {
        push_wait(port, r);
    }
    if (err != MG_OK) {
        return PyErr_NoMemory();
    }
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(s));
}

static PyObject *
Writer_writelines(WriterObject *self, PyObject *lines)
{
    PyObject *it = PyObject_GetIter(lines);
    if (it == NULL) {
        return NULL;
    }
    PyObject *line;
    while ((line = PyIter_Next(it)) != NULL) {
        PyObject *r = Writer_write(self, line);
        Py_DECREF(line);
        if (r == NULL) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Whole lines are already on their way; a flush asks the owner to flush
 * its stream after them. Text without a newline stays until its line
 * ends (or the task does): sent early, another worker's line could land
 * in the middle of it. */
static PyObject *
Writer_flush(WriterObject *self, PyObject *unused)
{
    (void)unused;
    mg_out_port *port = self->port;
    if (port->unflushed[self->kind]) {
        mg_outrec *r = mg_outrec_new(self->kind, 0);
        if (r == NULL) {
            return PyErr_NoMemory();
        }
        r->flush = 1;
        push_wait(port, r);
    }
    Py_RETURN_NONE;
}

static PyObject *
Writer_fileno(WriterObject *self, PyObject *unused)
{
    (void)unused;
    /* The process's own descriptor: what a child process or a C library
     * writes there goes straight out, untagged. */
    return PyLong_FromLong(self->kind == OUT_STDERR ? 2 : 1);
}

static PyObject *
Writer_true(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_TRUE;
}

static PyObject *
Writer_false(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_FALSE;
}

static PyObject *
Writer_repr(WriterObject *self)
{
    return PyUnicode_FromFormat("<multigil %s of %s>",
                                self->kind == OUT_STDERR ? "stderr"
                                                         : "stdout",
                                self->port->name);
}

static PyObject *
Writer_get_name(WriterObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(self->kind == OUT_STDERR ? "<stderr>"
                                                         : "<stdout>");
}

static PyObject *
Writer_get_const(WriterObject *self, void *closure)
{
    (void)self;
    return PyUnicode_FromString((const char *)closure);
}

static PyObject *
Writer_get_false(WriterObject *self, void *closure)
{
    (void)self;
    (void)closure;
    Py_RETURN_FALSE;
}

static PyMethodDef Writer_methods[] = {
    {"write", (PyCFunction)Writer_write, METH_O,
     PyDoc_STR("write($self, s, /)\n--\n\nForward s to the owner "
               "interpreter, whole lines at a time.")},
    {"writelines", (PyCFunction)Writer_writelines, METH_O, NULL},
    {"flush", (PyCFunction)Writer_flush, METH_NOARGS, NULL},
    {"fileno", (PyCFunction)Writer_fileno, METH_NOARGS, NULL},
    {"writable", Writer_true, METH_NOARGS, NULL},
    {"readable", Writer_false, METH_NOARGS, NULL},
    {"seekable", Writer_false, METH_NOARGS, NULL},
    {"isatty", Writer_false, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Writer_getset[] = {
    {"name", (getter)Writer_get_name, NULL, NULL, NULL},
    {"encoding", (getter)Writer_get_const, NULL, NULL, "utf-8"},
    {"errors", (getter)Writer_get_const, NULL, NULL, "surrogatepass"},
    {"mode", (getter)Writer_get_const, NULL, NULL, "w"},
    {"closed", (getter)Writer_get_false, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static void
Writer_dealloc(WriterObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyType_Slot Writer_slots[] = {
    {Py_tp_dealloc, Writer_dealloc},
    {Py_tp_methods, Writer_methods},
    {Py_tp_getset, Writer_getset},
    {Py_tp_repr, Writer_repr},
    {Py_tp_doc, PyDoc_STR("A worker interpreter's sys.stdout or sys.stderr:"
                          " whole lines go to the owner interpreter's, "
                          "tagged with the worker.")},
    {0, NULL},
};

static PyType_Spec Writer_spec = {
    .name = "multigil._core._OutputWriter",
    .basicsize = sizeof(WriterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Writer_slots,
};

static PyObject *
writer_new(mg_state *st, mg_out_port *port, int kind)
{
    WriterObject *w = PyObject_New(WriterObject, st->OutWriterType);
    if (w == NULL) {
        return NULL;
    }
    w->port = port;
    w->kind = kind;
    return (PyObject *)w;
}

/* ---- logging: forwarded however and whenever a task imports it ---- */

/* A sys.meta_path entry that lets every import but `logging` pass (one
 * string compare), and for logging hands the import to
 * multigil._output.logging_spec, which installs the forwarding handler
 * once the module has run. It removes itself first. Importing logging
 * costs a fresh interpreter ~10 ms, so workers do not import it
 * themselves. */
typedef struct {
    PyObject_HEAD
    int level;
} HookObject;

static PyObject *
Hook_find_spec(HookObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "find_spec(name, path=None, target=None)");
        return NULL;
    }
    if (PyUnicode_CompareWithASCIIString(args[0], "logging") != 0) {
        Py_RETURN_NONE;
    }
    int level = self->level;
    PyObject *meta = PySys_GetObject("meta_path"); /* borrowed */
    if (meta != NULL && PyList_Check(meta)) {
        /* (the import system holds the finder while it asks it) */
        PyObject *r = PyObject_CallMethod(meta, "remove", "O", self);
        if (r == NULL) {
            PyErr_Clear(); /* someone removed it already */
        }
        Py_XDECREF(r);
    }
    PyObject *mod = PyImport_ImportModule("multigil._output");
    PyObject *res = mod ? PyObject_CallMethod(
                              mod, "logging_spec", "OOOi", args[0],
                              nargs > 1 ? args[1] : Py_None,
                              nargs > 2 ? args[2] : Py_None, level)
                        : NULL;
    Py_XDECREF(mod);
    if (res == NULL) {
        /* logging itself still imports, without forwarding. */
        PyErr_WriteUnraisable((PyObject *)self);
        Py_RETURN_NONE;
    }
    return res;
}

static PyMethodDef Hook_methods[] = {
    {"find_spec", (PyCFunction)(void (*)(void))Hook_find_spec,
     METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static void
Hook_dealloc(HookObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyType_Slot Hook_slots[] = {
    {Py_tp_dealloc, Hook_dealloc},
    {Py_tp_methods, Hook_methods},
    {Py_tp_doc, PyDoc_STR("Installs multigil's logging forwarding when a "
                          "worker imports logging.")},
    {0, NULL},
};

static PyType_Spec Hook_spec = {
    .name = "multigil._core._LoggingHook",
    .basicsize = sizeof(HookObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Hook_slots,
};

/* Forwarding for the worker's logging: now if it is imported already,
 * else when it is. */
static int
install_logging(mg_state *st, int level)
{
    PyObject *name = PyUnicode_FromString("logging");
    PyObject *logging = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    if (logging != NULL) {
        Py_DECREF(logging);
        PyObject *mod = PyImport_ImportModule("multigil._output");
        PyObject *r = mod ? PyObject_CallMethod(mod, "install", "i", level)
                          : NULL;
        Py_XDECREF(mod);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *meta = PySys_GetObject("meta_path"); /* borrowed */
    if (meta == NULL || !PyList_Check(meta)) {
        return 0; /* no import system to hook: no logging either */
    }
    HookObject *hook = PyObject_New(HookObject, st->OutHookType);
    if (hook == NULL) {
        return -1;
    }
    hook->level = level;
    int rc = PyList_Insert(meta, 0, (PyObject *)hook);
    Py_DECREF(hook);
    return rc;
}

int
mg_out_install(mg_out *o, int index, unsigned long ident)
{
    mg_state *st = mg_state_current();
    if (st == NULL) {
        return -1;
    }
    mg_out_port *port = &o->ports[index];
    port->ident = ident;
    port->unflushed[0] = port->unflushed[1] = 0;
    /* What the previous interpreter of this worker left (at its exit). */
    push_partial(port, 0);
    st->out_port = port;
    PyObject *out = writer_new(st, port, OUT_STDOUT);
    PyObject *err = out ? writer_new(st, port, OUT_STDERR) : NULL;
    int rc = err ? PySys_SetObject("stdout", out) : -1;
    if (rc == 0) {
        rc = PySys_SetObject("stderr", err);
    }
    Py_XDECREF(out);
    Py_XDECREF(err);
    if (rc < 0) {
        return -1;
    }
    return install_logging(st, o->log_level);
}

/* ---- module functions for multigil._output ---- */

PyDoc_STRVAR(output_log_doc,
"_output_log($module, fields, /)\n--\n\n"
"Worker: queue a logging record (a dict of plain values) for the owner.");

static PyObject *
output_log(PyObject *mod, PyObject *fields)
{
    mg_state *st = mg_state_from_module(mod);
    mg_out_port *port = st->out_port;
    if (port == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "not in a worker that forwards its output");
        return NULL;
    }
    mg_outrec *r = mg_outrec_new(OUT_LOG, 0);
    if (r == NULL) {
        return PyErr_NoMemory();
    }
    if (mg_codec_encode(st, fields, &r->msg) < 0) {
        mg_outrec_free_list(r);
        return NULL;
    }
    push_wait(port, r);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(output_worker_doc,
"_output_worker($module, /)\n--\n\n"
"(name, thread ident) of the worker whose output this interpreter\n"
"forwards, or None.");

static PyObject *
output_worker(PyObject *mod, PyObject *unused)
{
    (void)unused;
    mg_out_port *port = mg_state_from_module(mod)->out_port;
    if (port == NULL) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(sk)", port->name, port->ident);
}

int
mg_output_module_add(PyObject *mod, mg_state *st)
{
    static PyMethodDef defs[] = {
        {"_output_log", output_log, METH_O, output_log_doc},
        {"_output_worker", output_worker, METH_NOARGS, output_worker_doc},
        {NULL, NULL, 0, NULL},
    };
    if (PyModule_AddFunctions(mod, defs) < 0) {
        return -1;
    }
    st->OutWriterType =
        (PyTypeObject *)PyType_FromModuleAndSpec(mod, &Writer_spec, NULL);
    if (st->OutWriterType == NULL) {
        return -1;
    }
    st->OutHookType =
        (PyTypeObject *)PyType_FromModuleAndSpec(mod, &Hook_spec, NULL);
    return st->OutHookType == NULL ? -1 : 0;
}

int
mg_output_state_traverse(mg_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->OutWriterType);
    Py_VISIT(st->OutHookType);
    Py_VISIT(st->out_deliver);
    return 0;
}

void
mg_output_state_clear(mg_state *st)
{
    Py_CLEAR(st->OutWriterType);
    Py_CLEAR(st->OutHookType);
    Py_CLEAR(st->out_deliver);
    st->out_port = NULL;
}
