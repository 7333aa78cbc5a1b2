"""Pool benchmarks shared by ``python -m multigil bench`` and bench/.

Every figure is measured side by side in one run on this machine and
reported as a ratio; nothing here is asserted by the tests.
"""
import concurrent.futures as cf
import gc
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import threading
import time

N_CPU_TASKS = 16


from ._benchfns import cpu_task, noop


def calibrate_cpu_task(seconds=0.1):
    n = 20000
    while True:
        t = time.perf_counter()
        cpu_task(n)
        dt = time.perf_counter() - t
        if dt > 0.02:
            return max(1, int(n * seconds / dt))
        n *= 2


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


# ---- the candidates ----

def make_executor(kind, workers):
    import multigil
    if kind == "multigil":
        return multigil.Pool(workers)
    if kind == "threads":
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
    kinds = ["multigil", "threads", "process-fork", "process-spawn"]
    if hasattr(cf, "InterpreterPoolExecutor"):
        kinds.append("stdlib-interpreters")
    if _have_minimal_interp_pool():
        kinds.append("_interpreters-minimal")
    return kinds


def warm(ex, workers):
    futs = [ex.submit(noop, i) for i in range(workers * 2)]
    for f in futs:
        f.result()


def shutdown(ex):
    ex.shutdown()
    gc.collect()


def best(fn, repeat):
    return min(fn() for _ in range(repeat))


# ---- the four measurements ----

def bench_cpu(kinds, workers, n, repeat=3):
    """Best of `repeat` for each candidate (this VM's timings are noisy)."""
    def serial():
        t = time.perf_counter()
        for _ in range(N_CPU_TASKS):
            cpu_task(n)
        return time.perf_counter() - t
    rows = {"serial": best(serial, repeat)}
    for kind in kinds:
        ex = make_executor(kind, workers)
        warm(ex, workers)

        def parallel():
            t = time.perf_counter()
            for f in [ex.submit(cpu_task, n) for _ in range(N_CPU_TASKS)]:
                f.result()
            return time.perf_counter() - t
        rows[kind] = best(parallel, repeat)
        shutdown(ex)
    return rows


def bench_round_trip(kinds, workers, calls):
    rows = {}
    for kind in kinds:
        ex = make_executor(kind, workers)
        warm(ex, workers)
        k = calls if not kind.startswith("process") else calls // 4

        def once():
            t = time.perf_counter()
            for _ in range(k):
                ex.submit(noop, 1).result()
            return (time.perf_counter() - t) / k
        rows[kind] = statistics.median(once() for _ in range(3))
        shutdown(ex)
    return rows


def bench_map(kinds, workers, n):
    rows = {}
    data = range(n)
    for kind in kinds:
        ex = make_executor(kind, workers)
        warm(ex, workers)
        sizes = [None, 256] if kind in ("multigil", "process-fork",
                                        "process-spawn") else [None]
        for cs in sizes:
            if kind.startswith("process") and cs is None:
                continue  # chunksize=1: one pickle + pipe trip per call

            def once():
                t = time.perf_counter()
                if cs is None:
                    out = list(ex.map(noop, data))
                else:
                    out = list(ex.map(noop, data, chunksize=cs))
                dt = time.perf_counter() - t
                assert len(out) == n
                return dt
            label = kind if cs is None else f"{kind} chunksize={cs}"
            reps = 3 if kind in ("multigil",) or cs else 1
            rows[label] = n / best(once, reps)
        shutdown(ex)
    return rows


def bench_startup(kinds, workers):
    rows = {}
    for kind in kinds:
        if kind == "_interpreters-minimal":
            continue

        def once():
            t = time.perf_counter()
            ex = make_executor(kind, workers)
            if kind == "multigil":
                ex.broadcast(noop)
            else:
                warm(ex, workers)
            ex.shutdown()
            return time.perf_counter() - t
        rows[kind] = statistics.median(once() for _ in range(5))
    return rows


_RSS_SCRIPT = r"""
import gc, json, sys, time
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
import multigil, multigil._benchfns as b
k = int(sys.argv[1])
# Start and end one pool first so that one-time costs (imports, the
# extension's pages) are not counted per worker.
with multigil.Pool(1) as p:
    p.broadcast(b.noop)
gc.collect()
base = rss()
p = multigil.Pool(k)
p.broadcast(b.noop)
time.sleep(0.2)
after = rss()
p.shutdown()
print(json.dumps({"per_worker": (after - base) / k}))
"""


def bench_memory(workers=8):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(workers)],
                         capture_output=True, text=True, env=env, timeout=120)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)["per_worker"]


# ---- report ----

def _table(title, rows, unit, fmt, base_key, higher_is_better=False):
    lines = [f"\n{title}", f"  {'candidate':<38}{unit:>14}{'vs multigil':>14}"]
    base = rows.get(base_key)
    for k, v in rows.items():
        if base:
            ratio = (v / base) if higher_is_better else (base / v)
            r = f"{ratio:>13.2f}x"
        else:
            r = ""
        lines.append(f"  {k:<38}{fmt(v):>14}{r}")
    return "\n".join(lines)


def run(workers=2, quick=False, as_json=False):
    import multigil
    kinds = candidates()
    n = calibrate_cpu_task(0.1)
    res = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "workers": workers,
        "cpu": bench_cpu(kinds, workers, n),
        "round_trip": bench_round_trip(kinds, workers,
                                       500 if quick else 4000),
        "map": bench_map(kinds, workers, 20_000 if quick else 100_000),
        "startup": bench_startup(kinds, workers),
        "memory_per_worker": bench_memory(),
    }
    if as_json:
        print(json.dumps(res, indent=2))
        return res
    print(f"multigil {multigil.__version__} pool benchmark: CPython "
          f"{res['python']}, {res['cpus']} CPUs, {workers} workers")
    cpu = res["cpu"]
    serial = cpu["serial"]
    lines = [f"\n1. CPU-bound: {N_CPU_TASKS} tasks of ~0.1 s (warm pools, "
             f"best of 3)",
             f"  {'candidate':<38}{'seconds':>14}{'speedup':>14}"]
    for k, v in cpu.items():
        lines.append(f"  {k:<38}{v:>14.3f}{serial / v:>13.2f}x")
    print("\n".join(lines))
    print(_table("2. Round trip of one trivial task (submit(f, 1).result())",
                 res["round_trip"], "us/call",
                 lambda v: f"{v * 1e6:.1f}", "multigil",
                 higher_is_better=True)
          + "\n  (vs multigil: how many times slower than multigil)")
    print(_table("3. map over trivial calls", res["map"], "calls/s",
                 lambda v: f"{v:,.0f}", "multigil")
          + "\n  (vs multigil: multigil's default throughput / this one's)")
    print(_table(f"4. Start-up: construct, one task per worker, shut down "
                 f"({workers} workers)", res["startup"], "ms",
                 lambda v: f"{v * 1e3:.1f}", "multigil",
                 higher_is_better=True))
    mem = res["memory_per_worker"]
    print(f"  added resident memory per idle multigil worker: "
          f"{mem / 2**20:.2f} MB" if mem else "  memory: n/a")
    return res
