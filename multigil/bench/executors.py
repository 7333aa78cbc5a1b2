"""The candidates every benchmark compares, as executors with submit, map
and shutdown: multigil.Pool, ThreadPoolExecutor, ProcessPoolExecutor with
each start method, the stdlib's interpreter pool (3.14's
InterpreterPoolExecutor; on 3.13 a minimal pool on _interpreters), and
threads on a free-threaded CPython when one is found on this machine."""
import concurrent.futures as cf
import glob
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import threading

from .work import noop

# ---- a minimal pool on the stdlib's private _interpreters (3.13+) ----

class MinimalInterpPool:
    """The obvious pool on _interpreters: one thread per interpreter, tasks
    and results pickled, results back through an _interpqueues queue."""

    def __init__(self, workers):
        import _interpqueues
        import _interpreters
        import queue
        self._I, self._Q = _interpreters, _interpqueues
        self._tasks = queue.SimpleQueue()
        self._threads = []
        for _ in range(workers):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self):
        I, Q = self._I, self._Q
        iid = I.create("isolated")
        qid = None
        try:
            qid = Q.create(0, 0, 1)
            I.set___main___attrs(iid, {"qid": qid,
                                       "path": "\n".join(sys.path)})
            I.exec(iid, "import sys, pickle, _interpqueues\n"
                        "sys.path[:] = path.split('\\n')")
            while True:
                item = self._tasks.get()
                if item is None:
                    break
                fut, payload = item
                I.set___main___attrs(iid, {"payload": payload})
                err = I.exec(iid, "_fn, _args = pickle.loads(payload)\n"
                                  "_interpqueues.put(qid, pickle.dumps("
                                  "_fn(*_args)), 0, 1)")
                if err is not None:
                    fut.set_exception(RuntimeError(str(err)))
                else:
                    import pickle
                    data = Q.get(qid)[0]
                    fut.set_result(pickle.loads(data))
        finally:
            if qid is not None:
                Q.destroy(qid)
            I.destroy(iid)

    def submit(self, fn, *args):
        import pickle
        fut = cf.Future()
        self._tasks.put((fut, pickle.dumps((fn, args))))
        return fut

    def map(self, fn, it, chunksize=None):
        return [f.result() for f in [self.submit(fn, x) for x in it]]

    def shutdown(self):
        for _ in self._threads:
            self._tasks.put(None)
        for t in self._threads:
            t.join()


def _have_minimal_interp_pool():
    # The private modules' signatures change between versions; this pool
    # is written for 3.13's (3.14 has InterpreterPoolExecutor instead).
    if sys.version_info[:2] != (3, 13):
        return False
    try:
        p = MinimalInterpPool(1)
        ok = p.submit(noop, 1).result(timeout=10) == 1
        p.shutdown()
        return ok
    except Exception:
        return False


def interpreter_pool_kind():
    """The stdlib interpreter pool this Python has, or None (3.12)."""
    if hasattr(cf, "InterpreterPoolExecutor"):
        return "stdlib-interpreters"
    if _have_minimal_interp_pool():
        return "_interpreters-minimal"
    return None


def interpreter_pool_note():
    """Why there is no stdlib interpreter pool row, or None if there is."""
    if interpreter_pool_kind() is not None:
        return None
    return (f"no stdlib interpreter pool on CPython "
            f"{sys.version_info[0]}.{sys.version_info[1]} "
            f"(InterpreterPoolExecutor is 3.14+, _interpreters 3.13+)")


_FT_CHECK = ("import sys, sysconfig; "
             "print(int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))), "
             "'%d.%d' % sys.version_info[:2])")


def _ft_names():
    names = []
    for v in ("3.13", "3.14", "3.15"):
        names.append(f"python{v}t")
    return names


def find_free_threaded(extra_dirs=()):
    """Executables of free-threaded CPythons (3.13t+) on this machine:
    PATH, /opt/*/bin, /usr/local/bin and pyenv's versions. Returns a list
    of (path, "3.13") pairs, checked by running them."""
    seen, found = set(), []
    cands = []
    for name in _ft_names():
        p = shutil.which(name)
        if p:
            cands.append(p)
    dirs = list(extra_dirs) + glob.glob("/opt/*/bin") + ["/usr/local/bin"]
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    dirs += glob.glob(os.path.join(root, "versions", "*", "bin"))
    for d in dirs:
        for name in _ft_names():
            cands.append(os.path.join(d, name))
    for p in cands:
        real = os.path.realpath(p)
        if real in seen or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        try:
            out = subprocess.run([p, "-c", _FT_CHECK], capture_output=True,
                                 text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        fields = out.stdout.split()
        if out.returncode == 0 and len(fields) == 2 and fields[0] == "1":
            found.append((p, fields[1]))
    return found


def make_executor(kind, workers):
    if kind == "multigil":
        import multigil
        return multigil.Pool(workers)
    if kind in ("threads", "free-threaded"):
        return cf.ThreadPoolExecutor(workers)
    if kind in ("process-fork", "process-spawn", "process-forkserver"):
        return cf.ProcessPoolExecutor(
            workers, mp_context=mp.get_context(kind.split("-")[1]))
    if kind == "stdlib-interpreters":
        # Its workers do not see sys.path changes made at run time.
        code = f"import sys; sys.path[:0] = {sys.path!r}"
        return cf.InterpreterPoolExecutor(workers, initializer=exec,
                                          initargs=(code,))
    if kind == "_interpreters-minimal":
        return MinimalInterpPool(workers)
    raise ValueError(kind)


def candidates():
    """The pool kinds the micro-benchmarks compare on this Python."""
    kinds = ["multigil", "threads", "process-fork", "process-spawn"]
    k = interpreter_pool_kind()
    if k is not None:
        kinds.append(k)
    return kinds
