"""Process fallback benchmark: the three figures of docs/fallback.md.

    python bench/bench_fallback.py [--only handoff,numpy,pandas,dask]
                                   [--mb 800] [--values 10000000]
                                   [--repeat 20] [--json]

1. handoff: a NumPy task in a fallback process worker, given a small int,
   then an 800 MB SharedArray (memfd: the process maps it), returning a
   small result: median round trip of each, against ProcessPoolExecutor
   pickling the same data as a NumPy array.
2. numpy / pandas: the seed article's example B ((a - a.mean()) / a.std()
   per chunk, into an output array) on 2 fallback workers vs serial
   NumPy on the same values (first pass, and a repeated pass over the
   same blocks, which the process workers' mapping cache serves without
   page faults); example A (df_chunk["value"].mean()) on 2 fallback
   workers vs pandas alone, with DataFrame chunks (pickled) and with
   Table chunks made into frames by multigil.pandas_frame (no copy).
   Time and peak PSS of the process tree.
3. dask: a CPU-bound pure-Python graph on a LocalCluster: one worker
   process with 2 threads and the multigil executor, vs 2 worker
   processes of 1 thread, vs one process with 2 plain threads. Time and
   peak PSS of the process tree.

Every variant of 2 and 3 runs in a fresh child process (peaks do not
mix), --rounds times interleaved, medians reported; the PSS sampler is multigil._memory's, run here, outside the
measured tree. The machine this was written on has 2 cores shared with
other jobs: figures are noisy; compare within one run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import multigil  # noqa: E402
from multigil import _memory  # noqa: E402

try:  # at the top, as users write it: worker interpreters refuse the
    import numpy as np  # tasks that use it, and they run in processes
except ImportError:
    np = None


# ---- tasks (imported by name in the process workers) ----

def np_first(arr):
    """Touches the data a little: a small result from a big array."""
    a = np.asarray(arr)
    return float(a[0] + a[-1])


def normalize_into(src, dst):
    a = np.asarray(src)
    np.asarray(dst)[:] = (a - a.mean()) / a.std()
    return len(a)


def chunk_mean(df_chunk):
    return df_chunk["value"].mean()


@multigil.process_task  # pandas is imported in the call, not at the top
def table_chunk_mean(chunk):
    """Example A over a Table chunk: pandas code, no copy of the data."""
    return multigil.pandas_frame(chunk)["value"].mean()


def cpu(n):
    s = 0
    for i in range(n):
        s += i * i % 7
    return s


# ---- figure 1: in this process ----

def median_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def handoff(a):
    import concurrent.futures as cf
    import multiprocessing as mp

    import multigil
    n = a.mb * (1 << 20) // 8
    big = multigil.SharedArray(n, "f8")
    big.fill(1.0)
    pool = multigil.Pool(1, process_workers=1)
    fn = np_first
    pool.submit(fn, big).result()  # refused, re-run: the process starts
    small = median_ms(lambda: pool.submit(fn, [1.0, 2.0]).result(),
                      a.repeat)
    shared = median_ms(lambda: pool.submit(fn, big).result(), a.repeat)
    pool.shutdown()
    arr = np.ones(n)
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context(
            "forkserver")) as ex:
        ex.submit(np_first, [1.0]).result()
        ppe_small = median_ms(lambda: ex.submit(np_first, [1.0, 2.0])
                              .result(), a.repeat)
        ppe = median_ms(lambda: ex.submit(np_first, arr).result(),
                        max(1, min(3, a.repeat)))
    return {"mb": a.mb, "multigil_small_ms": small,
            "multigil_shared_ms": shared,
            "multigil_added_ms": shared - small,
            "ppe_small_ms": ppe_small, "ppe_pickled_ms": ppe}


# ---- figures 2 and 3: children ----

def tree_cpu_s():
    """utime + stime of this process and its descendants, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _memory.tree_pids(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def child(variant, a):
    import gc
    prep = PREPARE[variant](a)
    gc.collect()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    run, close = prep if isinstance(prep, tuple) else (prep, None)
    t, c = time.perf_counter(), tree_cpu_s()
    check = run()
    seconds = time.perf_counter() - t
    # CPU of every thread of the process tree (pool processes, Dask's
    # scheduler, nanny and workers, all still alive here) during the job:
    # less noisy than wall time on a shared machine.
    cpu_s = tree_cpu_s() - c
    if close is not None:
        close()
    print(json.dumps({"seconds": seconds, "cpu_s": cpu_s, "check": check}),
          flush=True)
    sys.stdin.readline()
    return 0


def _np_chunks(a, shared):
    import multigil
    src = multigil.SharedArray(a.values, "f8") if shared else \
        np.empty(a.values)
    np.asarray(src)[:] = np.random.default_rng(1).random(a.values)
    dst = multigil.SharedArray(a.values, "f8") if shared else \
        np.empty(a.values)
    half = a.values // 2
    return src, dst, [(src[:half], dst[:half]), (src[half:], dst[half:])]


def _warm(pool, fn, args):
    """Before the clock: the pool learns that fn runs in processes, and
    both process workers start and import NumPy/pandas (the processes are
    then part of the baseline PSS; their peak is in peak MB)."""
    futs = [pool.submit_process(_both, i, fn, *x)
            for i, x in enumerate(args)]
    for f in futs:
        f.result()
    list(pool.map(fn, *zip(*args), chunksize=1))


def _both(i, fn, *args):
    import time as _t
    _t.sleep(0.3)  # so that the two calls land on two processes
    return fn(*args)


def prep_numpy_serial(a):
    src, dst, parts = _np_chunks(a, False)

    def run():
        for s, d in parts:
            normalize_into(s, d)
        return float(np.asarray(dst)[::1000].sum())
    return run


def prep_numpy_fallback(a, procs=2, repeat=False):
    import multigil
    src, dst, parts = _np_chunks(a, True)
    pool = multigil.Pool(2, process_workers=procs)
    # repeat: the warm-up passes over the same blocks, so the measured
    # pass is a second one (cached mappings, pages already mapped).
    _warm(pool, normalize_into, parts if repeat else [
        (multigil.SharedArray.from_iterable([1.0, 2.0, 4.0], "f8"),
         multigil.SharedArray(3, "f8"))] * 2)

    def run():
        list(pool.map(normalize_into, *zip(*parts), chunksize=1))
        return float(np.asarray(dst)[::1000].sum())
    return run, pool.shutdown


def _frames(a):
    import pandas as pd
    df = pd.DataFrame({"value": np.random.default_rng(2).random(a.values)})
    half = a.values // 2
    return [df.iloc[:half], df.iloc[half:]]


def prep_pandas_table(a):
    import multigil
    values = multigil.SharedArray(a.values, "f8")
    np.asarray(values)[:] = np.random.default_rng(2).random(a.values)
    table = multigil.Table({"value": multigil.Column("float64", a.values,
                                                     values)})
    chunks = table.split(2)
    pool = multigil.Pool(2, process_workers=2)
    _warm(pool, table_chunk_mean, [(c.slice(0, 4),) for c in chunks])

    def run():
        return [float(x) for x in pool.map(table_chunk_mean, chunks,
                                           chunksize=1)]
    return run, pool.shutdown


def prep_pandas_serial(a):
    chunks = _frames(a)
    return lambda: [float(chunk_mean(c)) for c in chunks]


def prep_pandas_fallback(a):
    import multigil
    chunks = _frames(a)
    pool = multigil.Pool(2, process_workers=2)
    _warm(pool, chunk_mean, [(c.iloc[:4],) for c in chunks])

    def run():
        return [float(x) for x in pool.map(chunk_mean, chunks, chunksize=1)]
    return run, pool.shutdown


def _dask_prep(a, n_workers, threads, plugin):
    import dask
    import distributed
    # Off in every variant (multigil.dask requires it: docs/dask.md).
    dask.config.set({"distributed.worker.profile.enabled": False})
    cluster = distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=threads, processes=True,
        dashboard_address=None, worker_dashboard_address=None)
    client = distributed.Client(cluster)
    if plugin:
        from multigil.dask import Plugin
        client.register_plugin(Plugin())
    client.submit(cpu, 10, pure=False).result()

    def run():
        import contextlib
        ctx = dask.annotate(executor="multigil") if plugin \
            else contextlib.nullcontext()
        with ctx:
            futs = client.map(cpu, [a.dask_n] * a.dask_tasks, pure=False)
        return sum(client.gather(futs))

    def close():
        client.close()
        cluster.close()
    return run, close


PREPARE = {
    "numpy-serial": prep_numpy_serial,
    "numpy-fallback1": lambda a: prep_numpy_fallback(a, 1),
    "numpy-fallback2": prep_numpy_fallback,
    "numpy-fallback2-repeat": lambda a: prep_numpy_fallback(a, 2, True),
    "pandas-serial": prep_pandas_serial,
    "pandas-fallback2": prep_pandas_fallback,
    "pandas-fallback2-table": prep_pandas_table,
    "dask-1proc-2threads-multigil":
        lambda a: _dask_prep(a, 1, 2, True),
    "dask-2procs-1thread": lambda a: _dask_prep(a, 2, 1, False),
    "dask-1proc-2threads": lambda a: _dask_prep(a, 1, 2, False),
}
GROUPS = {"numpy": ["numpy-serial", "numpy-fallback1", "numpy-fallback2",
                    "numpy-fallback2-repeat"],
          "pandas": ["pandas-serial", "pandas-fallback2",
                     "pandas-fallback2-table"],
          "dask": ["dask-1proc-2threads-multigil", "dask-2procs-1thread",
                   "dask-1proc-2threads"]}


def measure(variant, a):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", variant,
           "--values", str(a.values), "--dask-n", str(a.dask_n),
           "--dask-tasks", str(a.dask_tasks)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{variant}: child did not start")
        base = (_memory.tree_pss(proc.pid) or 0) // 1024
        sampler = _memory.PeakSampler(proc.pid).start()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        peak_bytes = sampler.stop()
        if not line:
            raise RuntimeError(f"{variant}: child died during the job")
        res = json.loads(line)
        proc.stdin.close()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    peak = max((peak_bytes or 0) // 1024, base)
    return {"variant": variant, "seconds": res["seconds"],
            "cpu_s": res["cpu_s"],
            "base_mb": base / 1024, "peak_mb": peak / 1024,
            "added_mb": (peak - base) / 1024, "check": res["check"]}


def median_row(rows):
    """The medians of a variant's rounds (and the spread of its time)."""
    out = dict(rows[0])
    for k in ("seconds", "cpu_s", "base_mb", "peak_mb", "added_mb"):
        out[k] = statistics.median(r[k] for r in rows)
    out["min_s"] = min(r["seconds"] for r in rows)
    out["max_s"] = max(r["seconds"] for r in rows)
    out["rounds"] = len(rows)
    return out


def have(mod):
    import importlib.util
    return importlib.util.find_spec(mod) is not None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="handoff,numpy,pandas,dask")
    ap.add_argument("--mb", type=int, default=800)
    ap.add_argument("--values", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--dask-n", type=int, default=6_000_000)
    ap.add_argument("--dask-tasks", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3,
                    help="runs of each variant of figures 2 and 3 "
                    "(interleaved; medians reported)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child")
    a = ap.parse_args(argv)
    if a.child:
        return child(a.child, a)
    only = a.only.split(",")
    out = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    if "handoff" in only and have("numpy"):
        load = os.getloadavg()[0]
        out["handoff"] = handoff(a)
        out["handoff"]["load"] = (load, os.getloadavg()[0])
    for group in ("numpy", "pandas", "dask"):
        need = {"numpy": "numpy", "pandas": "pandas",
                "dask": "distributed"}[group]
        if group in only:
            if not have(need):
                out[group] = f"skipped: {need} is not installed"
                continue
            runs = {v: [] for v in GROUPS[group]}
            load = os.getloadavg()[0]
            for _ in range(a.rounds):  # interleaved: load drifts
                for v in GROUPS[group]:
                    runs[v].append(measure(v, a))
            out[group] = [median_row(rows) for rows in runs.values()]
            out[f"{group}_load"] = (load, os.getloadavg()[0])
    if a.json:
        print(json.dumps(out, indent=1))
        return 0
    report(out)
    return 0


def report(out):
    print(f"CPython {out['python']}, {out['cpus']} CPUs (shared: noisy)")
    h = out.get("handoff")
    if h:
        print(f"\n1. NumPy task in a fallback process, small result back "
              f"(median ms):\n"
              f"   multigil, small list arg    {h['multigil_small_ms']:8.3f}\n"
              f"   multigil, {h['mb']} MB SharedArray "
              f"{h['multigil_shared_ms']:8.3f}  (+{h['multigil_added_ms']:.3f})\n"
              f"   ProcessPoolExecutor, small  {h['ppe_small_ms']:8.3f}\n"
              f"   ProcessPoolExecutor, {h['mb']} MB pickled "
              f"{h['ppe_pickled_ms']:8.1f}\n"
              f"   (load average {h['load'][0]:.2f} -> {h['load'][1]:.2f})")
    for group in ("numpy", "pandas", "dask"):
        rows = out.get(group)
        if rows is None:
            continue
        print(f"\n{group}:")
        if isinstance(rows, str):
            print(f"   {rows}")
            continue
        print(f"   {'variant':30} {'seconds':>8} {'(min-max)':>15} "
              f"{'CPU s':>7} {'peak MB':>8} {'added MB':>8}")
        for r in rows:
            spread = f"{r['min_s']:.3f}-{r['max_s']:.3f}"
            print(f"   {r['variant']:30} {r['seconds']:8.3f} {spread:>15} "
                  f"{r['cpu_s']:7.2f} {r['peak_mb']:8.1f} {r['added_mb']:8.1f}")
        before, after = out[f"{group}_load"]
        print(f"   (medians of {rows[0]['rounds']} interleaved rounds; "
              f"load average {before:.2f} -> {after:.2f})")


if __name__ == "__main__":
    sys.exit(main())
