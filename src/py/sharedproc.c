/* sharedproc.c - the hooks multigil/_fallback.py uses to move SharedArrays
 * to and from process workers without a copy.
 *
 * Owns five module functions: _shared_export (what a process needs to
 * rebuild a view: the block's memfd, sizes, the view's offset, length,
 * stride, dtype and frozen flag), _shared_import (a view over a memfd
 * another process sent (a close-on-exec dup of it), over bytes, or over the block of an array of this
 * process), and _shared_read/_shared_write (bytes of a heap block, for
 * the small blocks that cross by copy), and _shared_block_refs (how many
 * references a block has: multigil/_mapcache.py drops a cached mapping
 * once its private view is the block's last holder). The fd stays owned
 * by the block:
 * export hands out the number, the caller sends it (SCM_RIGHTS) while the
 * array keeps the block alive; import dups the fd it is given
 * (close-on-exec, like the memfd itself).
 *
 * Locks: none (blocks are atomics). Every size and offset that comes from
 * another process is checked against the block before any view is made:
 * a malformed message raises ValueError, never maps or reads out of range.
 */
#include "sharedarray.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <fcntl.h>  /* fcntl(F_DUPFD_CLOEXEC) */
#include <unistd.h> /* close */

static PyObject *
sharedproc_export(PyObject *mod, PyObject *obj)
{
    mg_state *st = mg_state_from_module(mod);
    MgSharedArrayObject *a = mg_shared_arg(st, obj, "_shared_export()");
    if (a == NULL) {
        return NULL;
    }
    mg_block *b = a->block;
    Py_ssize_t offset = a->base - (char *)b->data;
    char code[2] = {a->dtype->code, 0};
    return Py_BuildValue("(innnnsiK)", mg_block_share_fd(b),
                         (Py_ssize_t)b->nbytes,
                         offset, a->length, a->stride, code,
                         mg_block_is_frozen(b),
                         (unsigned long long)(uintptr_t)b);
}

/* 0 when length items of itemsize bytes, stride apart, starting offset
 * bytes into a block of nbytes stay inside it; else -1 with ValueError. */
static int
check_view(size_t nbytes, Py_ssize_t offset, Py_ssize_t length,
           Py_ssize_t stride, size_t itemsize)
{
    if (offset < 0 || length < 0 || (size_t)offset > nbytes) {
        goto bad;
    }
    if (length == 0) {
        return 0;
    }
    Py_ssize_t span;
    if (__builtin_mul_overflow(length - 1, stride, &span)) {
        goto bad;
    }
    Py_ssize_t lo = span < 0 ? offset + span : offset;
    Py_ssize_t hi = (span < 0 ? offset : offset + span)
                    + (Py_ssize_t)itemsize;
    if (lo < 0 || hi < lo || (size_t)hi > nbytes) {
        goto bad;
    }
    return 0;
bad:
    PyErr_Format(PyExc_ValueError,
                 "SharedArray view (offset %zd, %zd items, stride %zd) "
                 "does not fit its block of %zu bytes",
                 offset, length, stride, nbytes);
    return -1;
}

/* A new block holding a copy of the bytes in src (a buffer). */
static mg_block *
block_from_bytes(PyObject *src, size_t *nbytes)
{
    Py_buffer v;
    if (PyObject_GetBuffer(src, &v, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    mg_block *b = mg_block_new((size_t)v.len);
    if (b == NULL) {
        PyErr_NoMemory();
    }
    else {
        memcpy(b->data, v.buf, (size_t)v.len);
        *nbytes = (size_t)v.len;
    }
    PyBuffer_Release(&v);
    return b;
}

/* A new block over a dup of the memfd fd (nbytes long). */
static mg_block *
block_from_fd(int fd, size_t nbytes, int frozen)
{
    int mine = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* not inherited by exec */
    if (mine < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    mg_block *b = mg_block_from_fd(mine, nbytes, frozen);
    if (b == NULL) {
        int e = errno;
        close(mine);
        if (e == EINVAL) {
            PyErr_Format(PyExc_ValueError, "fd %d is not a shared memory "
                         "block of %zu bytes", fd, nbytes);
        }
        else {
            errno = e;
            PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    return b;
}

/* The block that src names (a fd, bytes, or a SharedArray of this
 * process), with a new reference, or NULL with an exception. */
static mg_block *
import_block(mg_state *st, PyObject *src, Py_ssize_t nbytes, int frozen,
             size_t *have)
{
    if (PyLong_Check(src)) {
        long lfd = PyLong_AsLong(src);
        if (lfd == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (lfd < 0 || lfd > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "bad fd %ld", lfd);
            return NULL;
        }
        int fd = (int)lfd;
        if (nbytes < 0) {
            PyErr_SetString(PyExc_ValueError, "block size must be >= 0");
            return NULL;
        }
        *have = (size_t)nbytes;
        return block_from_fd(fd, (size_t)nbytes, frozen);
    }
    if (PyObject_TypeCheck(src, st->SharedArrayType)) {
        mg_block *b = ((MgSharedArrayObject *)src)->block;
        mg_block_incref(b);
        *have = b->nbytes;
        return b;
    }
    mg_block *b = block_from_bytes(src, have);
    if (b != NULL && frozen) {
        size_t n;
        (void)mg_block_freeze(b, &n); /* new: no exports yet */
    }
    return b;
}

static PyObject *
sharedproc_import(PyObject *mod, PyObject *args)
{
    mg_state *st = mg_state_from_module(mod);
    PyObject *src;
    Py_ssize_t nbytes, offset, length, stride;
    const char *code;
    int frozen;
    if (!PyArg_ParseTuple(args, "Onnnnsp:_shared_import", &src, &nbytes,
                          &offset, &length, &stride, &code, &frozen)) {
        return NULL;
    }
    const mg_dtype *dt = strlen(code) == 1 ? mg_dtype_from_code(code[0])
                                           : NULL;
    if (dt == NULL) {
        return PyErr_Format(PyExc_ValueError, "unknown dtype code %R",
                            PyTuple_GET_ITEM(args, 5));
    }
    size_t have = 0;
    mg_block *b = import_block(st, src, nbytes, frozen, &have);
    if (b == NULL) {
        return NULL;
    }
    PyObject *out = NULL;
    if (check_view(have, offset, length, stride, dt->itemsize) == 0) {
        out = mg_shared_wrap(st, b, (char *)b->data + offset, length, stride,
                             dt);
    }
    mg_block_decref(b);
    return out;
}

/* The block of obj and the range [lo, hi) of it, checked. */
static mg_block *
block_range(PyObject *mod, PyObject *obj, Py_ssize_t lo, Py_ssize_t hi)
{
    mg_state *st = mg_state_from_module(mod);
    MgSharedArrayObject *a = mg_shared_arg(st, obj, "_shared_read()");
    if (a == NULL) {
        return NULL;
    }
    if (lo < 0 || hi < lo || (size_t)hi > a->block->nbytes) {
        PyErr_Format(PyExc_ValueError, "range [%zd, %zd) is outside the "
                     "block of %zu bytes", lo, hi, a->block->nbytes);
        return NULL;
    }
    return a->block;
}

static PyObject *
sharedproc_read(PyObject *mod, PyObject *args)
{
    PyObject *obj;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "Onn:_shared_read", &obj, &lo, &hi)) {
        return NULL;
    }
    mg_block *b = block_range(mod, obj, lo, hi);
    return b == NULL ? NULL
        : PyBytes_FromStringAndSize((char *)b->data + lo, hi - lo);
}

static PyObject *
sharedproc_write(PyObject *mod, PyObject *args)
{
    PyObject *obj;
    Py_ssize_t lo;
    Py_buffer v;
    if (!PyArg_ParseTuple(args, "Ony*:_shared_write", &obj, &lo, &v)) {
        return NULL;
    }
    mg_block *b = block_range(mod, obj, lo, lo + v.len);
    if (b != NULL && mg_block_is_frozen(b)) {
        PyErr_SetString(PyExc_TypeError, "SharedArray is read-only");
        b = NULL;
    }
    if (b != NULL) {
        memcpy((char *)b->data + lo, v.buf, (size_t)v.len);
    }
    PyBuffer_Release(&v);
    if (b == NULL) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
sharedproc_block_refs(PyObject *mod, PyObject *obj)
{
    mg_state *st = mg_state_from_module(mod);
    MgSharedArrayObject *a = mg_shared_arg(st, obj, "_shared_block_refs()");
    if (a == NULL) {
        return NULL;
    }
    return PyLong_FromSize_t(mg_handle_refcnt(&a->block->h));
}

static PyMethodDef sharedproc_functions[] = {
    {"_shared_export", sharedproc_export, METH_O,
     PyDoc_STR("_shared_export(a) -> (fd, block_nbytes, offset, length, "
               "stride, dtype_code, frozen, block_key); fd is -1 for a "
               "heap block, and stays owned by the block.")},
    {"_shared_import", sharedproc_import, METH_VARARGS,
     PyDoc_STR("_shared_import(src, block_nbytes, offset, length, stride, "
               "dtype_code, frozen) -> SharedArray over src: a memfd (int, "
               "dup'ed), bytes (copied) or a SharedArray (its block).")},
    {"_shared_read", sharedproc_read, METH_VARARGS,
     PyDoc_STR("_shared_read(a, lo, hi) -> bytes lo..hi of a's block.")},
    {"_shared_write", sharedproc_write, METH_VARARGS,
     PyDoc_STR("_shared_write(a, lo, data): copy data into a's block at "
               "lo.")},
    {"_shared_block_refs", sharedproc_block_refs, METH_O,
     PyDoc_STR("_shared_block_refs(a) -> references to a's block (views in "
               "every interpreter, handles, exports) in this process.")},
    {NULL, NULL, 0, NULL},
};

int
mg_sharedproc_module_add(PyObject *mod, mg_state *st)
{
    (void)st;
    return PyModule_AddFunctions(mod, sharedproc_functions);
}
