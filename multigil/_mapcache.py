"""multigil._mapcache - the memfd mappings a process worker keeps between
tasks, so that a block sent again is not mapped anew (no mmap, no munmap,
and no page faults for the pages it touched before).

The pool side decides; the process worker obeys. For each process worker
the pool keeps a Mirror: for every memfd block it sent (keyed by the
block's key and its frozen flag), a private view of the block, in the
same order as the worker's Cache. The worker caches every memfd block it
is sent and drops one only when a ("drop", keys) message says so. The
pool drops an entry, before its next message and when idle (every
IDLE_S):

- when the block has no other holder in the pool's process
  (_core._shared_block_refs of its private view is 1): the caller freed
  it, and the workers' mappings are the only thing keeping its pages. The
  private views are the pool's (Views), one per block however many of its
  process workers map it, so a block mapped by several is seen freed too;
- when the block was frozen since (the worker's mapping is writable);
- beyond MAX_ENTRIES blocks, the least recently sent first.

So a cached mapping never keeps a freed block alive longer than until
the worker's next message (or IDLE_S when idle, or the end of the task it
is running); the private view keeps the block, and with it its key,
alive in the pool's process for as long as the worker maps it, so a key
never names two blocks. When the process dies, both sides are gone.

Locks: Views.lock (the pool's private views, shared by the threads that
serve its process workers), held only for dict updates, never across a
send or user code. A Mirror belongs to the thread serving its process
worker, a Cache to the process worker's one thread.
"""
import collections
import threading

from . import _core

MAX_ENTRIES = 64
IDLE_S = 0.5


class Views:
    """The pool's private views of the blocks its process workers map: one
    per block key, with how many Mirror entries hold it."""

    def __init__(self):
        self.lock = threading.Lock()
        self._views = {}  # block key -> [view, holders]

    def hold(self, key, array):
        with self.lock:
            entry = self._views.get(key)
            if entry is None:
                entry = self._views[key] = [_private_view(array), 0]
            entry[1] += 1
            return entry[0]

    def release(self, key):
        with self.lock:
            entry = self._views[key]
            entry[1] -= 1
            if entry[1] == 0:
                del self._views[key]


class Mirror:
    """The pool's record of what one process worker has mapped."""

    def __init__(self, views=None):
        self._shared = views if views is not None else Views()
        self._views = collections.OrderedDict()  # (key, frozen) -> view

    def __len__(self):
        return len(self._views)

    def clear(self):
        for key, _ in list(self._views):
            self._shared.release(key)
        self._views.clear()

    def sent(self, box):
        """After a message went out: its memfd blocks are cached there."""
        for key, frozen in box.fd_keys.items():
            k = (key, frozen)
            if k in self._views:
                self._views.move_to_end(k)
            else:
                self._views[k] = self._shared.hold(key, box.sent[key])

    def _drop(self, k, out):
        out.append(k)
        del self._views[k]
        self._shared.release(k[0])

    def drops(self, keep=()):
        """The entries to drop now (removed here), never those in keep."""
        out = []
        for k, view in list(self._views.items()):
            if k in keep:
                continue
            if _core._shared_block_refs(view) == 1 or \
                    (not k[1] and view.readonly):
                self._drop(k, out)
        extra = len(self._views) - MAX_ENTRIES
        for k in list(self._views):
            if extra <= 0:
                break
            if k not in keep:
                self._drop(k, out)
                extra -= 1
        return out


def _private_view(a):
    """An empty view of a's block, held by nobody else."""
    return _core._shared_import(a, 0, 0, 0, 1, "B", False)


class Cache:
    """A process worker's mappings: (sender's key, frozen) -> an array
    over the block (the first one this worker made)."""

    def __init__(self):
        self._arrays = {}

    def get(self, key, frozen):
        return self._arrays.get((key, frozen))

    def put(self, key, frozen, a):
        self._arrays[(key, frozen)] = a

    def drop(self, keys):
        for k in keys:
            self._arrays.pop(tuple(k), None)
