"""multigil.pool - Pool: a concurrent.futures.Executor over worker
interpreters that each own their GIL.

The engine is C (multigil._core.Pool): worker threads, the task queue,
encoding, result delivery. This module adds the executor API: argument
checks, map's batching and bounded read-ahead, broadcast, shutdown at exit.
"""
import asyncio
import atexit
import collections
import itertools
import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future
from concurrent.futures import _base
from concurrent.futures import wait as _wait_futures

from . import _core

_core._pool_types()
from ._core import BrokenPool, NotShareableError  # noqa: E402

__all__ = ["Pool", "BrokenPool", "NotShareableError"]

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
# map() over an iterable without len() looks ahead this many items per
# worker to size its chunks.
_PEEK_PER_WORKER = 1024

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


def _check_map_args(chunksize, buffersize, timeout):
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


class Pool(Executor):
    """A pool of worker interpreters, each with its own GIL, behind the
    concurrent.futures.Executor API.

    Pool(workers=None, *, max_workers=None, initializer=None, initargs=(),
         max_tasks_per_worker=None, name=None)

    workers (or max_workers): number of worker interpreters, each on its
    own OS thread; default: the CPUs this process may use. initializer
    (with initargs) runs once in each worker interpreter; if it raises the
    pool is broken. max_tasks_per_worker: a worker replaces its interpreter
    after that many tasks. Workers see sys.path, the working directory and
    the environment as they are when the pool is created.
    """

    def __init__(self, workers=None, *, max_workers=None, initializer=None,
                 initargs=(), max_tasks_per_worker=None, name=None):
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
        self._name = name if name is not None else f"pool{next(_pool_ids)}"
        _install_hooks()
        if _exiting:
            raise RuntimeError("cannot create a Pool after interpreter "
                               "shutdown has begun")
        self._shutdown_lock = threading.Lock()
        self._closed = False
        self._c = _core.Pool(n, _absolute_sys_path(), initializer, initargs,
                             max_tasks_per_worker or 0, _spin_us_from_env(),
                             str(self._name))

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

    def submit(self, fn, /, *args, **kwargs):
        """Run fn(*args, **kwargs) in a worker; returns a Future."""
        _check_function(fn)
        f = _Future()
        f._mg_pool = self
        f._mg_task = self._c.submit(f, fn, args, kwargs or None)
        return f

    async def arun(self, fn, /, *args, **kwargs):
        """Await fn(*args, **kwargs) run in a worker (asyncio)."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def _submit_chunk(self, fn, items, star):
        f = _Future()
        f._mg_pool = self
        f._mg_task = self._c.submit_chunk(f, fn, items, star)
        return f

    def map(self, fn, *iterables, timeout=None, chunksize=None,
            ordered=True, buffersize=None):
        """Like Executor.map: fn over the zipped iterables, results in order
        (or as they finish with ordered=False). Items travel in chunks; the
        default chunk size spreads the work over about four chunks per
        worker. buffersize bounds how many chunks are in flight ahead of the
        consumer, so an endless iterable uses bounded memory."""
        _check_function(fn)
        _check_map_args(chunksize, buffersize, timeout)
        if len(iterables) == 1:
            items, star = iter(iterables[0]), False
        else:
            items, star = zip(*iterables), True
        return self._map(fn, items, _known_length(iterables), star, timeout,
                         chunksize, ordered, buffersize)

    def starmap(self, fn, iterable, *, timeout=None, chunksize=None,
                ordered=True, buffersize=None):
        """map() for argument tuples: fn(*args) for each args in iterable."""
        _check_function(fn)
        _check_map_args(chunksize, buffersize, timeout)
        items = (a if type(a) is tuple else tuple(a) for a in iterable)
        return self._map(fn, items, _known_length((iterable,)), True,
                         timeout, chunksize, ordered, buffersize)

    def _map(self, fn, items, n, star, timeout, chunksize, ordered,
             buffersize):
        end_time = None if timeout is None else timeout + time.monotonic()
        if chunksize is None:
            if n is None:
                peek = _PEEK_PER_WORKER * self.workers
                head = list(itertools.islice(items, peek))
                if len(head) < peek:
                    n = len(head)
                    items = iter(head)
                else:
                    items = itertools.chain(head, items)
                    n = peek
            chunksize = _auto_chunksize(n, self.workers)
        chunks = iter(lambda: list(itertools.islice(items, chunksize)), [])
        first = chunks if buffersize is None else \
            itertools.islice(chunks, buffersize)
        # Submit now, as Executor.map does, not at the first next().
        futures = collections.deque(
            self._submit_chunk(fn, c, star) for c in first)
        more = None if buffersize is None else chunks
        if ordered:
            return self._ordered_results(fn, futures, more, star, end_time)
        return self._unordered_results(fn, futures, more, star, end_time)

    def _refill(self, fn, more, star, futures):
        if more is not None:
            chunk = next(more, None)
            if chunk is not None:
                futures.append(self._submit_chunk(fn, chunk, star))

    def _ordered_results(self, fn, futures, more, star, end_time):
        try:
            while futures:
                f = futures.popleft()
                if end_time is None:
                    values, exc = f.result()
                else:
                    values, exc = f.result(end_time - time.monotonic())
                del f
                self._refill(fn, more, star, futures)
                yield from values
                del values
                if exc is not None:
                    raise exc
        finally:
            for f in futures:
                f.cancel()

    def _unordered_results(self, fn, futures, more, star, end_time):
        pending = set(futures)
        futures.clear()
        try:
            while pending:
                remaining = None if end_time is None else \
                    max(0.0, end_time - time.monotonic())
                done, pending = _wait_futures(pending, timeout=remaining,
                                              return_when=FIRST_COMPLETED)
                if not done:
                    raise TimeoutError()
                for f in done:
                    self._refill(fn, more, star, futures)
                    pending.update(futures)
                    futures.clear()
                    values, exc = f.result()
                    yield from values
                    if exc is not None:
                        raise exc
        finally:
            for f in pending:
                f.cancel()

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
        futures = []
        for i in range(self.workers):
            f = _Future()
            f._mg_pool = self
            f._mg_task = self._c.submit_to(i, f, fn, args, kwargs or None)
            futures.append(f)
        return [f.result() for f in futures]

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stop accepting tasks. Queued tasks still run unless
        cancel_futures is true; with wait, return once every worker
        interpreter has ended (safe from several threads at once). Ctrl-C
        interrupts the wait."""
        with self._shutdown_lock:
            self._closed = True
            cancelled = self._c.close(bool(cancel_futures))
        for f in cancelled:
            f.cancel()
        if wait:
            self._c.join(None)


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
