/* codec.c - encode/decode values into mg_buf for crossing interpreters.
 *
 * Owns: the version-tagged flat format (codec_impl.h, docs/codec.md), the
 * fast paths for exact builtin types, the per-object pickle fallback (with
 * handle objects inside a pickle travelling as handles), the one generic
 * record for any registered handle type (handles.h; the codec knows the
 * protocol, not SharedArray), the depth limit, the untrusted-input decoder, and the module
 * functions dumps/loads. Functions, partials and bound methods are
 * codefn.c's; the MAC that guards pickles and code is codec_mac.c's; the
 * identity memo (shared references) is codec_memo.c's.
 * Never touches a PyObject of another interpreter: what crosses is the
 * bytes and block references of an mg_buf.
 */
#include "codec.h"
#include "codec_impl.h"
#include "errors.h"
#include "handles.h"

#include <stdarg.h>
#include <string.h>

static const unsigned char codec_magic[3] = {'M', 'G', 'C'};

#define PID_CAPSULE "multigil.codec.context"

/* ---- writers ---- */

int
mg_enc_bytes(mg_enc *e, const void *p, size_t n)
{
    if (mg_buf_append(e->out, p, n) != MG_OK) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

int
mg_enc_byte(mg_enc *e, unsigned char b)
{
    mg_buf *out = e->out;
    if (out->len < out->cap) {
        out->data[out->len++] = b;
        return 0;
    }
    return mg_enc_bytes(e, &b, 1);
}

static size_t
put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        unsigned char c = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) {
            c |= 0x80;
        }
        p[n++] = c;
    } while (v);
    return n;
}

int
mg_enc_varint(mg_enc *e, uint64_t v)
{
    unsigned char tmp[10];
    return mg_enc_bytes(e, tmp, put_varint(tmp, v));
}

/* Writes tag and varint count, then claims payload bytes; returns where the
 * payload goes, or NULL with MemoryError. */
static unsigned char *
enc_head(mg_enc *e, int tag, uint64_t count, size_t payload)
{
    if (payload > SIZE_MAX - 16
        || mg_buf_reserve(e->out, 11 + payload) != MG_OK) {
        PyErr_NoMemory();
        return NULL;
    }
    unsigned char *p = e->out->data + e->out->len;
    *p++ = (unsigned char)tag;
    p += put_varint(p, count);
    e->out->len = (size_t)(p - e->out->data) + payload;
    return p;
}

/* Claims n bytes at the end of the buffer. */
static inline unsigned char *
enc_claim(mg_enc *e, size_t n)
{
    mg_buf *out = e->out;
    if (out->cap - out->len >= n) {
        unsigned char *p = out->data + out->len;
        out->len += n;
        return p;
    }
    if (mg_buf_reserve(out, n) != MG_OK) {
        PyErr_NoMemory();
        return NULL;
    }
    unsigned char *p = e->out->data + e->out->len;
    e->out->len += n;
    return p;
}

void
mg_enc_note_bad(mg_enc *e, PyTypeObject *tp)
{
    PyOS_snprintf(e->bad_type, sizeof(e->bad_type), "%s", tp->tp_name);
}

int
mg_enc_not_shareable(mg_enc *e, PyObject *obj, const char *why)
{
    PyObject *cause = PyErr_GetRaisedException();
    PyObject *msg;
    char what[160];
    if (PyType_Check(obj)) {
        PyOS_snprintf(e->bad_type, sizeof(e->bad_type), "class %s",
                      ((PyTypeObject *)obj)->tp_name);
        PyOS_snprintf(what, sizeof(what), "class %s",
                      ((PyTypeObject *)obj)->tp_name);
    }
    else {
        mg_enc_note_bad(e, Py_TYPE(obj));
        PyOS_snprintf(what, sizeof(what), "an object of type %s",
                      Py_TYPE(obj)->tp_name);
    }
    if (cause != NULL) {
        msg = PyUnicode_FromFormat(
            "cannot send %s to another interpreter: %s (%s: %S)", what, why,
            Py_TYPE(cause)->tp_name, cause);
    }
    else {
        msg = PyUnicode_FromFormat("cannot send %s to another interpreter: %s",
                                   what, why);
    }
    if (msg != NULL) {
        PyErr_SetObject(e->st->NotShareableError, msg);
        Py_DECREF(msg);
        if (cause != NULL) {
            PyObject *exc = PyErr_GetRaisedException();
            PyException_SetCause(exc, cause); /* steals cause */
            PyErr_SetRaisedException(exc);
            cause = NULL;
        }
    }
    Py_XDECREF(cause);
    return -1;
}

/* ---- scalars ---- */

static int
enc_bigint(mg_enc *e, PyObject *obj)
{
#if MG_PY313
    int flags = Py_ASNATIVEBYTES_LITTLE_ENDIAN;
    Py_ssize_t n = PyLong_AsNativeBytes(obj, NULL, 0, flags);
    if (n < 0) {
        return -1;
    }
    unsigned char *p = enc_head(e, TAG_BIGINT, (uint64_t)n, (size_t)n);
    if (p == NULL) {
        return -1;
    }
    return PyLong_AsNativeBytes(obj, p, n, flags) < 0 ? -1 : 0;
#else
    /* 3.12 has no public int <-> bytes C API: use int.to_bytes. */
    PyObject *bits = NULL, *args = NULL, *kw = NULL, *meth = NULL;
    PyObject *data = NULL;
    int rc = -1;
    bits = PyObject_CallMethod(obj, "bit_length", NULL);
    if (bits == NULL) {
        goto done;
    }
    size_t nbits = PyLong_AsSize_t(bits);
    if (nbits == (size_t)-1 && PyErr_Occurred()) {
        goto done;
    }
    args = Py_BuildValue("(ns)", (Py_ssize_t)(nbits / 8 + 1), "little");
    kw = Py_BuildValue("{sO}", "signed", Py_True);
    meth = PyObject_GetAttrString(obj, "to_bytes");
    if (args == NULL || kw == NULL || meth == NULL) {
        goto done;
    }
    data = PyObject_Call(meth, args, kw);
    if (data == NULL) {
        goto done;
    }
    size_t n = (size_t)PyBytes_GET_SIZE(data);
    unsigned char *p = enc_head(e, TAG_BIGINT, n, n);
    if (p == NULL) {
        goto done;
    }
    memcpy(p, PyBytes_AS_STRING(data), n);
    rc = 0;
done:
    Py_XDECREF(bits);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    Py_XDECREF(meth);
    Py_XDECREF(data);
    return rc;
#endif
}

static int
enc_int(mg_enc *e, PyObject *obj)
{
    long long v;
    /* Compact ints (one digit) are read without a call (public unstable
     * API, 3.12+). */
    if (PyUnstable_Long_IsCompact((PyLongObject *)obj)) {
        v = (long long)PyUnstable_Long_CompactValue((PyLongObject *)obj);
    }
    else {
        int overflow = 0;
        v = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (overflow) {
            return enc_bigint(e, obj);
        }
    }
    unsigned char *p;
    if (v >= INT8_MIN && v <= INT8_MAX) {
        p = enc_claim(e, 2);
        if (p == NULL) {
            return -1;
        }
        p[0] = TAG_INT8;
        p[1] = (unsigned char)(int8_t)v;
    }
    else if (v >= INT32_MIN && v <= INT32_MAX) {
        int32_t x = (int32_t)v;
        p = enc_claim(e, 5);
        if (p == NULL) {
            return -1;
        }
        p[0] = TAG_INT32;
        memcpy(p + 1, &x, 4);
    }
    else {
        int64_t x = (int64_t)v;
        p = enc_claim(e, 9);
        if (p == NULL) {
            return -1;
        }
        p[0] = TAG_INT64;
        memcpy(p + 1, &x, 8);
    }
    return 0;
}

static int
enc_float(mg_enc *e, PyObject *obj)
{
    double v = PyFloat_AS_DOUBLE(obj);
    unsigned char *p = enc_claim(e, 9);
    if (p == NULL) {
        return -1;
    }
    p[0] = TAG_FLOAT;
    memcpy(p + 1, &v, 8);
    return 0;
}

static int
enc_complex(mg_enc *e, PyObject *obj)
{
    double v[2] = {PyComplex_RealAsDouble(obj), PyComplex_ImagAsDouble(obj)};
    unsigned char *p = enc_claim(e, 17);
    if (p == NULL) {
        return -1;
    }
    p[0] = TAG_COMPLEX;
    memcpy(p + 1, v, 16);
    return 0;
}

int
mg_enc_str(mg_enc *e, PyObject *obj)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(obj);
    int kind = (int)PyUnicode_KIND(obj);
    int tag = kind == PyUnicode_1BYTE_KIND   ? TAG_STR1
              : kind == PyUnicode_2BYTE_KIND ? TAG_STR2
                                             : TAG_STR4;
    size_t nbytes = (size_t)n * (size_t)kind;
    unsigned char *p = enc_head(e, tag, (uint64_t)n, nbytes);
    if (p == NULL) {
        return -1;
    }
    memcpy(p, PyUnicode_DATA(obj), nbytes);
    return 0;
}

static int
enc_raw(mg_enc *e, int tag, const char *data, Py_ssize_t n)
{
    unsigned char *p = enc_head(e, tag, (uint64_t)n, (size_t)n);
    if (p == NULL) {
        return -1;
    }
    if (n) {
        memcpy(p, data, (size_t)n);
    }
    return 0;
}

static int
enc_memo_ref(mg_enc *e, Py_ssize_t index)
{
    if (mg_enc_byte(e, TAG_MEMO_REF) < 0) {
        return -1;
    }
    return mg_enc_varint(e, (uint64_t)index);
}

/* A value with no items that still keeps its identity (bytearray, a
 * pickled object): 1 if it was written before (a back-reference went
 * out), 0 if it is new (now in the memo), -1 with an exception. */
static int
enc_memo_leaf(mg_enc *e, PyObject *obj)
{
    Py_ssize_t seen = mg_enc_memo_find(&e->memo, obj);
    if (seen >= 0) {
        return enc_memo_ref(e, seen) < 0 ? -1 : 1;
    }
    Py_ssize_t index = mg_enc_memo_add(&e->memo, obj);
    if (index < 0) {
        return -1;
    }
    e->memo.open[index] = 0;
    return 0;
}

static int
enc_bytearray(mg_enc *e, PyObject *obj)
{
    int r = enc_memo_leaf(e, obj);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    return enc_raw(e, TAG_BYTEARRAY, PyByteArray_AS_STRING(obj),
                   PyByteArray_GET_SIZE(obj));
}

/* ---- containers ---- */


/* Starts a container: 1 if obj was already written in this message (a
 * back-reference is written instead), 0 if it is to be written now (its
 * memo index in *index), -1 with an exception. A list or dict may refer
 * to itself (may_be_open); a tuple or set in a cycle is refused. */
static int
enc_enter(mg_enc *e, PyObject *obj, int may_be_open, Py_ssize_t *index)
{
    Py_ssize_t seen = mg_enc_memo_find(&e->memo, obj);
    if (seen >= 0) {
        if (e->memo.open[seen] && !may_be_open) {
            PyErr_Format(PyExc_ValueError,
                         "cannot encode a %.100s that contains itself: the "
                         "codec rebuilds lists and dicts that refer to "
                         "themselves, but not a cycle through a %.100s",
                         Py_TYPE(obj)->tp_name, Py_TYPE(obj)->tp_name);
            return -1;
        }
        return enc_memo_ref(e, seen) < 0 ? -1 : 1;
    }
    if (e->depth >= MG_CODEC_MAX_DEPTH) {
        PyErr_Format(PyExc_ValueError,
                     "cannot encode a value nested deeper than %d levels "
                     "(a limit against runaway recursion); flatten it or "
                     "send it in parts",
                     MG_CODEC_MAX_DEPTH);
        return -1;
    }
    *index = mg_enc_memo_add(&e->memo, obj);
    if (*index < 0) {
        return -1;
    }
    e->depth++;
    return 0;
}

static void
enc_leave(mg_enc *e, Py_ssize_t index)
{
    e->memo.open[index] = 0;
    e->depth--;
}

static int
changed_size(PyObject *obj)
{
    PyErr_Format(PyExc_RuntimeError, "%.100s changed size during encoding",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

static int
enc_tuple(mg_enc *e, PyObject *obj)
{
    Py_ssize_t n = PyTuple_GET_SIZE(obj);
    Py_ssize_t index;
    int entered = enc_enter(e, obj, 0, &index);
    if (entered != 0) {
        return entered < 0 ? -1 : 0;
    }
    int rc = -1;
    if (enc_head(e, TAG_TUPLE, (uint64_t)n, 0) == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (mg_enc_value(e, PyTuple_GET_ITEM(obj, i)) < 0) {
            goto done;
        }
    }
    rc = 0;
done:
    enc_leave(e, index);
    return rc;
}

static int
enc_list(mg_enc *e, PyObject *obj)
{
    Py_ssize_t n = PyList_GET_SIZE(obj);
    Py_ssize_t index;
    int entered = enc_enter(e, obj, 1, &index);
    if (entered != 0) {
        return entered < 0 ? -1 : 0;
    }
    int rc = -1;
    /* Room for a list of small scalars up front (a hint, not a limit). */
    if (enc_head(e, TAG_LIST, (uint64_t)n, 0) == NULL
        || mg_buf_reserve(e->out, (size_t)n * 2) != MG_OK) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PyList_GET_SIZE(obj)) {
            changed_size(obj);
            goto done;
        }
        /* Encoding may run Python code (pickle) that mutates the list. */
        PyObject *item = Py_NewRef(PyList_GET_ITEM(obj, i));
        int r = mg_enc_value(e, item);
        Py_DECREF(item);
        if (r < 0) {
            goto done;
        }
    }
    if (PyList_GET_SIZE(obj) != n) {
        changed_size(obj);
        goto done;
    }
    rc = 0;
done:
    enc_leave(e, index);
    return rc;
}

static int
enc_dict(mg_enc *e, PyObject *obj)
{
    Py_ssize_t n = PyDict_GET_SIZE(obj), pos = 0, i = 0;
    PyObject *k, *v;
    Py_ssize_t index;
    int entered = enc_enter(e, obj, 1, &index);
    if (entered != 0) {
        return entered < 0 ? -1 : 0;
    }
    int rc = -1;
    if (enc_head(e, TAG_DICT, (uint64_t)n, 0) == NULL) {
        goto done;
    }
    while (PyDict_Next(obj, &pos, &k, &v)) {
        if (i++ >= n) {
            break;
        }
        Py_INCREF(k);
        Py_INCREF(v);
        int r = mg_enc_value(e, k);
        if (r == 0) {
            r = mg_enc_value(e, v);
        }
        Py_DECREF(k);
        Py_DECREF(v);
        if (r < 0) {
            goto done;
        }
    }
    if (i != n || PyDict_GET_SIZE(obj) != n) {
        changed_size(obj);
        goto done;
    }
    rc = 0;
done:
    enc_leave(e, index);
    return rc;
}

static int
enc_set(mg_enc *e, PyObject *obj, int tag)
{
    Py_ssize_t n = PySet_GET_SIZE(obj), i = 0;
    PyObject *it = NULL, *item;
    Py_ssize_t index;
    int entered = enc_enter(e, obj, 0, &index);
    if (entered != 0) {
        return entered < 0 ? -1 : 0;
    }
    int rc = -1;
    if (enc_head(e, tag, (uint64_t)n, 0) == NULL) {
        goto done;
    }
    it = PyObject_GetIter(obj);
    if (it == NULL) {
        goto done;
    }
    while ((item = PyIter_Next(it)) != NULL) {
        int r = i++ < n ? mg_enc_value(e, item) : changed_size(obj);
        Py_DECREF(item);
        if (r < 0) {
            goto done;
        }
    }
    if (PyErr_Occurred()) {
        goto done;
    }
    if (i != n) {
        changed_size(obj);
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(it);
    enc_leave(e, index);
    return rc;
}

/* ---- handles (handles.h): SharedArrays and any other registered kind ---- */

static int
enc_handle(mg_enc *e, const mg_handle_type *t, PyObject *obj)
{
    unsigned char meta[MG_HANDLE_META_MAX];
    size_t index, meta_len;
    if (mg_handles_export(e->st, t, obj, e->out, &index, meta, &meta_len)
        < 0) {
        return -1;
    }
    if (mg_enc_byte(e, TAG_HANDLE) < 0
        || mg_enc_varint(e, t->kind->id) < 0
        || mg_enc_varint(e, index) < 0
        || mg_enc_varint(e, meta_len) < 0) {
        return -1;
    }
    return mg_enc_bytes(e, meta, meta_len);
}

/* Pickler.persistent_id: a handle object inside a pickled object becomes
 * ("multigil.handle", kind id, index, metadata); self is a capsule
 * holding the mg_enc. */
static PyObject *
codec_persistent_id(PyObject *cap, PyObject *obj)
{
    mg_enc *e = PyCapsule_GetPointer(cap, PID_CAPSULE);
    unsigned char meta[MG_HANDLE_META_MAX];
    size_t index, meta_len;
    if (e == NULL) {
        return NULL;
    }
    const mg_handle_type *t = mg_handles_of(e->st, obj);
    if (t == NULL) {
        Py_RETURN_NONE;
    }
    if (mg_handles_export(e->st, t, obj, e->out, &index, meta, &meta_len)
        < 0) {
        return NULL;
    }
    return Py_BuildValue("(sIny#)", "multigil.handle",
                         (unsigned int)t->kind->id, (Py_ssize_t)index,
                         (const char *)meta, (Py_ssize_t)meta_len);
}

static PyMethodDef persistent_id_def = {
    "persistent_id", (PyCFunction)codec_persistent_id, METH_O, NULL};

/* The object of handle index (kind id, metadata) of the message; errors
 * are reported as corruption at the current byte. */
static PyObject *
dec_wrap_handle(mg_dec *d, uint64_t id, uint64_t index,
                const unsigned char *meta, size_t meta_len)
{
    PyObject *v = mg_handles_wrap(d->st, d->in, id, index, meta, meta_len);
    if (v == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyObject *exc = PyErr_GetRaisedException();
        PyObject *msg = PyObject_Str(exc);
        const char *s = msg ? PyUnicode_AsUTF8(msg) : NULL;
        if (s != NULL) {
            mg_dec_corrupt(d, "%s", s);
        }
        Py_XDECREF(msg);
        Py_DECREF(exc);
    }
    return v;
}

/* Unpickler.persistent_load: the handle tuple back into an object. */
static PyObject *
codec_persistent_load(PyObject *cap, PyObject *pid)
{
    mg_dec *d = PyCapsule_GetPointer(cap, PID_CAPSULE);
    const char *tag;
    unsigned int id;
    Py_ssize_t index, meta_len;
    const char *meta;
    if (d == NULL) {
        return NULL;
    }
    if (!PyTuple_Check(pid)
        || !PyArg_ParseTuple(pid, "sIny#", &tag, &id, &index, &meta,
                             &meta_len)
        || strcmp(tag, "multigil.handle") != 0 || index < 0) {
        PyErr_Clear();
        return mg_dec_corrupt(d, "unknown persistent id in a pickle");
    }
    return dec_wrap_handle(d, id, (uint64_t)index,
                           (const unsigned char *)meta, (size_t)meta_len);
}

static PyMethodDef persistent_load_def = {
    "persistent_load", (PyCFunction)codec_persistent_load, METH_O, NULL};

/* ---- pickle fallback ---- */

/* 1 if the class of obj (or obj, a class) lives in __main__. */
static int
defined_in_main(PyObject *obj)
{
    PyObject *tp = PyType_Check(obj) ? obj : (PyObject *)Py_TYPE(obj);
    PyObject *mod = PyObject_GetAttrString(tp, "__module__");
    if (mod == NULL) {
        PyErr_Clear();
        return 0;
    }
    int r = PyUnicode_Check(mod)
            && PyUnicode_CompareWithASCIIString(mod, "__main__") == 0;
    Py_DECREF(mod);
    return r;
}

/* The pickle fallback pickles through multigil._picklers (persistent ids
 * for SharedArrays) once SharedArrays exist, else with plain dumps/loads.
 * Building with -DMG_CODEC_ALWAYS_HANDLES forces the first (tests). */
static int
use_handle_pickler(mg_state *st, const mg_buf *in)
{
#ifdef MG_CODEC_ALWAYS_HANDLES
    (void)st;
    (void)in;
    return 1;
#else
    return in != NULL ? in->nhandles > 0 : st->nhandle_types > 0;
#endif
}

static PyObject *import_attr(const char *module, const char *name);

/* Imports pickle (and io.BytesIO) into the state on first use. */
static int
load_pickle(mg_state *st)
{
    if (st->pickle_dumps != NULL) {
        return 0;
    }
    PyObject *dumps = import_attr("pickle", "dumps");
    PyObject *loads = dumps ? import_attr("pickle", "loads") : NULL;
    PyObject *error = loads ? import_attr("pickle", "PicklingError") : NULL;
    PyObject *bio = error ? import_attr("io", "BytesIO") : NULL;
    if (bio == NULL) {
        Py_XDECREF(dumps);
        Py_XDECREF(loads);
        Py_XDECREF(error);
        return -1;
    }
    st->pickle_loads = loads;
    st->pickle_error = error;
    st->bytesio_type = bio;
    st->pickle_dumps = dumps; /* last: it marks the others as loaded */
    return 0;
}

static int
load_picklers(mg_state *st)
{
    if (st->pickler_type != NULL) {
        return 0;
    }
    if (load_pickle(st) < 0) {
        return -1;
    }
    PyObject *m = PyImport_ImportModule("multigil._picklers");
    if (m == NULL) {
        return -1;
    }
    st->pickler_type = PyObject_GetAttrString(m, "HandlePickler");
    st->unpickler_type = PyObject_GetAttrString(m, "HandleUnpickler");
    Py_DECREF(m);
    if (st->pickler_type == NULL || st->unpickler_type == NULL) {
        Py_CLEAR(st->pickler_type);
        Py_CLEAR(st->unpickler_type);
        return -1;
    }
    return 0;
}

static PyObject *
pickle_with_handles(mg_enc *e, PyObject *obj)
{
    mg_state *st = e->st;
    PyObject *bio = NULL, *pickler = NULL, *cap = NULL, *pid = NULL;
    PyObject *r = NULL, *data = NULL;
    if (load_picklers(st) < 0) {
        return NULL;
    }
    bio = PyObject_CallNoArgs(st->bytesio_type);
    cap = bio ? PyCapsule_New(e, PID_CAPSULE, NULL) : NULL;
    pid = cap ? PyCFunction_New(&persistent_id_def, cap) : NULL;
    if (pid == NULL) {
        goto done;
    }
    pickler = PyObject_CallFunctionObjArgs(st->pickler_type, bio, pid, NULL);
    if (pickler == NULL) {
        goto done;
    }
    r = PyObject_CallMethod(pickler, "dump", "(O)", obj);
    if (r == NULL) {
        goto done;
    }
    data = PyObject_CallMethod(bio, "getvalue", NULL);
done:
    Py_XDECREF(bio);
    Py_XDECREF(pickler);
    Py_XDECREF(cap);
    Py_XDECREF(pid);
    Py_XDECREF(r);
    return data;
}

static int
enc_pickle(mg_enc *e, PyObject *obj)
{
    Py_ssize_t seen = mg_enc_memo_find(&e->memo, obj);
    if (seen >= 0) {
        return enc_memo_ref(e, seen);
    }
    if (defined_in_main(obj)) {
        return mg_enc_not_shareable(
            e, obj,
            PyType_Check(obj)
                ? "it is defined in __main__, which worker interpreters "
                  "cannot import; move it into a module on sys.path"
                : "its class is defined in __main__, which worker "
                  "interpreters cannot import; move the class into a "
                  "module on sys.path");
    }
    if (load_pickle(e->st) < 0) {
        return -1;
    }
    /* Plain pickle first: it is much cheaper than the handle-aware
     * Pickler, which is needed only when a SharedArray hides inside the
     * object (plain pickle then fails, and we try again with it). */
    PyObject *data = PyObject_CallFunction(e->st->pickle_dumps, "Oi", obj, 5);
    if (data == NULL && use_handle_pickler(e->st, NULL)
        && PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        data = pickle_with_handles(e, obj);
    }
    if (data == NULL) {
        if (PyErr_ExceptionMatches(e->st->NotShareableError)
            || !PyErr_ExceptionMatches(PyExc_Exception)) {
            return -1;
        }
        return mg_enc_not_shareable(e, obj, "it cannot be pickled");
    }
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_SystemError, "pickle did not return bytes");
        return -1;
    }
    unsigned char tag = TAG_PICKLE;
    /* Pickling runs no codec code: no index was taken meanwhile. */
    int rc = enc_memo_leaf(e, obj) < 0 ? -1 : mg_enc_bytes(e, &tag, 1);
    if (rc == 0) {
        rc = mg_enc_signed(e, TAG_PICKLE, PyBytes_AS_STRING(data),
                           (size_t)PyBytes_GET_SIZE(data));
    }
    Py_DECREF(data);
    return rc;
}

static int
enc_other(mg_enc *e, PyObject *obj)
{
    const mg_handle_type *t = mg_handles_of(e->st, obj);
    if (t != NULL) {
        return enc_handle(e, t, obj);
    }
    int r = mg_codefn_encode(e, obj);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    return enc_pickle(e, obj);
}

int
mg_enc_value(mg_enc *e, PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp == &PyLong_Type) {
        return enc_int(e, obj);
    }
    if (tp == &PyUnicode_Type) {
        return mg_enc_str(e, obj);
    }
    if (tp == &PyFloat_Type) {
        return enc_float(e, obj);
    }
    if (obj == Py_None) {
        return mg_enc_byte(e, TAG_NONE);
    }
    if (tp == &PyBool_Type) {
        return mg_enc_byte(e, obj == Py_True ? TAG_TRUE : TAG_FALSE);
    }
    if (tp == &PyTuple_Type) {
        return enc_tuple(e, obj);
    }
    if (tp == &PyList_Type) {
        return enc_list(e, obj);
    }
    if (tp == &PyDict_Type) {
        return enc_dict(e, obj);
    }
    if (tp == &PyBytes_Type) {
        return enc_raw(e, TAG_BYTES, PyBytes_AS_STRING(obj),
                       PyBytes_GET_SIZE(obj));
    }
    if (tp == &PyByteArray_Type) {
        return enc_bytearray(e, obj);
    }
    if (tp == &PySet_Type) {
        return enc_set(e, obj, TAG_SET);
    }
    if (tp == &PyFrozenSet_Type) {
        return enc_set(e, obj, TAG_FROZENSET);
    }
    if (tp == &PyComplex_Type) {
        return enc_complex(e, obj);
    }
    return enc_other(e, obj);
}

int
mg_codec_encode(mg_state *st, PyObject *obj, mg_buf *out)
{
    mg_enc e;
    memset(&e, 0, sizeof(e));
    e.st = st;
    e.out = out;
    mg_enc_memo_init(&e.memo);
    unsigned char head[MG_CODEC_HEADER_SIZE] = {
        codec_magic[0], codec_magic[1], codec_magic[2], MG_CODEC_VERSION};
    int rc = mg_enc_bytes(&e, head, sizeof(head));
    if (rc == 0) {
        rc = mg_enc_value(&e, obj);
    }
    Py_XDECREF(e.fn_memo);
    Py_XDECREF(e.ns_memo);
    mg_enc_memo_clear(&e.memo);
    return rc;
}

/* ---- readers ---- */

PyObject *
mg_dec_corrupt(mg_dec *d, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    PyOS_vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t at = d->in->data ? (size_t)(d->p - d->in->data) : 0;
    return mg_raise(d->st, MG_ECORRUPT,
                    "corrupt multigil message (byte %zu of %zu): %s", at,
                    d->in->len, msg);
}

int
mg_dec_need(mg_dec *d, size_t n, const char *what)
{
    size_t left = (size_t)(d->end - d->p);
    if (left < n) {
        mg_dec_corrupt(d, "truncated: %s needs %zu bytes, %zu left", what, n,
                       left);
        return -1;
    }
    return 0;
}

int
mg_dec_varint(mg_dec *d, uint64_t *v, const char *what)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (d->p >= d->end) {
            mg_dec_corrupt(d, "truncated inside the length of %s", what);
            return -1;
        }
        unsigned char c = *d->p++;
        if (shift == 63 && c > 1) {
            break;
        }
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    mg_dec_corrupt(d, "the length of %s overflows 64 bits", what);
    return -1;
}

int
mg_dec_count(mg_dec *d, Py_ssize_t *n, size_t min_size, const char *what)
{
    uint64_t v;
    if (mg_dec_varint(d, &v, what) < 0) {
        return -1;
    }
    size_t left = (size_t)(d->end - d->p);
    if (min_size > 0 && v > left / min_size) {
        mg_dec_corrupt(d,
                       "%s claims %llu elements but only %zu bytes are left",
                       what, (unsigned long long)v, left);
        return -1;
    }
    *n = (Py_ssize_t)v;
    return 0;
}

static PyObject *
dec_bigint(mg_dec *d)
{
    Py_ssize_t n;
    if (mg_dec_count(d, &n, 1, "an int") < 0) {
        return NULL;
    }
    if (n == 0) {
        return mg_dec_corrupt(d, "an int of 0 bytes");
    }
    const unsigned char *p = d->p;
    d->p += n;
#if MG_PY313
    return PyLong_FromNativeBytes(p, (size_t)n,
                                  Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
    PyObject *data = NULL, *meth = NULL, *args = NULL, *kw = NULL;
    PyObject *v = NULL;
    data = PyBytes_FromStringAndSize((const char *)p, n);
    meth = PyObject_GetAttrString((PyObject *)&PyLong_Type, "from_bytes");
    if (data == NULL || meth == NULL) {
        goto done;
    }
    args = Py_BuildValue("(Os)", data, "little");
    kw = Py_BuildValue("{sO}", "signed", Py_True);
    if (args != NULL && kw != NULL) {
        v = PyObject_Call(meth, args, kw);
    }
done:
    Py_XDECREF(data);
    Py_XDECREF(meth);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    return v;
#endif
}

static PyObject *
dec_fixed(mg_dec *d, int tag)
{
    size_t n = tag == TAG_INT8 ? 1 : tag == TAG_INT32 ? 4 : 8;
    if (tag == TAG_COMPLEX) {
        n = 16;
    }
    if (mg_dec_need(d, n, "a number") < 0) {
        return NULL;
    }
    const unsigned char *p = d->p;
    d->p += n;
    switch (tag) {
    case TAG_INT8:
        return PyLong_FromLong((int8_t)p[0]);
    case TAG_INT32: {
        int32_t x;
        memcpy(&x, p, 4);
        return PyLong_FromLong(x);
    }
    case TAG_INT64: {
        int64_t x;
        memcpy(&x, p, 8);
        return PyLong_FromLongLong(x);
    }
    case TAG_FLOAT: {
        double x;
        memcpy(&x, p, 8);
        return PyFloat_FromDouble(x);
    }
    default: {
        Py_complex c;
        memcpy(&c.real, p, 8);
        memcpy(&c.imag, p + 8, 8);
        return PyComplex_FromCComplex(c);
    }
    }
}

static Py_UCS4
unit_at(const unsigned char *p, int kind, Py_ssize_t i)
{
    if (kind == 2) {
        uint16_t u;
        memcpy(&u, p + 2 * i, 2);
        return u;
    }
    uint32_t u;
    memcpy(&u, p + 4 * i, 4);
    return u;
}

/* A UCS-2/UCS-4 string; the data may be unaligned and is untrusted. */
static PyObject *
dec_wide_str(mg_dec *d, int kind)
{
    Py_ssize_t n;
    if (mg_dec_count(d, &n, (size_t)kind, "a str") < 0) {
        return NULL;
    }
    const unsigned char *p = d->p;
    Py_UCS4 maxchar = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = unit_at(p, kind, i);
        maxchar = c > maxchar ? c : maxchar;
    }
    if (maxchar > 0x10ffff) {
        return mg_dec_corrupt(d, "a str holds code point 0x%lx",
                              (unsigned long)maxchar);
    }
    PyObject *s = PyUnicode_New(n, maxchar);
    if (s == NULL) {
        return NULL;
    }
    if ((int)PyUnicode_KIND(s) == kind) {
        memcpy(PyUnicode_DATA(s), p, (size_t)n * (size_t)kind);
    }
    else {
        int k = (int)PyUnicode_KIND(s);
        void *data = PyUnicode_DATA(s);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyUnicode_WRITE(k, data, i, unit_at(p, kind, i));
        }
    }
    d->p += (size_t)n * (size_t)kind;
    return s;
}

static PyObject *
dec_raw(mg_dec *d, int tag)
{
    Py_ssize_t n;
    if (mg_dec_count(d, &n, 1, "a bytes-like value") < 0) {
        return NULL;
    }
    const char *p = (const char *)d->p;
    d->p += n;
    if (tag == TAG_BYTES) {
        return PyBytes_FromStringAndSize(p, n);
    }
    Py_ssize_t index = mg_dec_memo_reserve(d);
    PyObject *v = index < 0 ? NULL : PyByteArray_FromStringAndSize(p, n);
    if (v != NULL) {
        mg_dec_memo_fill(d, index, v, 1);
    }
    return v;
}

/* A 1-byte-kind str. With cached, short ones are shared through a small
 * cache, so a list of records with the same keys and repeated values
 * allocates each string once (pickle gets the same from its memo). Used
 * for dict keys and values only: a list of distinct strings would pay
 * for the misses. */
static PyObject *
dec_str1(mg_dec *d, int cached)
{
    Py_ssize_t n;
    if (mg_dec_count(d, &n, 1, "a str") < 0) {
        return NULL;
    }
    const unsigned char *s = d->p;
    d->p += n;
    if (n > 32 || !cached) {
        return PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, s, n);
    }
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ s[i]) * 16777619u;
    }
    PyObject **slot = &d->keys[(h ^ (h >> 7)) & 63];
    PyObject *k = *slot;
    if (k != NULL && PyUnicode_GET_LENGTH(k) == n
        && memcmp(PyUnicode_DATA(k), s, (size_t)n) == 0) {
        return Py_NewRef(k);
    }
    k = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, s, n);
    if (k != NULL && PyUnicode_KIND(k) == PyUnicode_1BYTE_KIND) {
        Py_XSETREF(*slot, Py_NewRef(k));
    }
    return k;
}

/* The common scalars inside a container, without the general dispatch;
 * NULL without an exception when the next value is something else. */
static inline PyObject *
dec_scalar_fast(mg_dec *d)
{
    const unsigned char *p = d->p;
    ptrdiff_t left = d->end - p;
    if (left >= 2 && p[0] == TAG_INT8) {
        d->p += 2;
        return PyLong_FromLong((int8_t)p[1]);
    }
    if (left >= 9 && p[0] == TAG_FLOAT) {
        double x;
        memcpy(&x, p + 1, 8);
        d->p += 9;
        return PyFloat_FromDouble(x);
    }
    if (left >= 5 && p[0] == TAG_INT32) {
        int32_t x;
        memcpy(&x, p + 1, 4);
        d->p += 5;
        return PyLong_FromLong(x);
    }
    return NULL;
}

static inline PyObject *
dec_item(mg_dec *d)
{
    PyObject *v = dec_scalar_fast(d);
    return v != NULL || PyErr_Occurred() ? v : mg_dec_value(d);
}

/* A dict key or value: like dec_item, with short strings cached. */
static PyObject *
dec_dict_item(mg_dec *d)
{
    if (d->p < d->end && *d->p == TAG_STR1) {
        d->p++;
        return dec_str1(d, 1);
    }
    return dec_item(d);
}

/* The count of a container's items (each at least min_size bytes) and
 * the memo index it takes; -1 with ValueError or MemoryError. */
static Py_ssize_t
dec_container(mg_dec *d, Py_ssize_t *n, size_t min_size, const char *what)
{
    if (mg_dec_count(d, n, min_size, what) < 0) {
        return -1;
    }
    return mg_dec_memo_reserve(d);
}

/* A list takes its memo index before its items (it may contain itself);
 * its size grows with the items decoded, so it is a valid list at every
 * step. */
static PyObject *
dec_list(mg_dec *d)
{
    Py_ssize_t n, index;
    if ((index = dec_container(d, &n, 1, "a list")) < 0) {
        return NULL;
    }
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    Py_SET_SIZE(list, 0);
    mg_dec_memo_fill(d, index, list, 1);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = dec_item(d);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
        Py_SET_SIZE(list, i + 1);
    }
    return list;
}

/* A tuple is in the memo only once complete; its weight is the nodes
 * hashing it visits (shared sub-tuples count every time). */
static PyObject *
dec_tuple(mg_dec *d)
{
    Py_ssize_t n, index;
    if ((index = dec_container(d, &n, 1, "a tuple")) < 0) {
        return NULL;
    }
    PyObject *tuple = PyTuple_New(n);
    if (tuple == NULL) {
        return NULL;
    }
    uint64_t weight = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        d->weight = 1;
        PyObject *item = dec_item(d);
        if (item == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, item);
        weight += d->weight < MG_WEIGHT_MAX - weight ? d->weight
                                                      : MG_WEIGHT_MAX - weight;
    }
    mg_dec_memo_fill(d, index, tuple, weight);
    d->weight = weight;
    return tuple;
}

static PyObject *
unhashable(mg_dec *d, PyObject *key)
{
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        return mg_dec_corrupt(d, "a dict key or set item is a %.100s",
                              Py_TYPE(key)->tp_name);
    }
    return NULL;
}

static PyObject *
dec_dict(mg_dec *d)
{
    Py_ssize_t n, index;
    PyObject *k = NULL, *v = NULL;
    if ((index = dec_container(d, &n, 2, "a dict")) < 0) {
        return NULL;
    }
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    mg_dec_memo_fill(d, index, dict, 1);
    for (Py_ssize_t i = 0; i < n; i++) {
        d->weight = 1;
        k = dec_dict_item(d);
        if (k == NULL || mg_dec_charge_hash(d, d->weight) < 0) {
            goto error;
        }
        v = dec_dict_item(d);
        if (v == NULL) {
            goto error;
        }
        if (PyDict_SetItem(dict, k, v) < 0) {
            unhashable(d, k);
            goto error;
        }
        Py_CLEAR(k);
        Py_CLEAR(v);
    }
    return dict;
error:
    Py_XDECREF(k);
    Py_XDECREF(v);
    Py_DECREF(dict);
    return NULL;
}

/* A set is in the memo from the start; a frozenset (immutable once
 * visible) only once complete. */
static PyObject *
dec_set(mg_dec *d, int tag)
{
    Py_ssize_t n, index;
    if ((index = dec_container(d, &n, 1, "a set")) < 0) {
        return NULL;
    }
    PyObject *set = tag == TAG_SET ? PySet_New(NULL) : PyFrozenSet_New(NULL);
    if (set == NULL) {
        return NULL;
    }
    if (tag == TAG_SET) {
        mg_dec_memo_fill(d, index, set, 1);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = mg_dec_value(d);
        if (item == NULL) {
            goto error;
        }
        int r = mg_dec_charge_hash(d, d->weight);
        if (r == 0) {
            r = PySet_Add(set, item);
            if (r < 0) {
                unhashable(d, item);
            }
        }
        Py_DECREF(item);
        if (r < 0) {
            goto error;
        }
    }
    if (tag == TAG_FROZENSET) {
        mg_dec_memo_fill(d, index, set, 1);
    }
    return set;
error:
    Py_DECREF(set);
    return NULL;
}

static PyObject *
dec_handle(mg_dec *d)
{
    uint64_t id, index;
    Py_ssize_t meta_len;
    if (mg_dec_varint(d, &id, "a handle") < 0
        || mg_dec_varint(d, &index, "a handle") < 0
        || mg_dec_count(d, &meta_len, 1, "a handle's metadata") < 0) {
        return NULL;
    }
    const unsigned char *meta = d->p;
    d->p += meta_len;
    return dec_wrap_handle(d, id, index, meta, (size_t)meta_len);
}

static PyObject *
unpickle_with_handles(mg_dec *d, PyObject *view)
{
    mg_state *st = d->st;
    PyObject *bio = NULL, *up = NULL, *cap = NULL, *pl = NULL, *v = NULL;
    if (load_picklers(st) < 0) {
        return NULL;
    }
    bio = PyObject_CallOneArg(st->bytesio_type, view);
    cap = bio ? PyCapsule_New(d, PID_CAPSULE, NULL) : NULL;
    pl = cap ? PyCFunction_New(&persistent_load_def, cap) : NULL;
    if (pl == NULL) {
        goto done;
    }
    up = PyObject_CallFunctionObjArgs(st->unpickler_type, bio, pl, NULL);
    if (up == NULL) {
        goto done;
    }
    v = PyObject_CallMethod(up, "load", NULL);
done:
    Py_XDECREF(bio);
    Py_XDECREF(up);
    Py_XDECREF(cap);
    Py_XDECREF(pl);
    return v;
}

int
mg_enc_signed(mg_enc *e, int domain, const void *p, size_t n)
{
    uint64_t mac = mg_codec_mac(domain, p, n);
    if (mg_enc_varint(e, (uint64_t)n) < 0 || mg_enc_bytes(e, p, n) < 0) {
        return -1;
    }
    return mg_enc_bytes(e, &mac, 8);
}

int
mg_dec_signed(mg_dec *d, int domain, const char *what,
              const unsigned char **p, Py_ssize_t *n)
{
    if (mg_dec_count(d, n, 1, what) < 0
        || mg_dec_need(d, (size_t)*n + 8, what) < 0) {
        return -1;
    }
    uint64_t mac;
    memcpy(&mac, d->p + *n, 8);
    if (mac != mg_codec_mac(domain, d->p, (size_t)*n)) {
        mg_dec_corrupt(d, "%s fails its integrity check (it only loads in "
                          "the process that encoded it)", what);
        return -1;
    }
    *p = d->p;
    d->p += *n + 8;
    return 0;
}

static PyObject *
dec_pickle(mg_dec *d)
{
    const unsigned char *data;
    Py_ssize_t n, index = mg_dec_memo_reserve(d);
    if (index < 0
        || mg_dec_signed(d, TAG_PICKLE, "a pickled value", &data, &n) < 0
        || load_pickle(d->st) < 0) {
        return NULL;
    }
    PyObject *view = PyMemoryView_FromMemory((char *)data, n, PyBUF_READ);
    if (view == NULL) {
        return NULL;
    }
    PyObject *v = use_handle_pickler(d->st, d->in)
                      ? unpickle_with_handles(d, view)
                      : PyObject_CallOneArg(d->st->pickle_loads, view);
    /* A memoryview over our buffer must not outlive this call. */
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *r = PyObject_CallMethod(view, "release", NULL);
    if (r == NULL) {
        Py_CLEAR(v);
        Py_XDECREF(exc); /* the release error says more */
    }
    else {
        Py_DECREF(r);
        PyErr_SetRaisedException(exc);
    }
    Py_DECREF(view);
    if (v != NULL) {
        mg_dec_memo_fill(d, index, v, 1);
    }
    return v;
}

PyObject *
mg_dec_value(mg_dec *d)
{
    if (d->p >= d->end) {
        return mg_dec_corrupt(d, "truncated: a value is missing");
    }
    if (d->depth > MG_CODEC_MAX_DEPTH) {
        return mg_dec_corrupt(d, "values nested deeper than %d levels",
                              MG_CODEC_MAX_DEPTH);
    }
    int tag = *d->p++;
    PyObject *v;
    d->depth++;
    switch (tag) {
    case TAG_NONE:
        v = Py_NewRef(Py_None);
        break;
    case TAG_TRUE:
        v = Py_NewRef(Py_True);
        break;
    case TAG_FALSE:
        v = Py_NewRef(Py_False);
        break;
    case TAG_INT8:
    case TAG_INT32:
    case TAG_INT64:
    case TAG_FLOAT:
    case TAG_COMPLEX:
        v = dec_fixed(d, tag);
        break;
    case TAG_BIGINT:
        v = dec_bigint(d);
        break;
    case TAG_STR1:
        v = dec_str1(d, 0);
        break;
    case TAG_BYTES:
    case TAG_BYTEARRAY:
        v = dec_raw(d, tag);
        break;
    case TAG_STR2:
        v = dec_wide_str(d, 2);
        break;
    case TAG_STR4:
        v = dec_wide_str(d, 4);
        break;
    case TAG_TUPLE:
        v = dec_tuple(d);
        break;
    case TAG_LIST:
        v = dec_list(d);
        break;
    case TAG_MEMO_REF:
        v = mg_dec_memo_ref(d);
        break;
    case TAG_DICT:
        v = dec_dict(d);
        break;
    case TAG_SET:
    case TAG_FROZENSET:
        v = dec_set(d, tag);
        break;
    case TAG_HANDLE:
        v = dec_handle(d);
        break;
    case TAG_PICKLE:
        v = dec_pickle(d);
        break;
    case TAG_MODULE:
    case TAG_FNREF:
    case TAG_FNCODE:
    case TAG_FNBACK:
    case TAG_PARTIAL:
    case TAG_METHOD:
        v = mg_codefn_decode(d, tag);
        break;
    default:
        d->p--;
        v = mg_dec_corrupt(d, "unknown tag 0x%02x", tag);
        break;
    }
    d->depth--;
    if (tag != TAG_TUPLE && tag != TAG_MEMO_REF) {
        d->weight = 1;
    }
    return v;
}

/* Errors other than ValueError raised while decoding (a pickle that does
 * not load, an unhashable key) become ValueError, the cause chained. */
static void
dec_wrap_error(void)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)
        || PyErr_ExceptionMatches(PyExc_ValueError)
        || PyErr_ExceptionMatches(PyExc_MemoryError)) {
        return;
    }
    PyObject *cause = PyErr_GetRaisedException();
    PyErr_Format(PyExc_ValueError,
                 "cannot decode a multigil message: %s: %S",
                 Py_TYPE(cause)->tp_name, cause);
    PyObject *exc = PyErr_GetRaisedException();
    PyException_SetCause(exc, cause);
    PyErr_SetRaisedException(exc);
}

PyObject *
mg_codec_decode(mg_state *st, const mg_buf *in)
{
    mg_dec d;
    memset(&d, 0, sizeof(d));
    d.st = st;
    d.in = in;
    d.p = in->data;
    d.end = in->data + in->len;
    PyObject *v = NULL;
    if (in->len < MG_CODEC_HEADER_SIZE) {
        mg_raise(st, MG_ECORRUPT,
                 "not a multigil message: %zu bytes, shorter than the "
                 "header",
                 in->len);
        goto done;
    }
    if (memcmp(in->data, codec_magic, 3) != 0) {
        mg_raise(st, MG_ECORRUPT, "not a multigil message (bad magic)");
        goto done;
    }
    if (in->data[3] != MG_CODEC_VERSION) {
        mg_raise(st, MG_ECORRUPT,
                 "multigil message of format version %d; this build reads "
                 "version %d (the format is not for long-term storage)",
                 in->data[3], MG_CODEC_VERSION);
        goto done;
    }
    d.p += MG_CODEC_HEADER_SIZE;
    d.hash_budget = MG_HASH_BUDGET_BASE + MG_HASH_BUDGET_PER_BYTE * in->len;
    /* A collection while building a large value would walk it for
     * nothing (cycles made by back-references are collected later). */
    int gc_was_on = in->len > 65536 ? PyGC_Disable() : 0;
    v = mg_dec_value(&d);
    if (gc_was_on) {
        PyGC_Enable();
    }
    if (v != NULL && d.p != d.end) {
        Py_CLEAR(v);
        mg_dec_corrupt(&d, "%zu bytes left over after the value",
                       (size_t)(d.end - d.p));
    }
done:
    if (v == NULL) {
        dec_wrap_error();
    }
    for (int i = 0; i < 64; i++) {
        Py_XDECREF(d.keys[i]);
    }
    Py_XDECREF(d.fn_table);
    Py_XDECREF(d.ns_table);
    mg_dec_memo_clear(&d);
    return v;
}

/* ---- Python functions ---- */

PyDoc_STRVAR(core_dumps_doc,
"dumps($module, obj, /)\n--\n\n"
"Encode obj with multigil's codec and return the bytes.\n\n"
"The format is version-tagged and meant for moving values between the\n"
"interpreters of one process: it is NOT for long-term storage or for\n"
"another Python build. Plain values take a C fast path, functions from\n"
"__main__ and lambdas travel as code, anything else as a pickle. A\n"
"SharedArray cannot be represented as bytes (it travels as a handle\n"
"through a pool or queue): dumps() raises TypeError for it.");

static PyObject *
core_dumps(PyObject *mod, PyObject *obj)
{
    mg_state *st = mg_state_from_module(mod);
    mg_buf buf = MG_BUF_INIT;
    PyObject *res = NULL;
    if (mg_codec_encode(st, obj, &buf) < 0) {
        goto done;
    }
    if (buf.nhandles > 0) {
        PyErr_SetString(PyExc_TypeError,
                        "dumps() cannot encode a SharedArray (or another "
                        "object that crosses as a handle): it crosses "
                        "interpreters as a handle to shared memory, only "
                        "through a Pool or Queue, not as bytes");
        goto done;
    }
    res = PyBytes_FromStringAndSize((const char *)buf.data,
                                    (Py_ssize_t)buf.len);
done:
    mg_buf_release(&buf);
    return res;
}

PyDoc_STRVAR(core_loads_doc,
"loads($module, data, /)\n--\n\n"
"Decode bytes made by dumps() (any bytes-like object) into a new value.\n\n"
"The input is checked: truncated or corrupted data raises ValueError.\n"
"The format is version-tagged and NOT for long-term storage. Like pickle,\n"
"a message may carry pickled objects and functions: load only data made\n"
"by this process.");

static PyObject *
core_loads(PyObject *mod, PyObject *data)
{
    mg_state *st = mg_state_from_module(mod);
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    mg_buf in = MG_BUF_INIT;
    in.data = view.buf;
    in.len = (size_t)view.len;
    in.cap = in.len;
    PyObject *v = mg_codec_decode(st, &in);
    PyBuffer_Release(&view);
    return v;
}

PyDoc_STRVAR(core_roundtrip_doc,
"_roundtrip($module, obj, /)\n--\n\n"
"Encode obj into a transport buffer and decode it again, as a pool task\n"
"does (for tests and benchmarks).");

static PyObject *
core_roundtrip(PyObject *mod, PyObject *obj)
{
    mg_state *st = mg_state_from_module(mod);
    mg_buf buf = MG_BUF_INIT;
    PyObject *v = NULL;
    if (mg_codec_encode(st, obj, &buf) == 0) {
        v = mg_codec_decode(st, &buf);
    }
    mg_buf_release(&buf);
    return v;
}

PyDoc_STRVAR(core_loads_with_handles_doc,
"_loads_with_handles($module, data, objs, /)\n--\n\n"
"Decode data as a message whose handle i is the handle behind objs[i]\n"
"(objects of a registered handle type, e.g. SharedArrays): for tests of\n"
"the decoder's handle checks.");

static PyObject *
core_loads_with_handles(PyObject *mod, PyObject *const *args,
                        Py_ssize_t nargs)
{
    mg_state *st = mg_state_from_module(mod);
    mg_buf buf = MG_BUF_INIT;
    PyObject *v = NULL;
    unsigned char meta[MG_HANDLE_META_MAX];
    size_t index, meta_len;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "_loads_with_handles(bytes, list)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args[1]); i++) {
        PyObject *obj = PyList_GET_ITEM(args[1], i);
        const mg_handle_type *t = mg_handles_of(st, obj);
        if (t == NULL) {
            PyErr_Format(PyExc_TypeError, "%.100s is not a handle object",
                         Py_TYPE(obj)->tp_name);
            goto done;
        }
        if (mg_handles_export(st, t, obj, &buf, &index, meta, &meta_len)
            < 0) {
            goto done;
        }
    }
    if (mg_buf_append(&buf, PyBytes_AS_STRING(args[0]),
                      (size_t)PyBytes_GET_SIZE(args[0])) != MG_OK) {
        PyErr_NoMemory();
        goto done;
    }
    v = mg_codec_decode(st, &buf);
done:
    mg_buf_release(&buf);
    return v;
}

static PyMethodDef codec_methods[] = {
    {"_loads_with_handles", (PyCFunction)(void (*)(void))core_loads_with_handles,
     METH_FASTCALL, core_loads_with_handles_doc},
    {"dumps", core_dumps, METH_O, core_dumps_doc},
    {"loads", core_loads, METH_O, core_loads_doc},
    {"_roundtrip", core_roundtrip, METH_O, core_roundtrip_doc},
    {NULL, NULL, 0, NULL},
};

/* ---- state and registration ---- */

int
mg_codec_state_traverse(mg_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->pickle_dumps);
    Py_VISIT(st->pickle_loads);
    Py_VISIT(st->pickle_error);
    Py_VISIT(st->pickler_type);
    Py_VISIT(st->unpickler_type);
    Py_VISIT(st->bytesio_type);
    Py_VISIT(st->partial_type);
    Py_VISIT(st->codefn_helper);
    Py_VISIT(st->fn_cache);
    Py_VISIT(st->code_cache);
    Py_VISIT(st->code_by_bytes);
    return 0;
}

void
mg_codec_state_clear(mg_state *st)
{
    Py_CLEAR(st->pickle_dumps);
    Py_CLEAR(st->pickle_loads);
    Py_CLEAR(st->pickle_error);
    Py_CLEAR(st->pickler_type);
    Py_CLEAR(st->unpickler_type);
    Py_CLEAR(st->bytesio_type);
    Py_CLEAR(st->partial_type);
    Py_CLEAR(st->codefn_helper);
    Py_CLEAR(st->fn_cache);
    Py_CLEAR(st->code_cache);
    Py_CLEAR(st->code_by_bytes);
}

static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *mod = PyImport_ImportModule(module);
    if (mod == NULL) {
        return NULL;
    }
    PyObject *v = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return v;
}

int
mg_codec_module_add(PyObject *mod, mg_state *st)
{
    /* pickle is imported on first use (load_pickle): it costs about 10 ms
     * and every worker interpreter imports this module. */
    if (mg_codefn_state_init(st) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(mod, codec_methods);
}
