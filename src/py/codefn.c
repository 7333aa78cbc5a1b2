/* codefn.c - functions that cross interpreters, by name or as code.
 *
 * Owns: the wire records for functions (TAG_FNREF, TAG_FNCODE, TAG_FNBACK),
 * modules (TAG_MODULE), functools.partial (TAG_PARTIAL) and bound methods
 * (TAG_METHOD); the caller-side cache of marshalled code and of the global
 * names a code object uses; the worker-side caches of functions by
 * reference and of code objects. Never caches a rebuilt function sent as
 * code, its globals or its cells: each message gets fresh ones (the
 * caller's snapshot at submit). Function references and module names are
 * signed payloads (mg_enc_signed): foreign bytes cannot make the decoder
 * import a module or fetch an attribute.
 *
 * A function importable as module.qualname crosses by reference. Any other
 * Python function (defined in __main__, a lambda, a nested function or a
 * closure) crosses as code: marshal of __code__, its defaults, kwdefaults,
 * closure cell values, and the globals its code reads (values through the
 * codec, modules by name, builtins left to the worker's builtins).
 * Functions that share a globals dict in the caller share one rebuilt
 * namespace in the worker. Recursion and mutual references between such
 * functions become back-references, patched in after the function exists.
 * Locks: none (per-interpreter caches, under that interpreter's GIL).
 */
#include "codec_impl.h"
#include "errors.h"

#include <marshal.h> /* PyMarshal_WriteObjectToString, ReadObject... */
#include <string.h>

/* ---- records: tag, u32 body length, body ---- */

static int
rec_begin(mg_enc *e, int tag, size_t *pos)
{
    unsigned char head[5] = {(unsigned char)tag, 0, 0, 0, 0};
    *pos = e->out->len + 1;
    return mg_enc_bytes(e, head, sizeof(head));
}

static int
rec_end(mg_enc *e, size_t pos)
{
    size_t n = e->out->len - pos - 4;
    if (n > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError,
                        "a function record is larger than 4 GiB");
        return -1;
    }
    uint32_t n32 = (uint32_t)n;
    memcpy(e->out->data + pos, &n32, 4);
    return 0;
}

static int
enc_utf8(mg_enc *e, PyObject *s)
{
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    if (p == NULL || mg_enc_varint(e, (uint64_t)n) < 0) {
        return -1;
    }
    return mg_enc_bytes(e, p, (size_t)n);
}

static int
fn_enter(mg_enc *e)
{
    if (e->depth >= MG_CODEC_MAX_DEPTH) {
        PyErr_Format(PyExc_ValueError,
                     "cannot encode a value nested deeper than %d levels "
                     "(a limit against runaway recursion)",
                     MG_CODEC_MAX_DEPTH);
        return -1;
    }
    e->depth++;
    return 0;
}

/* ---- by reference ---- */

/* getattr chain of dotted qualname from mod; new reference or NULL. */
static PyObject *
resolve_qualname(PyObject *mod, PyObject *qualname)
{
    PyObject *parts, *dot, *obj;
    dot = PyUnicode_FromString(".");
    if (dot == NULL) {
        return NULL;
    }
    parts = PyUnicode_Split(qualname, dot, -1);
    Py_DECREF(dot);
    if (parts == NULL) {
        return NULL;
    }
    obj = Py_NewRef(mod);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(parts) && obj; i++) {
        Py_SETREF(obj, PyObject_GetAttr(obj, PyList_GET_ITEM(parts, i)));
    }
    Py_DECREF(parts);
    return obj;
}

/* 1 if fn is module.qualname of an imported module (then *mod_out and
 * *qual_out are new references), 0 if not, -1 on a hard error. */
static int
importable_name(PyObject *fn, PyObject **mod_out, PyObject **qual_out)
{
    PyObject *modname = NULL, *qualname = NULL, *mod, *found = NULL;
    int r = 0;
    if (PyFunction_Check(fn)) {
        /* The hot path of every submit: no attribute lookups. */
        modname = Py_XNewRef(PyFunction_GetModule(fn));
        qualname = Py_XNewRef(((PyFunctionObject *)fn)->func_qualname);
    }
    else {
        modname = PyObject_GetAttrString(fn, "__module__");
        qualname = modname ? PyObject_GetAttrString(fn, "__qualname__")
                           : NULL;
    }
    if (qualname == NULL || modname == NULL || !PyUnicode_CheckExact(modname)
        || !PyUnicode_CheckExact(qualname)) {
        goto done;
    }
    if (PyUnicode_CompareWithASCIIString(modname, "__main__") == 0
        || PyUnicode_FindChar(qualname, '<', 0, PY_SSIZE_T_MAX, 1) != -1) {
        goto done;
    }
    /* Only modules already imported: sys.modules, borrowed. */
    mod = PyDict_GetItemWithError(PyImport_GetModuleDict(), modname);
    if (mod == NULL) {
        goto done;
    }
    if (PyUnicode_FindChar(qualname, '.', 0, PY_SSIZE_T_MAX, 1) == -1) {
        found = PyObject_GetAttr(mod, qualname);
    }
    else {
        found = resolve_qualname(mod, qualname);
    }
    if (found == fn) {
        *mod_out = Py_NewRef(modname);
        *qual_out = Py_NewRef(qualname);
        r = 1;
    }
done:
    if (r == 0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();
        }
        else {
            r = -1;
        }
    }
    Py_XDECREF(modname);
    Py_XDECREF(qualname);
    Py_XDECREF(found);
    return r;
}

/* A signed payload holding the UTF-8 names a (and b, unless NULL), each
 * as varint length + bytes: what a TAG_FNREF or TAG_MODULE record makes
 * the decoder import, so foreign bytes can never name a module. */
static int
enc_signed_names(mg_enc *e, int domain, PyObject *a, PyObject *b)
{
    mg_buf names = MG_BUF_INIT;
    mg_buf *out = e->out;
    e->out = &names;
    int rc = enc_utf8(e, a);
    if (rc == 0 && b != NULL) {
        rc = enc_utf8(e, b);
    }
    e->out = out;
    if (rc == 0) {
        rc = mg_enc_signed(e, domain, names.data, names.len);
    }
    mg_buf_release(&names);
    return rc;
}

static int
enc_fnref(mg_enc *e, PyObject *fn)
{
    PyObject *modname = NULL, *qualname = NULL;
    size_t pos;
    int r = importable_name(fn, &modname, &qualname);
    if (r <= 0) {
        return r;
    }
    if (rec_begin(e, TAG_FNREF, &pos) < 0
        || enc_signed_names(e, TAG_FNREF, modname, qualname) < 0
        || rec_end(e, pos) < 0) {
        r = -1;
    }
    Py_DECREF(modname);
    Py_DECREF(qualname);
    return r;
}

/* ---- modules ---- */

static int
enc_module(mg_enc *e, PyObject *mod)
{
    PyObject *name = PyModule_GetNameObject(mod);
    PyObject *same = NULL;
    int rc = -1;
    if (name == NULL) {
        goto done;
    }
    same = PyImport_GetModule(name);
    if (same != mod) {
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();
            mg_enc_not_shareable(e, mod,
                                 "it is not in sys.modules under its name, "
                                 "so a worker cannot import it");
        }
        goto done;
    }
    if (mg_enc_byte(e, TAG_MODULE) < 0
        || enc_signed_names(e, TAG_MODULE, name, NULL) < 0) {
        goto done;
    }
    rc = 1;
done:
    Py_XDECREF(name);
    Py_XDECREF(same);
    return rc;
}

/* ---- as code ---- */

/* (code, marshal bytes, global names, freevars) for code, cached by the
 * code object's identity (the entry keeps the code alive). */
static PyObject *
code_info(mg_state *st, PyObject *code)
{
    PyObject *key = NULL, *info = NULL, *data = NULL, *names = NULL;
    PyObject *freevars = NULL;
    key = PyLong_FromVoidPtr(code);
    if (key == NULL) {
        return NULL;
    }
    info = PyDict_GetItemWithError(st->code_cache, key);
    if (info != NULL && PyTuple_GET_ITEM(info, 0) == code) {
        Py_INCREF(info);
        goto done;
    }
    info = NULL;
    if (PyErr_Occurred()) {
        goto done;
    }
    if (st->codefn_helper == NULL) {
        PyObject *m = PyImport_ImportModule("multigil._codefn");
        if (m == NULL) {
            goto done;
        }
        st->codefn_helper = PyObject_GetAttrString(m, "global_names");
        Py_DECREF(m);
        if (st->codefn_helper == NULL) {
            goto done;
        }
    }
    data = PyMarshal_WriteObjectToString(code, Py_MARSHAL_VERSION);
    names = data ? PyObject_CallOneArg(st->codefn_helper, code) : NULL;
    freevars = names ? PyObject_GetAttrString(code, "co_freevars") : NULL;
    if (freevars == NULL) {
        goto done;
    }
    if (!PyTuple_Check(names) || !PyTuple_Check(freevars)) {
        PyErr_SetString(PyExc_SystemError, "bad code names");
        goto done;
    }
    info = PyTuple_Pack(4, code, data, names, freevars);
    if (info == NULL) {
        goto done;
    }
    if (PyDict_GET_SIZE(st->code_cache) >= MG_CODEC_CACHE_MAX) {
        PyDict_Clear(st->code_cache);
    }
    if (PyDict_SetItem(st->code_cache, key, info) < 0) {
        Py_CLEAR(info);
    }
done:
    Py_XDECREF(key);
    Py_XDECREF(data);
    Py_XDECREF(names);
    Py_XDECREF(freevars);
    return info;
}

/* Describes a NotShareableError from inside fn once (the innermost
 * function names the variable). Returns -1. */
static int
fn_error(mg_enc *e, PyObject *fn, const char *what, PyObject *name)
{
    if (e->err_wrapped
        || !PyErr_ExceptionMatches(e->st->NotShareableError)) {
        return -1;
    }
    e->err_wrapped = 1;
    PyObject *cause = PyErr_GetRaisedException();
    PyObject *qualname = PyObject_GetAttrString(fn, "__qualname__");
    if (qualname == NULL) {
        PyErr_Clear();
        qualname = PyUnicode_FromString("?");
    }
    if (qualname != NULL) {
        if (e->bad_type[0] == '\0') { /* a handle refused with its reason */
            PyErr_Format(e->st->NotShareableError,
                         "cannot send function %R: its %s %R: %S",
                         qualname, what, name, cause);
        }
        else {
            PyErr_Format(e->st->NotShareableError,
                         "cannot send function %R: its %s %R holds a %s, "
                         "which cannot cross interpreters",
                         qualname, what, name, e->bad_type);
        }
        Py_DECREF(qualname);
        PyObject *exc = PyErr_GetRaisedException();
        PyException_SetCause(exc, cause);
        PyErr_SetRaisedException(exc);
    }
    else {
        Py_DECREF(cause);
    }
    return -1;
}

/* The index of fn's globals dict among this record's namespaces, and the
 * set of names already sent for it (borrowed through *sent). */
static int
ns_index(mg_enc *e, PyObject *globals, Py_ssize_t *index, PyObject **sent)
{
    PyObject *key = PyLong_FromVoidPtr(globals);
    if (key == NULL) {
        return -1;
    }
    PyObject *entry = PyDict_GetItemWithError(e->ns_memo, key);
    int rc = -1;
    if (entry == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        PyObject *set = PySet_New(NULL);
        entry = set ? Py_BuildValue("(nNO)", PyDict_GET_SIZE(e->ns_memo),
                                    set, globals)
                    : NULL;
        if (entry == NULL || PyDict_SetItem(e->ns_memo, key, entry) < 0) {
            Py_XDECREF(entry);
            goto done;
        }
        Py_DECREF(entry); /* the memo keeps it */
    }
    *index = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 0));
    *sent = PyTuple_GET_ITEM(entry, 1);
    rc = 0;
done:
    Py_DECREF(key);
    return rc;
}

static int
enc_global_value(mg_enc *e, PyObject *v)
{
    if (PyModule_CheckExact(v)) {
        return enc_module(e, v) < 0 ? -1 : 0;
    }
    return mg_enc_value(e, v);
}

/* The globals of fn its code reads, not yet sent for this namespace:
 * a list of (name, value). */
static PyObject *
globals_to_send(PyObject *fn, PyObject *names, PyObject *sent)
{
    PyObject *globals = PyFunction_GetGlobals(fn);
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        int r = PySet_Contains(sent, name);
        if (r != 0) {
            if (r < 0) {
                goto error;
            }
            continue;
        }
        PyObject *v = PyDict_GetItemWithError(globals, name);
        if (v == NULL) {
            if (PyErr_Occurred()) {
                goto error;
            }
            continue; /* a builtin, or not defined yet */
        }
        PyObject *pair = PyTuple_Pack(2, name, v);
        if (pair == NULL || PyList_Append(out, pair) < 0
            || PySet_Add(sent, name) < 0) {
            Py_XDECREF(pair);
            goto error;
        }
        Py_DECREF(pair);
    }
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

static int
enc_cells(mg_enc *e, PyObject *fn, PyObject *freevars)
{
    PyObject *closure = PyFunction_GetClosure(fn);
    Py_ssize_t n = PyTuple_GET_SIZE(freevars);
    if (n > 0 && (closure == NULL || !PyTuple_Check(closure)
                  || PyTuple_GET_SIZE(closure) != n)) {
        PyErr_SetString(PyExc_SystemError, "closure does not match code");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyCell_Get(PyTuple_GET_ITEM(closure, i));
        if (v == NULL) {
            if (PyErr_Occurred() || mg_enc_byte(e, 0) < 0) {
                return -1;
            }
            continue;
        }
        int r = mg_enc_byte(e, 1);
        if (r == 0) {
            r = mg_enc_value(e, v);
        }
        Py_DECREF(v);
        if (r < 0) {
            return fn_error(e, fn, "closure variable",
                            PyTuple_GET_ITEM(freevars, i));
        }
    }
    return 0;
}

static int
enc_globals(mg_enc *e, PyObject *fn, PyObject *pairs)
{
    Py_ssize_t n = PyList_GET_SIZE(pairs);
    if (mg_enc_varint(e, (uint64_t)n) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        PyObject *name = PyTuple_GET_ITEM(pair, 0);
        if (mg_enc_str(e, name) < 0) {
            return -1;
        }
        if (enc_global_value(e, PyTuple_GET_ITEM(pair, 1)) < 0) {
            return fn_error(e, fn, "global", name);
        }
    }
    return 0;
}

static int
enc_opt(mg_enc *e, PyObject *fn, PyObject *v, const char *what)
{
    if (mg_enc_value(e, v ? v : Py_None) < 0) {
        PyObject *name = PyUnicode_FromString(what);
        if (name != NULL) {
            fn_error(e, fn, "default", name);
            Py_DECREF(name);
        }
        return -1;
    }
    return 0;
}

/* The body of a TAG_FNCODE record (see the decoder for the layout). */
static int
enc_fncode_body(mg_enc *e, PyObject *fn)
{
    PyObject *info = NULL, *name = NULL, *qualname = NULL, *pairs = NULL;
    PyObject *sent;
    Py_ssize_t ns;
    int rc = -1;
    info = code_info(e->st, PyFunction_GetCode(fn));
    if (info == NULL) {
        goto done;
    }
    PyObject *data = PyTuple_GET_ITEM(info, 1);
    PyObject *freevars = PyTuple_GET_ITEM(info, 3);
    if (ns_index(e, PyFunction_GetGlobals(fn), &ns, &sent) < 0) {
        goto done;
    }
    name = PyObject_GetAttrString(fn, "__name__");
    qualname = name ? PyObject_GetAttrString(fn, "__qualname__") : NULL;
    if (qualname == NULL) {
        goto done;
    }
    if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(qualname)) {
        PyErr_SetString(PyExc_TypeError,
                        "function __name__ and __qualname__ must be str");
        goto done;
    }
    PyObject *module = PyFunction_GetModule(fn);
    if (module == NULL || !PyUnicode_CheckExact(module)) {
        module = Py_None;
    }
    if (mg_enc_signed(e, TAG_FNCODE, PyBytes_AS_STRING(data),
                      (size_t)PyBytes_GET_SIZE(data)) < 0
        || mg_enc_varint(e, (uint64_t)ns) < 0
        || mg_enc_varint(e, (uint64_t)PyTuple_GET_SIZE(freevars)) < 0
        || mg_enc_str(e, name) < 0 || mg_enc_str(e, qualname) < 0
        || mg_enc_value(e, module) < 0) {
        goto done;
    }
    if (enc_opt(e, fn, PyFunction_GetDefaults(fn), "__defaults__") < 0
        || enc_opt(e, fn, PyFunction_GetKwDefaults(fn), "__kwdefaults__") < 0
        || enc_cells(e, fn, freevars) < 0) {
        goto done;
    }
    pairs = globals_to_send(fn, PyTuple_GET_ITEM(info, 2), sent);
    if (pairs == NULL || enc_globals(e, fn, pairs) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(info);
    Py_XDECREF(name);
    Py_XDECREF(qualname);
    Py_XDECREF(pairs);
    return rc;
}

/* Looks fn up in this record's memo: its index (>= 0), or -1 after adding
 * it, or -2 with an exception. */
static Py_ssize_t
fn_memo_lookup(mg_enc *e, PyObject *fn)
{
    PyObject *key = PyLong_FromVoidPtr(fn);
    if (key == NULL) {
        return -2;
    }
    Py_ssize_t r = -2;
    PyObject *entry = PyDict_GetItemWithError(e->fn_memo, key);
    if (entry != NULL) {
        r = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 0));
    }
    else if (!PyErr_Occurred()) {
        entry = Py_BuildValue("(nO)", PyDict_GET_SIZE(e->fn_memo), fn);
        if (entry != NULL && PyDict_SetItem(e->fn_memo, key, entry) == 0) {
            r = -1;
        }
        Py_XDECREF(entry);
    }
    Py_DECREF(key);
    return r;
}

static int
enc_fncode(mg_enc *e, PyObject *fn)
{
    int top = e->fn_nesting == 0;
    size_t pos;
    int rc = -1;
    if (fn_enter(e) < 0) {
        return -1;
    }
    if (top) {
        Py_XSETREF(e->fn_memo, PyDict_New());
        Py_XSETREF(e->ns_memo, PyDict_New());
        if (e->fn_memo == NULL || e->ns_memo == NULL) {
            goto done;
        }
    }
    Py_ssize_t index = fn_memo_lookup(e, fn);
    if (index == -2) {
        goto done;
    }
    if (index >= 0) {
        if (mg_enc_byte(e, TAG_FNBACK) == 0
            && mg_enc_varint(e, (uint64_t)index) == 0) {
            rc = 1;
        }
        goto done;
    }
    e->fn_nesting++;
    if (rec_begin(e, TAG_FNCODE, &pos) == 0 && enc_fncode_body(e, fn) == 0
        && rec_end(e, pos) == 0) {
        rc = 1;
    }
    e->fn_nesting--;
done:
    if (top) {
        Py_CLEAR(e->fn_memo);
        Py_CLEAR(e->ns_memo);
    }
    e->depth--;
    return rc;
}

/* ---- partial and bound methods ---- */

static int
enc_partial(mg_enc *e, PyObject *obj)
{
    PyObject *dict = NULL, *func = NULL, *args = NULL, *kw = NULL;
    int rc = -1;
    dict = PyObject_GetAttrString(obj, "__dict__");
    if (dict == NULL) {
        goto done;
    }
    if (!PyDict_Check(dict) || PyDict_GET_SIZE(dict) != 0) {
        rc = 0; /* attributes set on the partial: pickle keeps them */
        goto done;
    }
    func = PyObject_GetAttrString(obj, "func");
    args = func ? PyObject_GetAttrString(obj, "args") : NULL;
    kw = args ? PyObject_GetAttrString(obj, "keywords") : NULL;
    if (kw == NULL || fn_enter(e) < 0) {
        goto done;
    }
    if (mg_enc_byte(e, TAG_PARTIAL) == 0 && mg_enc_value(e, func) == 0
        && mg_enc_value(e, args) == 0 && mg_enc_value(e, kw) == 0) {
        rc = 1;
    }
    e->depth--;
done:
    Py_XDECREF(dict);
    Py_XDECREF(func);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    return rc;
}

static int
enc_method(mg_enc *e, PyObject *obj)
{
    if (fn_enter(e) < 0) {
        return -1;
    }
    int rc = -1;
    if (mg_enc_byte(e, TAG_METHOD) == 0
        && mg_enc_value(e, PyMethod_GET_FUNCTION(obj)) == 0
        && mg_enc_value(e, PyMethod_GET_SELF(obj)) == 0) {
        rc = 1;
    }
    e->depth--;
    return rc;
}

/* functools.partial, or NULL. With import_it == 0 it is found only if
 * functools is already imported: no partial object can exist otherwise.
 * NULL with import_it == 1 means an exception is set. */
static PyObject *
partial_type(mg_state *st, int import_it)
{
    if (st->partial_type != NULL) {
        return st->partial_type;
    }
    PyObject *mod;
    if (import_it) {
        mod = PyImport_ImportModule("functools");
    }
    else {
        PyObject *name = PyUnicode_FromString("functools");
        mod = name ? PyImport_GetModule(name) : NULL;
        Py_XDECREF(name);
        if (mod == NULL) {
            PyErr_Clear();
            return NULL;
        }
    }
    if (mod == NULL) {
        return NULL;
    }
    st->partial_type = PyObject_GetAttrString(mod, "partial");
    Py_DECREF(mod);
    if (st->partial_type == NULL && !import_it) {
        PyErr_Clear();
    }
    return st->partial_type;
}

int
mg_codefn_encode(mg_enc *e, PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp == &PyFunction_Type) {
        int r = enc_fnref(e, obj);
        return r != 0 ? r : enc_fncode(e, obj);
    }
    if (tp == &PyCFunction_Type) {
        return enc_fnref(e, obj);
    }
    if (tp == &PyMethod_Type) {
        return enc_method(e, obj);
    }
    if (partial_type(e->st, 0) == (PyObject *)tp) {
        return enc_partial(e, obj);
    }
    if (tp == &PyModule_Type) {
        return enc_module(e, obj);
    }
    return 0;
}

/* ---- decoding ---- */

/* Reads a record's u32 length; on success [*start, *stop) is the record
 * from its tag byte (the cache key) and d->end is narrowed to the body.
 * *saved_end receives the old end. */
static int
rec_open(mg_dec *d, const unsigned char **start,
         const unsigned char **saved_end)
{
    uint32_t n;
    *start = d->p - 1;
    if (mg_dec_need(d, 4, "a function record") < 0) {
        return -1;
    }
    memcpy(&n, d->p, 4);
    d->p += 4;
    if (mg_dec_need(d, n, "a function record") < 0) {
        return -1;
    }
    *saved_end = d->end;
    d->end = d->p + n;
    return 0;
}

/* Restores the outer end; after a successful decode (ok) the body must
 * have been read exactly. After a failure the exception already set is
 * the one to report. */
static int
rec_close(mg_dec *d, const unsigned char *saved_end, int ok)
{
    if (ok && d->p != d->end) {
        mg_dec_corrupt(d, "a function record has %zu unread bytes",
                       (size_t)(d->end - d->p));
        d->end = saved_end;
        return -1;
    }
    d->end = saved_end;
    return 0;
}

static PyObject *
dec_utf8(mg_dec *d)
{
    Py_ssize_t n;
    if (mg_dec_count(d, &n, 1, "a name") < 0) {
        return NULL;
    }
    const char *p = (const char *)d->p;
    d->p += n;
    return PyUnicode_DecodeUTF8(p, n, "strict");
}

/* Reads the signed payload of names that enc_signed_names wrote: *a (and
 * *b, when b is not NULL) get new str references. */
static int
dec_signed_names(mg_dec *d, int domain, const char *what, PyObject **a,
                 PyObject **b)
{
    const unsigned char *p;
    Py_ssize_t n;
    if (mg_dec_signed(d, domain, what, &p, &n) < 0) {
        return -1;
    }
    const unsigned char *after = d->p, *end = d->end;
    d->p = p;
    d->end = p + n;
    *a = dec_utf8(d);
    if (*a != NULL && b != NULL) {
        *b = dec_utf8(d);
        if (*b == NULL) {
            Py_CLEAR(*a);
        }
    }
    int rc = *a != NULL ? 0 : -1;
    if (rc == 0 && d->p != d->end) {
        mg_dec_corrupt(d, "%s has unread bytes", what);
        Py_CLEAR(*a);
        if (b != NULL) {
            Py_CLEAR(*b);
        }
        rc = -1;
    }
    d->p = after;
    d->end = end;
    return rc;
}

/* The module named name: from sys.modules when it is there (the common
 * case, and no import machinery), else imported. */
static PyObject *
import_module(PyObject *name)
{
    PyObject *mod = PyImport_GetModule(name);
    if (mod != NULL || PyErr_Occurred()) {
        return mod;
    }
    return PyImport_Import(name);
}

static PyObject *
fnref_resolve(mg_dec *d)
{
    PyObject *modname = NULL, *qualname = NULL, *mod = NULL, *fn = NULL;
    if (dec_signed_names(d, TAG_FNREF, "a function reference", &modname,
                         &qualname) < 0) {
        return NULL;
    }
    mod = import_module(modname);
    if (mod != NULL) {
        fn = resolve_qualname(mod, qualname);
    }
    Py_DECREF(modname);
    Py_DECREF(qualname);
    Py_XDECREF(mod);
    return fn;
}

static PyObject *
cache_get(mg_dec *d, const unsigned char *start, PyObject **key)
{
    *key = PyBytes_FromStringAndSize((const char *)start,
                                     (Py_ssize_t)(d->end - start));
    if (*key == NULL) {
        return NULL;
    }
    PyObject *fn = PyDict_GetItemWithError(d->st->fn_cache, *key);
    return Py_XNewRef(fn);
}

static int
cache_put(mg_dec *d, PyObject *key, PyObject *fn)
{
    if (PyDict_GET_SIZE(d->st->fn_cache) >= MG_CODEC_CACHE_MAX) {
        PyDict_Clear(d->st->fn_cache);
    }
    return PyDict_SetItem(d->st->fn_cache, key, fn);
}

static PyObject *
dec_fnref(mg_dec *d)
{
    const unsigned char *start, *saved;
    PyObject *key = NULL, *fn = NULL;
    if (rec_open(d, &start, &saved) < 0) {
        return NULL;
    }
    fn = cache_get(d, start, &key);
    if (fn != NULL) {
        d->p = d->end;
    }
    else if (!PyErr_Occurred()) {
        fn = fnref_resolve(d);
        if (fn != NULL && d->p == d->end && cache_put(d, key, fn) < 0) {
            Py_CLEAR(fn);
        }
    }
    Py_XDECREF(key);
    if (rec_close(d, saved, fn != NULL) < 0) {
        Py_CLEAR(fn);
    }
    return fn;
}

static PyObject *
dec_str_exact(mg_dec *d, const char *what)
{
    PyObject *s = mg_dec_value(d);
    if (s != NULL && !PyUnicode_CheckExact(s)) {
        Py_DECREF(s);
        return mg_dec_corrupt(d, "%s is not a str", what);
    }
    return s;
}

/* The namespace (globals dict) with index ns, created when new. */
static PyObject *
dec_namespace(mg_dec *d, uint64_t ns, PyObject *module)
{
    Py_ssize_t have = PyList_GET_SIZE(d->ns_table);
    if (ns < (uint64_t)have) {
        return Py_NewRef(PyList_GET_ITEM(d->ns_table, (Py_ssize_t)ns));
    }
    if (ns != (uint64_t)have) {
        return mg_dec_corrupt(d, "namespace %llu out of order",
                              (unsigned long long)ns);
    }
    PyObject *g = PyDict_New();
    if (g == NULL) {
        return NULL;
    }
    if (PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0
        || PyDict_SetItemString(g, "__name__", module) < 0
        || PyList_Append(d->ns_table, g) < 0) {
        Py_DECREF(g);
        return NULL;
    }
    return g;
}

/* The code object of a signed marshal payload. Code objects are immutable,
 * so they are cached (st->code_by_bytes: MAC -> (marshal bytes, code); a
 * hit compares the bytes): shipping one lambda a million times unmarshals
 * it once per worker. Only the code is cached: every record gets a new
 * function, namespace and cells. */
static PyObject *
dec_code(mg_dec *d)
{
    const unsigned char *p;
    Py_ssize_t n;
    uint64_t mac;
    if (mg_dec_signed(d, TAG_FNCODE, "function code", &p, &n) < 0) {
        return NULL;
    }
    memcpy(&mac, p + n, 8); /* verified: the MAC follows the payload */
    PyObject *key = PyLong_FromUnsignedLongLong(mac);
    if (key == NULL) {
        return NULL;
    }
    PyObject *cache = d->st->code_by_bytes, *code = NULL, *entry = NULL;
    PyObject *hit = PyDict_GetItemWithError(cache, key);
    if (hit != NULL) {
        PyObject *data = PyTuple_GET_ITEM(hit, 0);
        if (PyBytes_GET_SIZE(data) == n
            && memcmp(PyBytes_AS_STRING(data), p, (size_t)n) == 0) {
            code = Py_NewRef(PyTuple_GET_ITEM(hit, 1));
            goto done;
        }
    }
    else if (PyErr_Occurred()) {
        goto done;
    }
    code = PyMarshal_ReadObjectFromString((const char *)p, n);
    if (code != NULL && !PyCode_Check(code)) {
        Py_CLEAR(code);
        mg_dec_corrupt(d, "a function record holds no code");
    }
    if (code == NULL || n > MG_CODEC_CACHE_RECORD_MAX) {
        goto done;
    }
    if (PyDict_GET_SIZE(cache) >= MG_CODEC_CACHE_MAX) {
        PyDict_Clear(cache);
    }
    entry = Py_BuildValue("(y#O)", (const char *)p, n, code);
    if (entry == NULL || PyDict_SetItem(cache, key, entry) < 0) {
        Py_CLEAR(code);
    }
done:
    Py_DECREF(key);
    Py_XDECREF(entry);
    return code;
}

/* fn.attr = v unless it already is equal (PyFunction_New takes __name__
 * from the code and __module__ from the namespace: usually the same). */
static int
set_if_differs(PyObject *fn, const char *attr, PyObject *v)
{
    PyObject *have = PyObject_GetAttrString(fn, attr);
    int same = have != NULL ? PyObject_RichCompareBool(have, v, Py_EQ) : -1;
    Py_XDECREF(have);
    if (same != 0) {
        return same < 0 ? -1 : 0;
    }
    return PyObject_SetAttrString(fn, attr, v);
}

/* Builds the function from the record head (code, namespace, cells and
 * names) with empty cells; defaults and values are patched in after. */
static PyObject *
dec_fn_shell(mg_dec *d, Py_ssize_t *ncells)
{
    PyObject *code = NULL, *name = NULL, *qualname = NULL, *module = NULL;
    PyObject *g = NULL, *fn = NULL, *cells = NULL;
    uint64_t ns;
    code = dec_code(d);
    if (code == NULL || mg_dec_varint(d, &ns, "a namespace") < 0
        || mg_dec_count(d, ncells, 1, "a closure") < 0) {
        goto done;
    }
    if (*ncells != PyCode_GetNumFree((PyCodeObject *)code)) {
        mg_dec_corrupt(d, "closure of %zd cells for code with %zd free "
                          "variables",
                       *ncells, PyCode_GetNumFree((PyCodeObject *)code));
        goto done;
    }
    name = dec_str_exact(d, "a function name");
    qualname = name ? dec_str_exact(d, "a function qualname") : NULL;
    module = qualname ? mg_dec_value(d) : NULL;
    if (module == NULL) {
        goto done;
    }
    g = dec_namespace(d, ns, module);
    fn = g ? PyFunction_NewWithQualName(code, g, qualname) : NULL;
    if (fn == NULL || set_if_differs(fn, "__name__", name) < 0
        || set_if_differs(fn, "__module__", module) < 0) {
        Py_CLEAR(fn);
        goto done;
    }
    cells = PyTuple_New(*ncells);
    for (Py_ssize_t i = 0; cells && i < *ncells; i++) {
        PyObject *c = PyCell_New(NULL);
        if (c == NULL) {
            Py_CLEAR(cells);
            break;
        }
        PyTuple_SET_ITEM(cells, i, c);
    }
    if (cells == NULL || (*ncells > 0 && PyFunction_SetClosure(fn, cells) < 0)
        || PyList_Append(d->fn_table, fn) < 0) {
        Py_CLEAR(fn);
    }
done:
    Py_XDECREF(code);
    Py_XDECREF(name);
    Py_XDECREF(qualname);
    Py_XDECREF(module);
    Py_XDECREF(g);
    Py_XDECREF(cells);
    return fn;
}

static int
dec_fn_defaults(mg_dec *d, PyObject *fn)
{
    PyObject *defs = mg_dec_value(d);
    if (defs == NULL) {
        return -1;
    }
    PyObject *kw = mg_dec_value(d);
    int rc = -1;
    if (kw == NULL) {
        goto done;
    }
    if ((defs != Py_None && !PyTuple_CheckExact(defs))
        || (kw != Py_None && !PyDict_CheckExact(kw))) {
        mg_dec_corrupt(d, "function defaults of the wrong type");
        goto done;
    }
    if (PyFunction_SetDefaults(fn, defs) < 0
        || PyFunction_SetKwDefaults(fn, kw) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_DECREF(defs);
    Py_XDECREF(kw);
    return rc;
}

static int
dec_fn_cells(mg_dec *d, PyObject *fn, Py_ssize_t ncells)
{
    PyObject *cells = PyFunction_GetClosure(fn);
    for (Py_ssize_t i = 0; i < ncells; i++) {
        if (mg_dec_need(d, 1, "a closure cell") < 0) {
            return -1;
        }
        if (*d->p++ == 0) {
            continue;
        }
        PyObject *v = mg_dec_value(d);
        if (v == NULL) {
            return -1;
        }
        int r = PyCell_Set(PyTuple_GET_ITEM(cells, i), v);
        Py_DECREF(v);
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

static int
dec_fn_globals(mg_dec *d, PyObject *fn)
{
    Py_ssize_t n;
    PyObject *g = PyFunction_GetGlobals(fn);
    if (mg_dec_count(d, &n, 2, "function globals") < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = dec_str_exact(d, "a global name");
        PyObject *v = name ? mg_dec_value(d) : NULL;
        int r = v ? PyDict_SetItem(g, name, v) : -1;
        Py_XDECREF(name);
        Py_XDECREF(v);
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
dec_fncode_body(mg_dec *d)
{
    Py_ssize_t ncells;
    /* Everything inside a record, its head included, is nested: only
     * the outermost record owns (and resets) the function table. */
    d->fn_nesting++;
    PyObject *fn = dec_fn_shell(d, &ncells);
    if (fn != NULL
        && (dec_fn_defaults(d, fn) < 0 || dec_fn_cells(d, fn, ncells) < 0
        || dec_fn_globals(d, fn) < 0)) {
        Py_CLEAR(fn);
    }
    d->fn_nesting--;
    return fn;
}

/* A function sent as code. Never cached as a whole: its globals and
 * cells are the caller's snapshot at submit, so each record gets fresh
 * ones (a task must not see what an earlier task left in them). */
static PyObject *
dec_fncode(mg_dec *d)
{
    const unsigned char *start, *saved;
    PyObject *fn = NULL;
    int top = d->fn_nesting == 0;
    if (rec_open(d, &start, &saved) < 0) {
        return NULL;
    }
    if (top) {
        Py_XSETREF(d->fn_table, PyList_New(0));
        Py_XSETREF(d->ns_table, PyList_New(0));
    }
    if (d->fn_table != NULL && d->ns_table != NULL) {
        fn = dec_fncode_body(d);
    }
    if (top) {
        Py_CLEAR(d->fn_table);
        Py_CLEAR(d->ns_table);
    }
    if (rec_close(d, saved, fn != NULL) < 0) {
        Py_CLEAR(fn);
    }
    return fn;
}

static PyObject *
dec_fnback(mg_dec *d)
{
    uint64_t i;
    if (mg_dec_varint(d, &i, "a function reference") < 0) {
        return NULL;
    }
    if (d->fn_table == NULL
        || i >= (uint64_t)PyList_GET_SIZE(d->fn_table)) {
        return mg_dec_corrupt(d, "reference to unknown function %llu",
                              (unsigned long long)i);
    }
    return Py_NewRef(PyList_GET_ITEM(d->fn_table, (Py_ssize_t)i));
}

static PyObject *
dec_partial(mg_dec *d)
{
    PyObject *func = NULL, *args = NULL, *kw = NULL, *all = NULL;
    PyObject *v = NULL;
    func = mg_dec_value(d);
    args = func ? mg_dec_value(d) : NULL;
    kw = args ? mg_dec_value(d) : NULL;
    if (kw == NULL) {
        goto done;
    }
    if (!PyTuple_CheckExact(args) || !PyDict_CheckExact(kw)) {
        mg_dec_corrupt(d, "a partial with bad args or keywords");
        goto done;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    all = PyTuple_New(n + 1);
    if (all == NULL) {
        goto done;
    }
    PyTuple_SET_ITEM(all, 0, Py_NewRef(func));
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(all, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    }
    PyObject *ptype = partial_type(d->st, 1);
    v = ptype ? PyObject_Call(ptype, all, kw) : NULL;
done:
    Py_XDECREF(func);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    Py_XDECREF(all);
    return v;
}

static PyObject *
dec_method(mg_dec *d)
{
    PyObject *func = mg_dec_value(d);
    if (func == NULL) {
        return NULL;
    }
    PyObject *self = mg_dec_value(d);
    PyObject *v = NULL;
    if (self != NULL) {
        v = PyCallable_Check(func)
                ? PyMethod_New(func, self)
                : mg_dec_corrupt(d, "a method of a non-callable");
    }
    Py_DECREF(func);
    Py_XDECREF(self);
    return v;
}

static PyObject *
dec_module(mg_dec *d)
{
    PyObject *name = NULL;
    if (dec_signed_names(d, TAG_MODULE, "a module reference", &name,
                         NULL) < 0) {
        return NULL;
    }
    PyObject *mod = import_module(name);
    Py_DECREF(name);
    return mod;
}

PyObject *
mg_codefn_decode(mg_dec *d, int tag)
{
    switch (tag) {
    case TAG_FNREF:
        return dec_fnref(d);
    case TAG_FNCODE:
        return dec_fncode(d);
    case TAG_FNBACK:
        return dec_fnback(d);
    case TAG_PARTIAL:
        return dec_partial(d);
    case TAG_METHOD:
        return dec_method(d);
    default:
        return dec_module(d);
    }
}

int
mg_codefn_state_init(mg_state *st)
{
    /* functools.partial is looked up on first need (partial_type): every
     * worker imports this module, and functools costs about 3 ms. */
    st->fn_cache = PyDict_New();
    st->code_cache = PyDict_New();
    st->code_by_bytes = PyDict_New();
    if (!st->fn_cache || !st->code_cache || !st->code_by_bytes) {
        return -1;
    }
    return 0;
}
