/* excinfo.c - exceptions that cross from a worker interpreter to the
 * caller's.
 *
 * Owns: formatting a worker's traceback, encoding an exception (or, when it
 * cannot cross, a description of it) into an mg_buf, and rebuilding it in
 * the caller with the worker's traceback as a RemoteTraceback __cause__.
 * Locks: none. Runs with the GIL of the interpreter named by its state
 * argument; never blocks.
 */
#include "excinfo.h"
#include "codec.h"

#include <string.h>

PyObject *
mg_format_traceback(PyObject *exc)
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

char *
mg_utf8_dup(const char *s, size_t max_bytes)
{
    size_t n = strlen(s);
    if (n > max_bytes) {
        n = max_bytes;
        /* Back up over continuation bytes (10xxxxxx) to the start of the
         * character that would be cut, and drop it. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    char *out = MG_RAW_MALLOC(n + 1);
    if (out != NULL) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

char *
mg_current_exception_text(size_t max_bytes)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *text = exc ? mg_format_traceback(exc) : NULL;
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    if (s == NULL && exc != NULL) {
        /* The traceback could not be formatted: at least say what. */
        PyErr_Clear();
        Py_XSETREF(text, PyObject_Str(exc));
        s = text ? PyUnicode_AsUTF8(text) : NULL;
    }
    PyErr_Clear();
    char *out = mg_utf8_dup(s ? s : "unknown error", max_bytes);
    Py_XDECREF(text);
    Py_XDECREF(exc);
    return out;
}

PyObject *
mg_exception_info(PyObject *exc)
{
    PyObject *name = NULL, *msg = NULL, *info = NULL;
    PyObject *text = mg_format_traceback(exc);
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

/* info with its exception slot replaced by None (the exception itself
 * could not be encoded), encoded into out; 0 on success. */
static int
encode_info_without_exception(mg_state *wst, PyObject *info, mg_buf *out)
{
    PyObject *old = PyTuple_GET_ITEM(info, 0);
    PyTuple_SET_ITEM(info, 0, Py_NewRef(Py_None));
    Py_DECREF(old);
    if (mg_codec_encode(wst, info, out) == 0) {
        return 0;
    }
    PyErr_Clear();
    mg_buf_release(out);
    return -1;
}

void
mg_encode_exception(mg_state *wst, PyObject *exc, mg_buf *out)
{
    PyObject *info = mg_exception_info(exc);
    if (info != NULL && mg_codec_encode(wst, info, out) == 0) {
        Py_DECREF(info);
        return;
    }
    PyErr_Clear();
    mg_buf_release(out);
    if (info != NULL) {
        int rc = encode_info_without_exception(wst, info, out);
        Py_DECREF(info);
        if (rc == 0) {
            return;
        }
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

void
mg_encode_current_exception(mg_state *wst, mg_buf *out)
{
    PyObject *exc = PyErr_GetRaisedException();
    mg_encode_exception(wst, exc, out);
    Py_XDECREF(exc);
}

PyObject *
mg_build_remote_exception(mg_state *ost, PyObject *info)
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
