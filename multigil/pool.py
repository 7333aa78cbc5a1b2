"""multigil.pool - Pool: a concurrent.futures.Executor over worker
interpreters that each own their GIL.

The engine is C (multigil._core.Pool): worker threads, the task queue,
encoding, result delivery. This module adds the executor API: argument
checks, map's batching and bounded read-ahead, broadcast, shutdown at exit.
"""
import asyncio
import atexit
import functools
import itertools
import logging
import os
import queue
import sys
import threading
import time
import weakref
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures import _base

from . import _core, _output, _progress, _stats
from ._stats import PoolStats, ProcessStats, WorkerStats

_core._pool_types()
from ._core import BrokenPool, NotShareableError  # noqa: E402

__all__ = ["Pool", "BrokenPool", "NotShareableError", "process_task",
           "PoolStats", "WorkerStats", "ProcessStats"]

_DEFAULT_SPIN_US = 50.0
_MAX_SPIN_US = 100000.0


def _spin_us_from_env():
    """MULTIGIL_SPIN_US: how long (microseconds) workers waiting for tasks
    and callers waiting for a result may spin before sleeping (a thread
    wake-up costs tens of microseconds on small virtual machines; a short
    spin often avoids it). A value that is not a finite number >= 0 is
    ignored with a warning; values above 100 ms are capped."""
    raw = os.environ.get("MULTIGIL_SPIN_US")
    if raw is None:
        return _DEFAULT_SPIN_US
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (0.0 <= value < float("inf")):
        import warnings
        warnings.warn(f"MULTIGIL_SPIN_US={raw!r} is not a finite number "
                      f">= 0; using {_DEFAULT_SPIN_US:g}", RuntimeWarning,
                      stacklevel=3)
        return _DEFAULT_SPIN_US
    return min(value, _MAX_SPIN_US)
# Auto-chunking: aim for this many chunks per worker, within these sizes.
_CHUNKS_PER_WORKER = 4
_MAX_AUTO_CHUNK = 8192
# map() without buffersize keeps at most this many chunks per worker encoded
# and unfinished; each chunk that finishes encodes the next.
_AHEAD_PER_WORKER = 2
# ... and beyond one chunk per worker, encodes the next only while the
# encoded bytes waiting in the queue, with one more chunk (as big as the
# biggest so far), stay within this (big chunks: none waits encoded).
_AHEAD_BYTES = 1 << 20

# Where the stdlib executors report a failed initializer.
LOGGER = logging.getLogger("concurrent.futures")

_pool_ids = itertools.count()
_hooks_lock = threading.Lock()
_hooks_installed = False
# Set when this interpreter's exit hook starts: no new pools after it.
_exiting = False


class _Future(Future):
    """A Future whose cancel() and running() ask the C task, and whose
    result() spins briefly before sleeping."""

    # The Pool (not only its engine): a Future keeps its Pool alive, so the
    # exit hook, which knows Pools, still finds a pool whose only remaining
    # reference is a Future and ends its workers before finalization.
    _mg_pool = None  # multigil.Pool
    _mg_task = None  # task handle

    def cancel(self):
        task = self._mg_task
        if task is not None and not self._mg_pool._c.cancel(task):
            return False
        if not super().cancel():
            return False
        # No worker will ever take the task: tell wait() and as_completed()
        # now, as an executor does when it skips a cancelled work item.
        with self._condition:
            if self._state == _base.CANCELLED:
                self.set_running_or_notify_cancel()
        return True

    def running(self):
        task = self._mg_task
        if task is not None and self._state == _base.PENDING:
            return self._mg_pool._c.started(task)
        return super().running()

    def result(self, timeout=None):
        if (self._state == _base.PENDING and self._mg_pool is not None
                and (timeout is None or timeout > 0)):
            self._mg_pool._c.spin()
        return super().result(timeout)

    def exception(self, timeout=None):
        if (self._state == _base.PENDING and self._mg_pool is not None
                and (timeout is None or timeout > 0)):
            self._mg_pool._c.spin()
        return super().exception(timeout)

    # The engine completes a future through these two methods (on the
    # worker's thread). With fallback="process" a task keeps what it needs
    # to run again (_mg_rerun) until then: a task that an interpreter
    # refused for a module that cannot load there goes to a process worker
    # instead of failing (Pool._refused).
    def set_exception(self, exception):
        rerun = self.__dict__.pop("_mg_rerun", None)
        if rerun is not None:
            try:
                if self._mg_pool._refused(self, rerun, exception):
                    return
            except Exception as e:  # noqa: BLE001 - keep the task's error
                exception.add_note(f"multigil: could not re-run it in a "
                                   f"process: {e!r}")
        super().set_exception(exception)

    def set_result(self, result):
        rerun = self.__dict__.pop("_mg_rerun", None)
        if rerun is not None and rerun[0] == "chunk" \
                and type(result) is tuple and len(result) == 2 \
                and result[1] is not None:
            self._mg_pool._refused(self, rerun, result[1], running=True)
        super().set_result(result)


class _CountingFuture(_Future):
    """A map chunk's future when progress is shown: notes how many items
    finished (its values) before its waiters wake and take them."""

    _mg_items = 0

    def set_result(self, result):
        if type(result) is tuple and len(result) == 2 \
                and type(result[0]) is list:
            self._mg_items = len(result[0])
        super().set_result(result)


def process_task(fn):
    """Decorator: the pool runs fn in its process workers, never in a
    worker interpreter (for functions that need NumPy, pandas or another
    module that cannot load in a subinterpreter)."""
    _check_function(fn)
    try:
        fn._mg_process = True
    except AttributeError:
        raise TypeError(f"process_task() needs a function, not "
                        f"{type(fn).__name__}") from None
    return fn


def _route_key(fn):
    """What the pool remembers a function's route by: its code object
    (a lambda or a partial made anew for each call still matches), else
    the callable itself; None when that is not hashable."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    key = getattr(fn, "__code__", fn)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _fn_name(fn):
    while isinstance(fn, functools.partial):
        fn = fn.func
    mod = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{mod}.{name}" if mod else name


def _default_workers():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _check_function(fn, what="function"):
    """Raise TypeError now for something that is not callable. Whether fn
    can cross to a worker (by name, or as code) is decided when the task is
    encoded, at submit, which raises NotShareableError."""
    if not callable(fn):
        raise TypeError(f"{what} must be callable, not {type(fn).__name__}")


def _absolute_sys_path():
    cwd = os.getcwd()
    out = []
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        out.append(os.path.join(cwd, entry) if not os.path.isabs(entry)
                   else entry)
    return out


def _known_length(iterables):
    n = None
    for it in iterables:
        try:
            k = len(it)
        except TypeError:
            return None
        n = k if n is None else min(n, k)
    return n


def _auto_chunksize(n, workers):
    if n <= 0:
        return 1
    size = -(-n // (workers * _CHUNKS_PER_WORKER))
    return max(1, min(size, _MAX_AUTO_CHUNK))


def _snapshot(iterables):
    """map's input, read now as Executor.map reads it: returns (n, take),
    take(a, b) giving items a..b-1 (tuples for several iterables) as a list,
    once each, from any thread: ranges are sliced (no user code runs),
    anything else is read into a list now and each item dropped from it
    once taken."""
    if all(type(it) is range for it in iterables):
        n = min((len(it) for it in iterables), default=0)
        if len(iterables) == 1:
            return n, lambda a, b: list(iterables[0][a:b])
        return n, lambda a, b: list(zip(*(it[a:b] for it in iterables)))
    seq = list(iterables[0] if len(iterables) == 1 else zip(*iterables))

    def take(a, b):
        chunk = seq[a:b]
        seq[a:b] = [None] * len(chunk)
        return chunk
    return len(seq), take


def _map_input(iterables, buffersize, n=None):
    """(n, take, source) of map's input: without buffersize a snapshot
    (n, take), read now; with it, the length if known and an iterator of
    the items, read later."""
    if buffersize is None:
        n, take = _snapshot(iterables)
        return n, take, None
    n = _known_length(iterables) if n is None else n
    source = iter(iterables[0]) if len(iterables) == 1 else zip(*iterables)
    return n, None, source


def _check_map_args(chunksize, buffersize, timeout, progress=None):
    _progress.check(progress)
    if chunksize is not None:
        if not isinstance(chunksize, int) or isinstance(chunksize, bool):
            raise TypeError("chunksize must be an integer or None")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
    if buffersize is not None:
        if not isinstance(buffersize, int) or isinstance(buffersize, bool):
            raise TypeError("buffersize must be an integer or None")
        if buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
    if timeout is not None and not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number or None")


class _Failed:
    """A chunk of a map() that could not be read or sent: its exception is
    raised when the consumer reaches it."""
    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


class _MapFeed:
    """Submits the chunks of one map() call and hands their outcomes to the
    result generator (ordered() or unordered()).

    Eager (no buffersize; Executor.map's contract: all the work runs whether
    or not results are consumed): the input is a snapshot (take) and at most
    `ahead` chunks are encoded and unfinished at a time. The consumer, when
    it is about to wait, and each chunk's done-callback (on the thread that
    completed it) submit more up to that bound, so the work goes on without
    the consumer while memory holds a few encoded chunks per worker, not the
    whole input encoded. Shutdown first submits what is left (flush).
    Lazy (buffersize): the consumer reads the input and submits one chunk
    per chunk it consumes, as Executor.map does with buffersize.

    lock guards the counters, slots and flags; it is never held while user
    code runs (reading the input, encoding, callbacks of cancel()). Only the
    consumer and flush wait, on cond (the same lock), and only for a chunk
    that another thread is encoding.
    """

    def __init__(self, pool, fn, star, chunksize, ordered, take, n, source,
                 progress=None, done_q=None):
        self.pool, self.fn, self.star = pool, fn, star
        self.progress = progress  # _progress.Progress or None
        self.chunksize = chunksize
        self.workers = pool.workers
        self.chunk_bytes = 0      # biggest encoded chunk so far
        self.take = take          # eager: take(a, b) -> list of items
        self.source = source      # lazy: iterator of items
        self.eager = take is not None
        # Chunks in all; for the lazy mode, known once the input ends.
        self.nchunks = -(-n // chunksize) if self.eager else None
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.waiters = 0          # threads in cond.wait()
        self.claimed = 0          # chunks taken for submission, in order
        self.busy = 0             # claimed, not yet in slots
        self.ahead = 0            # eager: most chunks claimed, unfinished
        self.inflight = 0         # eager: chunks claimed and unfinished
        self.slots = {}           # index -> future or _Failed, until consumed
        self.stopped = False      # claim no more chunks
        self.cancelled = False    # cancel the futures still to come
        # Unordered: (index, future) as chunks finish; anything with put().
        self.done_q = None if ordered else (
            done_q if done_q is not None else queue.SimpleQueue())

    # ---- producing (any thread) ----

    def start(self, ahead):
        """Submits the first chunks (ahead of them); raises, as
        Executor.map does at once, if one of them cannot be read or sent."""
        try:
            self._start(ahead)
        except BaseException:
            self.finish()
            raise

    def _start(self, ahead):
        if self.eager:
            self.pool.__dict__.setdefault("_mg_feeds", {})[id(self)] = self
            self.ahead = ahead
            self._feed(self._claim(ahead))  # one per worker: sizes unknown
            self._top_up()                  # more while they are small
            with self.lock:
                mine = range(self.claimed)
        else:
            mine = []
            for _ in range(ahead):
                i = self._claim(1)
                mine.extend(i)
                if not self._feed(i):
                    break
        with self.lock:  # only these: later ones fail at their position
            failed = [self.slots[i] for i in mine
                      if isinstance(self.slots.get(i), _Failed)]
        if failed:
            raise failed[0].exc

    def _claim(self, most):
        """Takes up to `most` chunk indices to submit (for the eager mode,
        within the bound); returns a range, empty when none is left."""
        with self.lock:
            k = most
            if not self.stopped and self.eager:
                k = min(k, self.nchunks - self.claimed,
                        self.ahead - self.inflight)
                if self.inflight + k > self.workers:
                    # Beyond one chunk per worker, one at a time and only
                    # while few encoded bytes wait for a worker.
                    room = 0 < self.chunk_bytes and (
                        self.pool._c.queued_bytes + self.chunk_bytes
                        <= _AHEAD_BYTES)
                    k = min(k, max(0, self.workers - self.inflight) + room)
                self.inflight += max(k, 0)
            if self.stopped or k <= 0:
                if self.stopped or self.claimed == self.nchunks:
                    self.pool.__dict__.get("_mg_feeds", {}).pop(id(self),
                                                               None)
                return range(0)
            i = self.claimed
            self.claimed += k
            self.busy += k
            return range(i, i + k)

    def _top_up(self):
        """Eager: submits chunks while fewer than `ahead` are unfinished."""
        while self.inflight < self.ahead:  # a hint; _claim decides
            if not self._feed(self._claim(self.ahead)):
                return

    def _feed(self, indices):
        """Reads and submits the claimed chunks; False if there were none,
        or a lazy input ended. After a chunk that fails, the rest of the
        claim is given back (nothing more is submitted)."""
        for n, i in enumerate(indices, 1):
            try:
                if self.eager:
                    a = i * self.chunksize
                    items = self.take(a, a + self.chunksize)
                else:
                    items = list(itertools.islice(self.source,
                                                  self.chunksize)) or None
                f = None if items is None else self.pool._submit_chunk(
                    self.fn, items, self.star,
                    functools.partial(self._done, i),
                    self.progress is not None)
            except BaseException as e:
                self._publish(i, _Failed(e))
                self._give_back(len(indices) - n)
                if not isinstance(e, Exception):
                    raise
                return True
            del items
            if f is not None:
                try:
                    nbytes = self.pool._c.encoded_bytes(f._mg_task)
                except (TypeError, ValueError):
                    nbytes = 0  # a task of the process workers
                if nbytes > self.chunk_bytes:
                    self.chunk_bytes = nbytes  # a hint: races are harmless
            self._publish(i, f)
            if f is None:
                return False
        return len(indices) > 0

    def _give_back(self, k):
        with self.lock:
            self.busy -= k
            if self.eager:
                self.inflight -= k
            if self.waiters:
                self.cond.notify_all()

    def _publish(self, i, f):
        with self.lock:
            self.busy -= 1
            if f is None:  # the lazy input ended before chunk i
                self.nchunks = self.claimed = i
            else:
                self.slots[i] = f
            failed = isinstance(f, _Failed)
            if failed:
                self.stopped = True
            cancel = self.cancelled and f is not None and not failed
            if self.waiters:
                self.cond.notify_all()
        if failed and self.done_q is not None:
            self.done_q.put((i, f))
        if cancel:
            f.cancel()

    def _done(self, i, f):
        # Done-callback of chunk i's future: runs on the thread that
        # completed it (a worker's, or one that cancelled it). Never blocks.
        if self.done_q is not None:
            self.done_q.put((i, f))
        if self.eager:
            with self.lock:
                self.inflight -= 1
            self._top_up()
        if self.progress is not None:
            self.progress.add(f._mg_items)

    def flush(self, cancel):
        """For shutdown: submit every chunk left now (their tasks then run
        like queued ones), or with cancel drop them."""
        if cancel:
            self._cancel()
            return
        with self.lock:
            self.ahead = self.nchunks  # no bound from now on
        self._top_up()
        with self.cond:  # chunks other threads are still encoding
            while self.busy:
                self._wait(None)

    def _cancel(self):
        """Stops submitting and cancels the chunks not yet finished."""
        with self.lock:
            self.stopped = self.cancelled = True
            futures = [f for f in self.slots.values()
                       if not isinstance(f, _Failed)]
            if self.waiters:
                self.cond.notify_all()
        self.pool.__dict__.get("_mg_feeds", {}).pop(id(self), None)
        for f in futures:
            f.cancel()
        if self.done_q is not None:
            self.done_q.put((None, _Failed(CancelledError())))

    def finish(self):
        """The consumer is done (exhausted, raised, closed): cancel what
        is left, close the progress bar."""
        self._cancel()
        if self.progress is not None:
            self.progress.close()

    def _wait(self, end_time):
        # cond held
        self.waiters += 1
        try:
            return self.cond.wait(_remaining(end_time))
        finally:
            self.waiters -= 1

    # ---- consuming (the thread iterating the results) ----

    def _next_feed(self):
        # Lazy: one chunk per chunk consumed, read by the consumer. Eager:
        # the consumer, about to wait, encodes what the bound allows, which
        # spares the workers (whose done-callbacks top up otherwise).
        if self.eager:
            self._top_up()
        else:
            self._feed(self._claim(1))

    def _slot(self, i, end_time):
        """Chunk i's future (or _Failed) once submitted; None past the end."""
        f = self.slots.get(i)
        if f is not None:
            return f
        with self.cond:
            while i not in self.slots:
                if self.nchunks is not None and i >= self.nchunks:
                    return None
                if self.stopped and i >= self.claimed:
                    raise CancelledError()
                if not self._wait(end_time):
                    raise TimeoutError()
            return self.slots[i]

    @staticmethod
    def _outcome(f, end_time):
        if isinstance(f, _Failed):
            raise f.exc
        return f.result(_remaining(end_time))

    def ordered(self, end_time):
        i = 0
        try:
            while True:
                self._next_feed()
                f = self._slot(i, end_time)
                if f is None:
                    return
                outcome = self._outcome(f, end_time)
                del f, self.slots[i]
                yield from _drain(*outcome)
                i += 1
        finally:
            self.finish()

    def unordered(self, end_time):
        received = 0
        try:
            while self.nchunks is None or received < self.nchunks:
                try:
                    i, f = self.done_q.get(timeout=_remaining(end_time))
                except queue.Empty:
                    raise TimeoutError() from None
                received += 1
                self._next_feed()
                outcome = self._outcome(f, end_time)
                del f
                self.slots.pop(i, None)
                yield from _drain(*outcome)
        finally:
            self.finish()


def _drain(values, exc):
    """Yields a chunk's values, then raises its exception if any. Pops as
    it goes: no reference to a yielded value survives here, nor in the
    chunk's future (which holds this same list)."""
    values.reverse()
    while values:
        yield values.pop()
    if exc is not None:
        raise exc


def _remaining(end_time):
    """Seconds left until end_time (None: no limit), at least 0."""
    return None if end_time is None else max(0.0, end_time - time.monotonic())


class Pool(Executor):
    """A pool of worker interpreters, each with its own GIL, behind the
    concurrent.futures.Executor API.

    Pool(workers=None, *, max_workers=None, initializer=None, initargs=(),
         max_tasks_per_worker=None, name=None, fallback="process",
         process_workers=None, output="forward")

    workers (or max_workers): number of worker interpreters, each on its
    own OS thread; default: the CPUs this process may use. initializer
    (with initargs) runs once in each worker interpreter; if it raises the
    pool is broken. max_tasks_per_worker: a worker replaces its interpreter
    after that many tasks. Workers see sys.path, the working directory and
    the environment as they are when the pool is created.

    fallback="process" (the default): a task that a worker interpreter
    refuses because a module it needs cannot load in a subinterpreter
    runs in a process worker instead, and later calls of that function go
    there directly (docs/fallback.md); fallback=None raises the
    ImportError. process_workers: at most that many process workers,
    started when first needed (default: workers).

    output="forward" (the default): what tasks print to sys.stdout and
    sys.stderr reaches this interpreter's sys.stdout / sys.stderr as whole
    lines tagged "[mg-<name>-w<i>] ", and their logging records reach its
    logging (docs/pool.md, "Output"); output=None (or "inherit"): workers
    write straight to the process's file descriptors 1 and 2.
    """

    def __init__(self, workers=None, *, max_workers=None, initializer=None,
                 initargs=(), max_tasks_per_worker=None, name=None,
                 fallback="process", process_workers=None,
                 output="forward"):
        if workers is not None and max_workers is not None \
                and workers != max_workers:
            raise TypeError("pass workers or max_workers, not both")
        n = workers if workers is not None else max_workers
        if n is None:
            n = _default_workers()
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(
                f"workers must be an integer, not {type(n).__name__}")
        if n <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None:
            _check_function(initializer, "initializer")
        if not isinstance(initargs, tuple):
            initargs = tuple(initargs)
        if max_tasks_per_worker is not None:
            if not isinstance(max_tasks_per_worker, int) \
                    or isinstance(max_tasks_per_worker, bool):
                raise TypeError("max_tasks_per_worker must be an integer "
                                "or None")
            if max_tasks_per_worker < 1:
                raise ValueError("max_tasks_per_worker must be >= 1")
        if fallback not in ("process", None):
            raise ValueError(f"fallback must be 'process' or None, not "
                             f"{fallback!r}")
        if output not in ("forward", "inherit", None):
            raise ValueError(f"output must be 'forward', 'inherit' or None, "
                             f"not {output!r}")
        forward = output == "forward"
        if process_workers is None:
            process_workers = n
        if not isinstance(process_workers, int) \
                or isinstance(process_workers, bool) or process_workers < 1:
            raise ValueError("process_workers must be an integer >= 1")
        self._fallback = fallback
        self._nprocs = process_workers
        self._procs = None         # multigil._fallback.ProcessWorkers
        self._routes = {}          # route key -> (name, why)
        self._routes_lock = threading.Lock()  # _routes and _reruns writes
        self._reruns = 0
        self._sys_path = _absolute_sys_path()
        self._name = name if name is not None else f"pool{next(_pool_ids)}"
        _install_hooks()
        if _exiting:
            raise RuntimeError("cannot create a Pool after interpreter "
                               "shutdown has begun")
        self._shutdown_lock = threading.Lock()
        self._closed = False
        self._c = _core.Pool(n, self._sys_path, initializer, initargs,
                             max_tasks_per_worker or 0, _spin_us_from_env(),
                             str(self._name), forward,
                             _output.worker_level() if forward else 30)

    def __repr__(self):
        state = "closed" if self._c.closed else (
            "broken" if self._c.broken else "running")
        return (f"<multigil.Pool {self._name!r} workers={self.workers} "
                f"{state}>")

    @property
    def workers(self):
        """Number of worker interpreters."""
        return self._c.workers

    @property
    def broken(self):
        """Why the pool is broken (a str), or None."""
        return self._c.broken

    @property
    def _broken(self):
        # What the stdlib executors expose (and their tests read): truthy
        # once broken, the reason.
        self._log_broken()
        return self._c.broken

    def _log_broken(self):
        """Logs, once, why the pool broke, on the logger and with the words
        the stdlib executors use for a failed initializer (the traceback
        comes from the worker, as text)."""
        why = self._c.broken
        if why is not None:
            first = object()
            if self.__dict__.setdefault("_mg_logged_broken", first) is first:
                LOGGER.critical("Exception in initializer:\n%s", why)

    def submit(self, fn, /, *args, **kwargs):
        """Run fn(*args, **kwargs) in a worker; returns a Future."""
        _check_function(fn)
        if self._to_process(fn):
            return self.submit_process(fn, *args, **kwargs)
        f = _Future()
        f._mg_pool = self
        if self._fallback is not None:
            f._mg_rerun = ("call", fn, args, kwargs)
        try:
            f._mg_task = self._c.submit(f, fn, args, kwargs or None)
        except BrokenPool:
            self._log_broken()
            raise
        return f

    def submit_process(self, fn, /, *args, **kwargs):
        """Run fn(*args, **kwargs) in one of the pool's process workers
        (started when first needed); returns a Future. SharedArrays in the
        arguments cross as shared memory, not copies."""
        _check_function(fn)
        f = _Future()
        f._mg_pool = self
        self._process_workers().submit(f, ("call", fn, args, kwargs),
                                       _fn_name(fn))
        return f

    # ---- process fallback ----

    def _to_process(self, fn):
        if getattr(fn, "_mg_process", False):
            return True
        if not self._routes:
            return False
        key = _route_key(fn)
        return key is not None and key in self._routes

    def _process_workers(self, rerun=False):
        # A refused task queued before shutdown still reruns.
        if self._closed and not rerun:
            raise RuntimeError("cannot schedule new futures after shutdown")
        procs = self._procs
        if procs is None:
            with self._shutdown_lock:
                if self._procs is None:
                    from . import _fallback
                    procs = _fallback.ProcessWorkers(
                        self._name, self._nprocs, self._sys_path)
                    # A pool dropped without shutdown ends its processes.
                    weakref.finalize(self, procs.shutdown, False)
                    self._procs = procs
                procs = self._procs
        return procs

    def _refused(self, fut, rerun, exc, running=False):
        """A task fut (kind, fn, a, b) failed with exc. When exc is an
        interpreter's refusal of a module: remember that fn runs in
        processes, and, if the refusal came while the task was decoded
        (fn never ran), run it in a process worker now and return True.
        Otherwise note on exc why it was not re-run. Runs on a worker's
        thread: only queues work."""
        from . import _fallback
        why = _fallback.refusal(exc)
        if why is None:
            return False
        fn = rerun[1]
        self._learn(fn, why)
        if not running and _fallback.refused_before_running(exc):
            try:
                self._process_workers(True).submit(fut, rerun, _fn_name(fn),
                                                   started=True)
            except RuntimeError:
                return False  # shut down meanwhile: the refusal stands
            with self._routes_lock:
                self._reruns += 1
            return True
        exc.add_note(
            f"multigil: {_fn_name(fn)} was not re-run in a process: the "
            f"import failed while it was running, after it may have had "
            f"effects. Its later calls run in process workers; to re-run "
            f"automatically, import the module at the top of the "
            f"function's module, or decorate it with @multigil.process_task")
        return False

    def _learn(self, fn, why):
        key = _route_key(fn)
        if key is None:
            return
        name = _fn_name(fn)
        with self._routes_lock:
            if key in self._routes:
                return
            self._routes[key] = (name, why)
        logging.getLogger("multigil").warning(
            "multigil pool %r: %s runs in process workers from now on: %s",
            self._name, name, why)

    def fallback_stats(self):
        """Where tasks run and why: {"process_functions": {name: why},
        "process_tasks": tasks finished in process workers, "reruns":
        tasks an interpreter refused and a process ran, "process_workers":
        processes alive, "processes_started": how many were started}."""
        procs = self._procs
        with self._routes_lock:
            routes = dict(self._routes.values())
        return {
            "fallback": self._fallback,
            "process_functions": routes,
            "process_tasks": procs.tasks if procs else 0,
            "reruns": self._reruns,
            "process_workers": procs.alive() if procs else 0,
            "processes_started": len(procs.pids) if procs else 0,
        }

    def stats(self):
        """A snapshot of the pool's counters: a PoolStats (per worker:
        tasks done, failed, busy seconds, running now; tasks queued; the
        process workers' counts). Works after shutdown too."""
        return _stats.collect(self._c, self._procs)

    async def arun(self, fn, /, *args, **kwargs):
        """Await fn(*args, **kwargs) run in a worker (asyncio)."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def _submit_chunk(self, fn, items, star, done=None, counted=False):
        f = _CountingFuture() if counted else _Future()
        f._mg_pool = self
        if done is not None:
            f.add_done_callback(done)  # before the task can finish
        if self._to_process(fn):
            self._process_workers().submit(f, ("chunk", fn, items, star),
                                           _fn_name(fn))
            return f
        if self._fallback is not None:
            f._mg_rerun = ("chunk", fn, items, star)
        f._mg_task = self._c.submit_chunk(f, fn, items, star)
        return f

    def map(self, fn, *iterables, timeout=None, chunksize=None,
            ordered=True, buffersize=None, progress=None):
        """Like Executor.map: fn over the zipped iterables, results in order
        (or as they finish with ordered=False). Items travel in chunks; the
        default chunk size spreads the work over about four chunks per
        worker. Without buffersize the input is read now and all of it is
        processed whether or not results are consumed, with only a few
        chunks per worker encoded at a time; buffersize bounds how many
        chunks are in flight ahead of the consumer, and the input is read
        only as results are consumed, so an endless iterable uses bounded
        memory. progress: True (a bar on stderr when it is a terminal),
        "always", a callable (done, total) or a tqdm bar (docs/pool.md)."""
        _check_function(fn)
        _check_map_args(chunksize, buffersize, timeout, progress)
        star = len(iterables) != 1
        return self._map(fn, iterables, star, timeout, chunksize, ordered,
                         buffersize, progress)

    def starmap(self, fn, iterable, *, timeout=None, chunksize=None,
                ordered=True, buffersize=None, progress=None):
        """map() for argument tuples: fn(*args) for each args in iterable."""
        _check_function(fn)
        _check_map_args(chunksize, buffersize, timeout, progress)
        n = _known_length((iterable,))
        items = (a if type(a) is tuple else tuple(a) for a in iterable)
        return self._map(fn, (items,), True, timeout, chunksize, ordered,
                         buffersize, progress, n)

    def amap(self, fn, *iterables, chunksize=None, ordered=True,
             buffersize=None, timeout=None, progress=None):
        """map() for asyncio: an async iterator of the results, with the
        same options. The input (iterables, or async iterables) is read
        and chunks are encoded without blocking the event loop; breaking
        off, aclose(), or cancelling the consuming task cancels the rest."""
        _check_function(fn)
        _check_map_args(chunksize, buffersize, timeout, progress)
        from ._amap import AsyncMap
        return AsyncMap(self, fn, iterables, len(iterables) != 1, timeout,
                        chunksize, ordered, buffersize, progress)

    def _map(self, fn, iterables, star, timeout, chunksize, ordered,
             buffersize, progress, n=None):
        end_time = None if timeout is None else timeout + time.monotonic()
        n, take, source = _map_input(iterables, buffersize, n)
        feed = self._map_feed(fn, star, chunksize, ordered, take, n, source,
                              progress)
        feed.start(buffersize or _AHEAD_PER_WORKER * self.workers)
        return feed.ordered(end_time) if ordered else feed.unordered(end_time)

    def _map_feed(self, fn, star, chunksize, ordered, take, n, source,
                  progress, done_q=None):
        """The _MapFeed of one map()/amap() call, not started."""
        if chunksize is None:
            # Without a length, and reading lazily, one item per chunk: each
            # of the buffersize chunks read ahead is one item, as in
            # Executor.map.
            chunksize = 1 if n is None else _auto_chunksize(n, self.workers)
        return _MapFeed(self, fn, star, chunksize, ordered, take, n, source,
                        _progress.make(progress, n), done_q)

    def _flush_maps(self, cancel):
        """First step of shutdown: submit now every chunk that running map()
        calls have not yet encoded, so that they finish as Executor.map's
        tasks do; with cancel, drop them instead (their results raise
        CancelledError)."""
        for feed in self.__dict__.get("_mg_feeds", {}).copy().values():
            feed.flush(cancel)

    def broadcast(self, fn, /, *args, **kwargs):
        """Run fn(*args, **kwargs) once on every worker (to warm caches, set
        up state); returns the list of results, by worker index."""
        _check_function(fn)
        if self._c.on_worker_thread():
            raise RuntimeError(
                "broadcast() cannot run on one of the pool's own workers "
                "(a done-callback runs on the worker that completed the "
                "future, and broadcast needs that worker too): call it "
                "from another thread")
        if self._to_process(fn):
            return self._broadcast_process(fn, args, kwargs)
        futures = []
        for i in range(self.workers):
            f = _Future()
            f._mg_pool = self
            f._mg_task = self._c.submit_to(i, f, fn, args, kwargs or None)
            futures.append(f)
        errors = [f.exception() for f in futures]  # waits for all
        if not any(errors):
            return [f.result() for f in futures]
        if self._broadcast_refused(fn, errors):
            return self._broadcast_process(fn, args, kwargs)
        return [f.result() for f in futures]  # raises the first error

    def _broadcast_refused(self, fn, errors):
        """True when every worker interpreter refused fn's module while
        decoding it (so fn ran nowhere): it then runs on the process
        workers. A refusal learns the route in any case."""
        if self._fallback is None:
            return False
        from . import _fallback
        whys = [e is not None and _fallback.refusal(e) for e in errors]
        if not any(whys):
            return False
        self._learn(fn, next(w for w in whys if w))
        return all(whys) and all(_fallback.refused_before_running(e)
                                 for e in errors)

    def _broadcast_process(self, fn, args, kwargs):
        """broadcast() of a function that runs in processes: once on each
        of the pool's process workers (all started now)."""
        procs = self._process_workers()
        futures = []
        for _ in range(procs.size):
            f = _Future()
            f._mg_pool = self
            futures.append(f)
        procs.broadcast(futures, ("call", fn, args, kwargs), _fn_name(fn))
        return [f.result() for f in futures]

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stop accepting tasks. Queued tasks still run unless
        cancel_futures is true; with wait, return once every worker
        interpreter has ended (safe from several threads at once). Ctrl-C
        interrupts the wait."""
        self._flush_maps(cancel_futures)
        with self._shutdown_lock:
            self._closed = True
            cancelled = self._c.close(bool(cancel_futures))
        for f in cancelled:
            f.cancel()
        if wait:
            self._c.join(None)
        # After the interpreters: a task they refused may still be going
        # to a process worker until then.
        procs = self._procs
        if procs is not None:
            procs.shutdown(wait, cancel_futures)


# ---- the exit path: every pool of this interpreter ends before it does ----

_EXIT_NOTE_SECONDS = 5.0


def _say(msg):
    try:
        print(f"multigil: {msg}", file=sys.stderr, flush=True)
    except Exception:
        pass


def _unraisable(what, exc):
    _say(f"exit hook: {what}: {exc!r} (going on with the other pools)")


def _end_pools_at_exit():
    """atexit hook: finish queued work, as the stdlib executors do, and end
    every worker interpreter (orphaned pools included) before this
    interpreter finalizes. A Ctrl-C while waiting cancels what is queued
    and interrupts what runs; another Ctrl-C then exits at once without
    finalizing (os._exit), since finalizing with worker interpreters alive
    crashes CPython."""
    global _exiting
    _exiting = True
    engines = _core._live_pools()
    for e in engines:
        try:
            e.close(False)
        except Exception as exc:
            _unraisable(f"closing pool {e.name!r}", exc)
    try:
        for e in engines:
            try:
                e.join(None)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                _unraisable(f"joining pool {e.name!r}", exc)
    except KeyboardInterrupt:
        _stop_after_ctrl_c(engines)
    fallback = sys.modules.get("multigil._fallback")
    if fallback is not None:
        fallback.end_all_at_exit()


def _stop_after_ctrl_c(engines):
    cancelled = 0
    for e in engines:
        try:
            for f in e.close(True, False):
                f.cancel()
                cancelled += 1
        except Exception as exc:
            _unraisable(f"cancelling pool {e.name!r}", exc)
    running = sum(e.busy for e in engines)
    _say(f"Ctrl-C at exit: cancelled {cancelled} queued task(s), stopping "
         f"{running} running; Ctrl-C again exits at once")
    next_note = time.monotonic() + _EXIT_NOTE_SECONDS
    try:
        while True:
            pending = [e for e in engines if not e.done]
            if not pending:
                return
            for e in pending:
                e.interrupt()
            pending[0].join(0.2)
            if time.monotonic() >= next_note:
                names = ", ".join(repr(e.name) for e in pending)
                _say(f"still waiting for pool(s) {names}: a task is running "
                     f"C code that cannot be interrupted; Ctrl-C again "
                     f"exits at once")
                next_note = time.monotonic() + _EXIT_NOTE_SECONDS
    except KeyboardInterrupt:
        _say("exiting at once without finalizing (worker interpreters are "
             "still running)")
        os._exit(130)


def _warn_fork():
    if any(not e.closed for e in _core._live_pools()):
        print("multigil: warning: os.fork() while a multigil.Pool is open; "
              "CPython cannot fork a process that has subinterpreters "
              "(gh-101437) and the child may crash. Shut the pool down "
              "first, or use the 'spawn' or 'forkserver' start method.",
              file=sys.stderr)


# CPython 3.12 crashes later (double free at exit, or when the main
# interpreter imports them afterwards) if these modules are first imported
# inside an isolated subinterpreter; importing them in the main interpreter
# first avoids it (see shared/CAPI.md, section 6). 3.13 fixed the cause.
_PREIMPORT_312 = ("datetime", "decimal", "hashlib")


def _install_hooks():
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        if sys.version_info < (3, 13):
            import importlib
            for name in _PREIMPORT_312:
                try:
                    importlib.import_module(name)
                except ImportError:
                    pass
        # Worker interpreters must end before this one finalizes (this
        # runs in worker interpreters too, for pools created by tasks).
        atexit.register(_end_pools_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(before=_warn_fork)
        _hooks_installed = True
