"""Pool benchmarks shared by ``python -m multigil bench`` and bench/.

Every figure is measured side by side in one run on this machine and
reported as a ratio; nothing here is asserted by the tests.
"""
import gc
import json
import os
import statistics
import subprocess
import sys
import time

from .executors import candidates, make_executor
from .work import cpu_task, noop

N_CPU_TASKS = 16


def calibrate_cpu_task(seconds=0.1):
    n = 20000
    while True:
        t = time.perf_counter()
        cpu_task(n)
        dt = time.perf_counter() - t
        if dt > 0.02:
            return max(1, int(n * seconds / dt))
        n *= 2


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
import multigil, multigil.bench.work as b
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
