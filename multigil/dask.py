"""multigil.dask - run Dask tasks in a multigil Pool on each Dask worker.

    from multigil.dask import Plugin
    client.register_plugin(Plugin())          # or: dask worker --preload multigil.dask
    with dask.annotate(executor="multigil"):
        result = client.compute(graph)

On each worker, Plugin starts a multigil Pool sized to the worker's
threads and installs an executor under `name` in worker.executors. Dask
calls that executor's submit() with its own wrapper
(distributed.worker._run_task_simple: timing, error capture) and the task
spec; the wrapper must stay in the worker's main interpreter (distributed
and its compiled dependencies cannot load in a subinterpreter). So the
executor runs the wrapper on a thread of the main interpreter, and swaps
each task's function for a proxy that sends only the user's function and
its arguments into the pool and waits for the result. A task whose
function needs NumPy or pandas falls back to the pool's process workers
(docs/fallback.md). See docs/dask.md.
"""
import concurrent.futures as cf

from .pool import Pool

__all__ = ["Plugin", "Executor", "dask_setup", "dask_teardown"]

try:
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # distributed absent: Plugin still defined, unusable
    _WorkerPlugin = object


class _InPool:
    """Stands for a task's function: calls it in the pool."""
    __slots__ = ("pool", "fn")

    def __init__(self, pool, fn):
        self.pool, self.fn = pool, fn

    def __call__(self, *args, **kwargs):
        try:
            return self.pool.submit(self.fn, *args, **kwargs).result()
        except BaseException as e:
            cause = e.__cause__
            if cause is not None and type(cause).__name__ == \
                    "RemoteTraceback":
                # Dask sends the exception to the client, not its cause:
                # the worker's traceback travels as a note.
                e.add_note(f"multigil worker traceback:\n{cause}")
            raise


def _in_pool(spec, pool):
    """A copy of a Dask task spec whose functions run in pool (a fused
    subgraph: each inner task's); anything else unchanged."""
    try:
        from dask._task_spec import Task, _execute_subgraph
    except ImportError:
        return spec
    if type(spec) is not Task:
        return spec
    if spec.func is _execute_subgraph and spec.args \
            and isinstance(spec.args[0], dict):
        inner = {k: _in_pool(v, pool) for k, v in spec.args[0].items()}
        return Task(spec.key, spec.func, inner, *spec.args[1:], **spec.kwargs)
    return Task(spec.key, _InPool(pool, spec.func), *spec.args,
                **spec.kwargs)


class Executor(cf.Executor):
    """What Dask's worker sees under the plugin's name: submit(fn, *args)
    runs fn (Dask's wrapper) on one of `threads` main-interpreter threads,
    with the task spec's functions redirected into pool."""

    def __init__(self, pool, threads):
        self.pool = pool
        self._threads = cf.ThreadPoolExecutor(
            threads, thread_name_prefix="multigil-dask")

    def submit(self, fn, /, *args, **kwargs):
        pool = self.pool
        if args:
            args = (_in_pool(args[0], pool),) + args[1:]
        return self._threads.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._threads.shutdown(wait, cancel_futures=cancel_futures)
        self.pool.shutdown(wait, cancel_futures=cancel_futures)


PROFILER_KEY = "distributed.worker.profile.enabled"


def _check_profiler():
    """Dask's profiler samples sys._current_frames() (every 2 s on the
    event loop's thread, every 10 ms while tasks run on its threads).
    CPython's sys._current_frames() walks the threads of every
    interpreter and makes frame objects for theirs with the calling
    interpreter's allocator: while a worker interpreter runs Python, that
    corrupts memory and the Dask worker dies ("free(): invalid pointer").
    Refuse to start rather than crash later."""
    import dask
    if dask.config.get(PROFILER_KEY, default=False):
        raise RuntimeError(
            "multigil.dask needs Dask's profiler off on the workers: it "
            "calls sys._current_frames(), which crashes CPython while "
            "other interpreters run Python. Start the workers with "
            "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False (or "
            f"dask.config.set({{{PROFILER_KEY!r}: False}}) before the "
            "cluster starts; see docs/dask.md)")


def _nthreads(worker):
    n = getattr(worker, "nthreads", None)
    if n is None:
        n = worker.state.nthreads
    return max(1, int(n))


class Plugin(_WorkerPlugin):
    """A distributed WorkerPlugin: setup starts a multigil Pool of
    `workers` interpreters (default: the worker's nthreads) and installs
    it as worker.executors[name]; teardown shuts it down."""

    def __init__(self, workers=None, name="multigil"):
        if _WorkerPlugin is object:
            raise ImportError("multigil.dask.Plugin needs dask.distributed "
                              "(pip install 'dask[distributed]')")
        self.workers = workers
        self.name = name

    def setup(self, worker):
        _check_profiler()
        n = self.workers or _nthreads(worker)
        pool = Pool(n, name=f"dask-{self.name}")
        worker.executors[self.name] = Executor(pool, _nthreads(worker))

    def teardown(self, worker):
        ex = worker.executors.pop(self.name, None)
        if isinstance(ex, Executor):
            ex.shutdown(wait=True)


def dask_setup(worker):
    """For `dask worker --preload multigil.dask`."""
    Plugin().setup(worker)


def dask_teardown(worker):
    Plugin().teardown(worker)
