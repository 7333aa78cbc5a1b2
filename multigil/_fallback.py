"""multigil._fallback - the process workers of a Pool: where tasks run
whose function or arguments need a module that cannot load in a
subinterpreter (NumPy, pandas, most compiled packages today), and tasks
sent there on purpose (Pool.submit_process, @multigil.process_task).

Processes start lazily, when the first such task comes, with the
forkserver start method (spawn where there is none), never fork: the
process has running subinterpreters. Each gets the caller's sys.path,
working directory and environment in its first message. The parent runs
one daemon thread per process worker (in the main interpreter): it takes
a task from the queue, sends it (multigil._wire: SharedArrays as memfds,
no copy), waits for the reply and completes the Future. A process that
dies fails its task with BrokenProcessPool and is replaced for the next.
A process worker keeps the memfd mappings it was sent until the pool
tells it to drop them (multigil._mapcache: bounded, and dropped once the
caller freed the block).

Locks: ProcessWorkers._lock guards the thread list, counters and the
closed flag, and is held while a task is queued (so that no task lands
behind the stop marks of shutdown); then _Tasks' condition (the queues and
the count of threads waiting in them), briefly (taken
alone by the serving threads). Neither is ever held while a task runs,
while sending, or while joining. Nothing here runs in a worker
interpreter.
"""
import collections
import logging
import os
import re
import signal
import socket
import sys
import threading
import traceback
from concurrent.futures.process import BrokenProcessPool

from . import _mapcache, _wire

LOGGER = logging.getLogger("multigil")
REFUSAL = "does not support loading in subinterpreters"
_STOP = None
_IDLE = object()  # _Tasks.get timed out
_JOIN_S = 5.0

# Every ProcessWorkers not yet ended, for the exit hook. Reentrant: a
# garbage collection can run at any bytecode while this thread holds it
# (in _register, say) and end a dropped Pool, whose finalizer
# (ProcessWorkers.shutdown) takes it again; a plain Lock deadlocked there.
_live = set()
_live_lock = threading.RLock()
_hook_installed = False


# ---- the child process ----

def _child_main(sock):
    """A process worker: one task at a time until told to stop or the
    pool's end of the socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool decides
    msg = _wire.recv(sock)
    if msg is None:
        return
    (path, cwd, env), _ = _wire.decode(*msg)
    sys.path[:] = path
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    cache = _mapcache.Cache()
    while True:
        msg = _wire.recv(sock)
        if msg is None:
            return
        try:
            task, inbox = _wire.decode(*msg, cache=cache)
        except BaseException as e:  # noqa: BLE001 - reported to the pool
            _reply(sock, ("err",) + _exc_payload(e), None)
            continue
        if task is _STOP:
            return
        if task[0] == "drop":  # the pool's word: no reply
            cache.drop(task[1])
            continue
        _reply(sock, _run(task), inbox)
        del task, inbox


def _run(task):
    kind, fn, a, b = task
    if kind == "call":
        try:
            return ("ok", fn(*a, **(b or {})))
        except BaseException as e:  # noqa: BLE001
            return ("err",) + _exc_payload(e)
    values = []
    for item in a:
        try:
            values.append(fn(*item) if b else fn(item))
        except BaseException as e:  # noqa: BLE001
            return ("ok", (values, _exc_payload(e)))
    return ("ok", (values, None))


def _exc_payload(e):
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    e.__traceback__ = None
    return (e, tb)


def _reply(sock, out, inbox):
    copies = _wire.changed_copies(inbox) if inbox is not None else []
    known = inbox.known if inbox is not None else None
    try:
        payload, box = _wire.encode(out + (copies,), known)
    except BaseException as e:  # noqa: BLE001 - cannot send the outcome
        what = out[1] if out[0] == "err" else None
        msg = (f"{type(what[0]).__name__}: {what[0]}" if what else
               f"result of type {type(out[1]).__name__}")
        err = RuntimeError(f"multigil: a process task's outcome cannot be "
                           f"sent back ({msg}): {e!r}")
        payload, box = _wire.encode(("err", err, _exc_payload(e)[1], copies),
                                    known)
    _wire.send(sock, payload, box.fds)


# ---- the pool side ----

def _context():
    import multiprocessing as mp
    methods = mp.get_all_start_methods()
    return mp.get_context("forkserver" if "forkserver" in methods
                          else "spawn")


def _with_cause(exc, tb):
    from . import _core
    exc.__cause__ = _core.RemoteTraceback(tb)
    return exc


class _Worker:
    """One process worker and the parent thread that serves it."""

    def __init__(self, owner, index):
        self.owner = owner
        self.index = index
        self.proc = None
        self.sock = None
        self.mirror = _mapcache.Mirror(owner.views)  # what it has mapped
        self.thread = threading.Thread(
            target=self._serve, daemon=True,
            name=f"multigil-{owner.name}-process-{index}")

    def _start_process(self):
        ctx = _context()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = ctx.Process(target=_child_main, args=(theirs,),
                               name=f"multigil-{self.owner.name}-{self.index}",
                               daemon=True)
            proc.start()
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        payload, box = _wire.encode((self.owner.sys_path, os.getcwd(),
                                     dict(os.environ)))
        _wire.send(mine, payload, box.fds)
        self.proc, self.sock = proc, mine
        self.owner._started(proc.pid)

    def _end_process(self, kill=False):
        proc, sock = self.proc, self.sock
        self.proc = self.sock = None
        self.mirror.clear()
        if sock is not None:
            if not kill:
                try:
                    payload, box = _wire.encode(_STOP)
                    _wire.send(sock, payload, box.fds)
                except OSError:
                    pass
            sock.close()
        if proc is not None:
            if kill:
                proc.kill()
            proc.join(_JOIN_S)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
            proc.close()

    def _send_drops(self, box=None):
        """Tell the process which cached mappings to drop (before box's
        message, whose own blocks stay)."""
        keep = () if box is None else set(box.fd_keys.items())
        drops = self.mirror.drops(keep)
        if drops and self.sock is not None:
            payload, b = _wire.encode(("drop", drops))
            _wire.send(self.sock, payload, b.fds)

    def _serve(self):
        try:
            while True:
                item = self.owner._queue.get(
                    self, _mapcache.IDLE_S if len(self.mirror) else None)
                if item is _STOP:
                    return
                if item is _IDLE:
                    self._send_drops()
                    continue
                self._one(*item)
                del item
        finally:
            self._end_process()
            self.owner._thread_ended(self)

    def _one(self, fut, started, chunk, payload, box, what):
        if not started:
            try:
                if not fut.set_running_or_notify_cancel():
                    return
            except RuntimeError:  # cancelled and already notified
                return
        try:
            if self.proc is None:
                self._start_process()
            self._send_drops(box)
            _wire.send(self.sock, payload, box.fds)
            self.mirror.sent(box)
            reply = _wire.recv(self.sock)
        except OSError:
            reply = None
        except BaseException as e:  # noqa: BLE001 - cannot start a process
            self._end_process(kill=True)
            fut.set_exception(e)
            return
        if reply is None:
            code = self.proc.exitcode if self.proc is not None else None
            self._end_process(kill=True)
            fut.set_exception(BrokenProcessPool(
                f"multigil: the process worker running {what} died "
                f"(exit code {code}); the pool starts a new one for the "
                f"next task"))
            return
        try:
            out, _inbox = _wire.decode(*reply, sent=box.sent)
            _wire.apply_copies(box.sent, out[-1])
        except BaseException as e:  # noqa: BLE001
            fut.set_exception(e)
            return
        finally:
            del box
        self.owner._count(out[0] == "ok")
        if out[0] == "err":
            fut.set_exception(_with_cause(out[1], out[2]))
        else:
            value = out[1]
            if chunk:
                values, exc = value
                value = (values, None if exc is None
                         else _with_cause(exc[0], exc[1]))
            fut.set_result(value)


class _Tasks:
    """The process workers' queue: one FIFO that any serving thread takes
    from, and one per thread (a broadcast's share), served first."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._shared = collections.deque()
        self._own = {}  # _Worker -> deque
        self._waiting = 0  # serving threads inside get() with no item yet

    def put(self, item, worker=None):
        with self._cond:
            if worker is None:
                self._shared.append(item)
                self._cond.notify()
            else:
                self._own.setdefault(worker, collections.deque()).append(item)
                self._cond.notify_all()

    def get(self, worker, timeout=None):
        """The next item for worker; _IDLE after timeout s without one.
        The thread counts as waiting until it has its item, under the same
        lock as the item's removal (see spare)."""
        with self._cond:
            self._waiting += 1
            try:
                while True:
                    own = self._own.get(worker)
                    if own:
                        return own.popleft()
                    if self._shared:
                        return self._shared.popleft()
                    if not self._cond.wait(timeout) and timeout is not None:
                        return _IDLE
            finally:
                self._waiting -= 1

    def spare(self):
        """Waiting serving threads that no queued task will take: a thread
        that has just taken a task is no longer counted (it was, until it
        got back from get, and a task submitted then started no process
        and waited behind that thread's task)."""
        with self._cond:
            return self._waiting - len(self._shared)

    def take_shared(self):
        """Everything in the shared FIFO, removed."""
        with self._cond:
            items = list(self._shared)
            self._shared.clear()
            return items

    def qsize(self):
        with self._cond:
            return len(self._shared)


class ProcessWorkers:
    """The process workers of one Pool (at most `size` processes)."""

    def __init__(self, name, size, sys_path):
        self.name = name
        self.size = size
        self.sys_path = sys_path  # the pool's, from its creation
        self._queue = _Tasks()
        self.views = _mapcache.Views()  # shared by the workers' Mirrors
        self._lock = threading.Lock()
        self._threads = []
        self._closed = False
        self.pids = []          # every process started (for tests)
        self.tasks = 0
        self.failed = 0

    # -- counters, called from the serving threads --
    def _started(self, pid):
        with self._lock:
            self.pids.append(pid)

    def _count(self, ok):
        with self._lock:
            self.tasks += 1
            self.failed += not ok

    def _thread_ended(self, w):
        with self._lock:
            if w in self._threads:
                self._threads.remove(w)
            empty = not self._threads and self._closed
        if empty:
            with _live_lock:
                _live.discard(self)

    # -- the pool's calls --
    def submit(self, fut, task, what, started=False):
        """Queue task for fut; started: fut is already RUNNING (a task an
        interpreter refused, rerun here). The task is encoded here, on
        the caller's thread: a value that cannot cross raises
        NotShareableError now, as on the interpreter route."""
        payload, box = encode_task(task)
        with self._lock:
            self._check_open()
            # A new process only when no idle one will take the task.
            if len(self._threads) < self.size and self._queue.spare() <= 0:
                self._new_worker()
            self._queue.put((fut, started, task[0] == "chunk", payload, box,
                             what))

    def broadcast(self, futures, task, what):
        """Queue task once for each of the `size` process workers (started
        now where not yet running), one future each, in worker order; each
        runs it after the task it is running now, before the shared
        queue."""
        msgs = [encode_task(task) for _ in futures]
        with self._lock:
            self._check_open()
            while len(self._threads) < self.size:
                self._new_worker()
            for w, fut, (payload, box) in zip(self._threads, futures, msgs):
                self._queue.put((fut, False, False, payload, box, what), w)

    def _check_open(self):
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _new_worker(self):
        w = _Worker(self, len(self.pids) + len(self._threads))
        self._threads.append(w)
        _register(self)
        w.thread.start()

    def alive(self):
        with self._lock:
            return sum(1 for w in self._threads
                       if w.proc is not None and w.proc.is_alive())

    def shutdown(self, wait=True, cancel_futures=False):
        with self._lock:
            first = not self._closed
            self._closed = True
            threads = list(self._threads)
            dropped = []
            if cancel_futures:
                for item in self._queue.take_shared():
                    if item is _STOP:
                        continue
                    if item[1]:  # already RUNNING (an interpreter refused it)
                        self._queue.put(item)
                    else:
                        dropped.append(item[0])
            if first:
                for _ in threads:
                    self._queue.put(_STOP)
        for fut in dropped:  # outside the lock: callbacks run
            fut.cancel()
        if not threads:
            with _live_lock:
                _live.discard(self)
        if wait:
            for w in threads:
                if w.thread is not threading.current_thread():
                    w.thread.join()

    def kill(self):
        """Ctrl-C at exit: end the processes now."""
        with self._lock:
            threads = list(self._threads)
        for w in threads:
            proc = w.proc
            if proc is not None:
                try:
                    proc.kill()
                except (OSError, ValueError):
                    pass


def encode_task(task):
    """(payload, Outbox) for a task (kind, fn, a, b), or NotShareableError
    naming the part that cannot be pickled (the function, an argument, a
    keyword or a map item)."""
    try:
        return _wire.encode(task)
    except Exception as e:  # noqa: BLE001 - said as NotShareableError
        first = e
    from ._core import NotShareableError
    label, value, cause = _culprit(task, first)
    del first
    t = type(value)
    name = t.__qualname__ if t.__module__ == "builtins" \
        else f"{t.__module__}.{t.__qualname__}"
    raise NotShareableError(
        f"cannot send {label} (an object of type {name}) to a process "
        f"worker: it cannot be pickled ({type(cause).__name__}: "
        f"{cause})") from cause


def _culprit(task, exc):
    """(label, value, its error) of the first part of task that does not
    encode alone; the whole task when each part does."""
    kind, fn, a, b = task
    parts = [("the function", fn)]
    if kind == "call":
        parts += [(f"argument {i + 1}", v) for i, v in enumerate(a)]
        parts += [(f"keyword {k!r}", v) for k, v in (b or {}).items()]
    else:
        parts += [(f"map item {i}", v) for i, v in enumerate(a)]
    for label, value in parts:
        try:
            _wire.encode(value)
        except Exception as e:  # noqa: BLE001
            return label, value, e
    return "the task", task, exc


def _register(pw):
    global _hook_installed
    with _live_lock:
        _live.add(pw)
        if not _hook_installed:
            # After multiprocessing's own exit hook, so that this runs
            # first (atexit is last-in, first-out): queued tasks finish
            # before multiprocessing terminates its daemonic children.
            import atexit
            import multiprocessing.util  # noqa: F401
            atexit.register(end_all_at_exit)
            _hook_installed = True


def end_all_at_exit():
    """Exit hook (also called by multigil.pool's): finish queued process
    tasks and end every process worker."""
    with _live_lock:
        live = list(_live)
    try:
        for pw in live:
            pw.shutdown(wait=True)
    except KeyboardInterrupt:
        for pw in live:
            pw.kill()
        raise


_REFUSAL_RE = re.compile(r"module (\S+) " + REFUSAL)


def refusal(exc):
    """'module X does not support loading in subinterpreters' when that
    refusal is in exc's chain (or in the traceback text of its
    RemoteTraceback causes), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        m = _REFUSAL_RE.search(str(exc))
        if m is not None:
            return m.group(0)
        exc = exc.__cause__ or exc.__context__
    return None


def refused_before_running(exc):
    """True when an interpreter refused the task while decoding it (the
    function's module, or an argument's, could not be imported): the
    function never ran, so running it in a process is its first run."""
    return (isinstance(exc, ValueError)
            and str(exc).startswith("cannot decode a multigil message"))
