"""multigil._wire - messages between a Pool and its process workers
(multigil._fallback), over a Unix socket, with SharedArrays as shared
memory rather than copies.

A message is a pickle (protocol 5) plus the file descriptors it refers to,
sent with SCM_RIGHTS. In it:

- a SharedArray whose block lives in a memfd (blocks of 1 MiB and more,
  src/base/block.h) travels as the memfd: the receiver maps the same
  pages, so reads see the sender's data and writes are the sender's.
  Several arrays over one block send the fd once; the receiver maps it
  once per message, or, in a process worker, once until the pool tells it
  to drop the mapping (multigil._mapcache).
- a SharedArray over a small heap block travels as a copy of the bytes
  its view spans; the process worker sends back the spans that the task
  changed, and the pool writes them into the caller's block when the task
  ends (copy-in, copy-out: a process task's writes to a small array are
  visible once its future is done, not while it runs).
- an array the receiver itself sent (a task returning its argument, or a
  view of it) comes back as a reference to the caller's own block, not as
  new memory.
- functions that pickle cannot send by reference (lambdas, closures,
  functions of __main__) travel as code (marshal) with the globals they
  use and their closure's values, as they do to worker interpreters;
  modules travel by name. (multigil.dumps cannot serve: its code carries
  a per-process integrity check. Both ends are the same Python build and
  the same program: a process worker is as trusted as the caller.)

Every number that comes from the other side is checked in C
(_core._shared_import) before a view is made.
"""
import builtins
import importlib
import io
import marshal
import pickle
import socket
import struct
import sys
import types

from . import _core

_HEADER = struct.Struct("<QI")  # payload bytes, number of fds
_MAX_FDS = 253                  # SCM_RIGHTS limit per message
_SharedArray = _core.SharedArray


def _make_function(code, names, name, qualname, module, defaults,
                   kwdefaults, closure):
    g = {"__builtins__": builtins, "__name__": module}
    g.update(names)
    cells = None if closure is None else tuple(
        types.CellType(v) for v in closure)
    fn = types.FunctionType(marshal.loads(code), g, name, defaults, cells)
    fn.__kwdefaults__ = kwdefaults
    fn.__qualname__ = qualname
    fn.__module__ = module
    return fn


def _reduce_function(fn):
    from ._codefn import global_names
    g = fn.__globals__
    names = {n: g[n] for n in global_names(fn.__code__) if n in g}
    closure = None
    if fn.__closure__ is not None:
        try:
            closure = [c.cell_contents for c in fn.__closure__]
        except ValueError:
            raise pickle.PicklingError(
                f"cannot send {fn.__qualname__} to a process: its closure "
                f"has a variable not yet assigned") from None
    return _make_function, (marshal.dumps(fn.__code__), names, fn.__name__,
                            fn.__qualname__, fn.__module__, fn.__defaults__,
                            fn.__kwdefaults__, closure)


def _by_reference(fn):
    """True when pickle can send fn by module and qualified name and the
    receiver gets the same function."""
    mod = fn.__module__
    if not isinstance(mod, str) or mod == "__main__" \
            or "<locals>" in fn.__qualname__:
        return False
    obj = sys.modules.get(mod)
    for part in fn.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj is fn


class Outbox:
    """What one message carries besides its pickle: the fds, and the arrays
    it sent (kept alive until the reply, so that their blocks outlive the
    receiver's use of them)."""

    def __init__(self, known=None):
        self.fds = []
        self.fd_index = {}      # fd -> index in fds
        self.sent = {}          # block key -> the SharedArray sent
        self.fd_keys = {}       # key -> frozen, of the blocks sent as fds
        self.known = known or {}  # receiver's block key -> (origin key, delta)


class Pickler(pickle.Pickler):
    def __init__(self, file, box):
        super().__init__(file, 5)
        self._box = box

    def reducer_override(self, obj):
        if type(obj) is types.FunctionType and not _by_reference(obj):
            return _reduce_function(obj)
        if type(obj) is types.ModuleType:
            return importlib.import_module, (obj.__name__,)
        return NotImplemented

    def persistent_id(self, obj):
        if type(obj) is not _SharedArray:
            return None
        box = self._box
        fd, nbytes, off, length, stride, code, frozen, key = \
            _core._shared_export(obj)
        origin = box.known.get(key)
        if origin is not None:  # the receiver's own block, coming back
            okey, delta = origin
            return ("ref", okey, off + delta, length, stride, code)
        box.sent.setdefault(key, obj)
        if fd >= 0:
            i = box.fd_index.get(fd)
            if i is None:
                if len(box.fds) >= _MAX_FDS:
                    raise ValueError(f"a message can carry at most {_MAX_FDS}"
                                     " large SharedArray blocks")
                i = box.fd_index[fd] = len(box.fds)
                box.fds.append(fd)
            box.fd_keys[key] = bool(frozen)
            return ("fd", i, nbytes, off, length, stride, code, frozen, key)
        lo, hi = _span(off, length, stride, _itemsize(obj))
        data = _core._shared_read(obj, lo, hi)
        return ("copy", data, lo, off - lo, length, stride, code, frozen, key)


def _itemsize(a):
    return a.itemsize


def _span(off, length, stride, itemsize):
    """Bytes [lo, hi) of the block that a view touches."""
    if length == 0:
        return off, off
    last = off + (length - 1) * stride
    return min(off, last), max(off, last) + itemsize


class Inbox:
    """What decoding one message made: the arrays it mapped, so that the
    reply can name them (known) and copy small ones back (copies)."""

    def __init__(self, fds, sent=None, cache=None):
        self.fds = fds
        self.cache = cache      # a process worker's multigil._mapcache.Cache
        self.sent = sent or {}  # for a reply: our block key -> our array
        self.mapped = {}        # (sender's) key -> our first array over it
        self.known = {}         # our block key -> (sender's key, delta)
        self.copies = []        # (array, sender's key, lo, original bytes)


class Unpickler(pickle.Unpickler):
    def __init__(self, file, box):
        super().__init__(file)
        self._box = box

    def persistent_load(self, pid):
        box = self._box
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"bad SharedArray reference {pid!r}")
        kind = pid[0]
        if kind == "ref" and len(pid) == 6:
            _, okey, off, length, stride, code = pid
            mine = box.sent.get(okey)
            if mine is None:
                raise pickle.UnpicklingError(
                    "a SharedArray reference names a block this side did "
                    "not send")
            frozen = bool(mine.readonly)
            return _core._shared_import(mine, 0, off, length, stride, code,
                                        frozen)
        if kind == "fd" and len(pid) == 9:
            _, i, nbytes, off, length, stride, code, frozen, key = pid
            first = box.mapped.get(key)
            if first is None and box.cache is not None:
                first = box.cache.get(key, bool(frozen))
                if first is not None:
                    box.mapped[key] = first
                    box.known[_core._shared_export(first)[7]] = (key, 0)
            if first is not None:
                return _core._shared_import(first, 0, off, length, stride,
                                            code, frozen)
            if not (isinstance(i, int) and 0 <= i < len(box.fds)):
                raise pickle.UnpicklingError("SharedArray fd index out of "
                                             "range")
            a = _core._shared_import(box.fds[i], nbytes, off, length, stride,
                                     code, frozen)
            box.mapped[key] = a
            box.known[_core._shared_export(a)[7]] = (key, 0)
            if box.cache is not None:
                box.cache.put(key, bool(frozen), a)
            return a
        if kind == "copy" and len(pid) == 9:
            _, data, lo, off, length, stride, code, frozen, key = pid
            a = _core._shared_import(data, 0, off, length, stride, code,
                                     frozen)
            box.known[_core._shared_export(a)[7]] = (key, lo)
            if not frozen:
                box.copies.append((a, key, lo, data))
            return a
        raise pickle.UnpicklingError(f"bad SharedArray reference {kind!r}")


def changed_copies(inbox):
    """[(sender's key, lo, bytes)] for the small arrays a task changed."""
    out = []
    for a, key, lo, data in inbox.copies:
        now = _core._shared_read(a, 0, len(data))
        if now != data:
            out.append((key, lo, now))
    return out


def apply_copies(sent, copies):
    """Writes back what a process task changed in small arrays."""
    for key, lo, data in copies:
        a = sent.get(key)
        if a is None or a.readonly:
            continue
        _core._shared_write(a, lo, data)


def encode(obj, known=None):
    """(payload bytes, Outbox) for obj."""
    box = Outbox(known)
    f = io.BytesIO()
    Pickler(f, box).dump(obj)
    return f.getvalue(), box


def decode(payload, fds, sent=None, cache=None):
    """(obj, Inbox) from a payload and its fds (closed here: the arrays
    hold their own dups); cache: a process worker's mappings to reuse."""
    box = Inbox(fds, sent, cache)
    try:
        obj = Unpickler(io.BytesIO(payload), box).load()
    finally:
        for fd in fds:
            _close(fd)
    return obj, box


def _close(fd):
    import os
    try:
        os.close(fd)
    except OSError:
        pass


def send(sock, payload, fds):
    head = _HEADER.pack(len(payload), len(fds))
    if fds:
        socket.send_fds(sock, [head], fds)
    else:
        sock.sendall(head)
    sock.sendall(payload)


def recv(sock):
    """(payload, fds), or None at end of stream."""
    head, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, _MAX_FDS)
    if not head:
        for fd in fds:
            _close(fd)
        return None
    head = bytearray(head)
    while len(head) < _HEADER.size:
        more = sock.recv(_HEADER.size - len(head))
        if not more:
            return None
        head += more
    n, nfds = _HEADER.unpack(head)
    if nfds != len(fds):
        for fd in fds:
            _close(fd)
        raise ConnectionError("multigil: process message lost its fds")
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            for fd in fds:
                _close(fd)
            return None
        got += k
    return bytes(buf), fds
