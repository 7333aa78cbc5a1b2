"""Memory benchmark: peak PSS of the whole process tree while a pure-Python
data job runs serially, on threads, on processes (fork, forkserver, spawn),
on the stdlib's InterpreterPoolExecutor (3.14+) and on multigil. Prints a
table.

    python bench/bench_memory.py [--records N] [--chunks K] [--workers W]
                                 [--repeat R] [--only NAME,...] [--json]

The job is examples/demo.py's: N (600,000) synthetic sales records as text
in K (8) chunks, each chunk parsed and aggregated in pure Python
(examples/demo_tasks.py), the parts merged. Each variant runs in a fresh
child process, so peaks do not mix. The child imports everything every
variant needs and builds the text first, then waits; its PSS then is the
baseline. A sampler thread here (multigil._memory.PeakSampler), outside the
measured tree, sums /proc/PID/smaps_rollup Pss over the child and all its
descendants (pool processes, forkserver, resource tracker) every 5 ms plus
the time a sample takes (about 1 ms a process) during the job (executor start-up and shutdown
included) and keeps the peak. PSS splits a
page shared by n processes n ways, so pages a forked worker shares with its
parent count once.

Columns: peak PSS of the tree; added = peak - baseline; added relative to
serial's; wall time of the job in the child. With --repeat, the medians.
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
sys.path.insert(0, ROOT)

from multigil import _memory  # noqa: E402
EXAMPLES = os.path.join(ROOT, "examples")
SAMPLE_S = 0.005


# ---- the measured child ----

def child_main(variant, records, chunks, workers):
    sys.path[:0] = [ROOT, EXAMPLES]
    import concurrent.futures as cf
    import concurrent.futures.process  # noqa: F401
    import gc

    import multigil
    from multigil.bench import executors
    from demo import split_lines
    from demo_tasks import aggregate, make_lines, merge
    multigil.Pool  # noqa: B018  (loads multigil.pool in every variant)
    if hasattr(cf, "InterpreterPoolExecutor"):
        cf.InterpreterPoolExecutor  # noqa: B018  (same: loads its module)
    parts = split_lines(make_lines(records), chunks)
    gc.collect()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    t = time.perf_counter()
    if variant == "serial":
        out = merge(map(aggregate, parts))
    else:
        ex = executors.make_executor(variant, workers)
        try:
            out = merge(ex.map(aggregate, parts))
        finally:
            ex.shutdown()
    dt = time.perf_counter() - t
    n, revenue, units = out
    print(json.dumps({"seconds": dt, "digest": [
        n, round(sum(revenue.values()), 2), sum(units.values()),
        len(revenue), len(units)]}), flush=True)
    sys.stdin.read()  # the parent closes stdin once it stopped sampling
    return 0


# ---- the sampler (multigil._memory), in this (the bench) process ----

def tree_pss_kb(pid):
    return (_memory.tree_pss(pid) or 0) // 1024


def measure(variant, a):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", variant,
           "--records", str(a.records), "--chunks", str(a.chunks),
           "--workers", str(a.workers)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{variant}: child did not start")
        base = tree_pss_kb(proc.pid)
        sampler = _memory.PeakSampler(proc.pid, SAMPLE_S).start()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        sampler.stop()
        if not line:
            raise RuntimeError(f"{variant}: child died during the job")
        res = json.loads(line)
        proc.stdin.close()
        if proc.wait(timeout=60) != 0:
            raise RuntimeError(f"{variant}: child exited {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    peak = max((sampler.peak or 0) // 1024, base)
    return {"base_kb": base, "peak_kb": peak, "added_kb": peak - base,
            "seconds": res["seconds"], "digest": res["digest"],
            "samples": sampler.samples}


def variants():
    import concurrent.futures as cf
    out = ["serial", "threads", "process-fork", "process-forkserver",
           "process-spawn"]
    if hasattr(cf, "InterpreterPoolExecutor"):
        out.append("stdlib-interpreters")
    out.append("multigil")
    return out


def run(a):
    names = variants()
    if a.only:
        names = [n for n in names if n in a.only.split(",")]
        if "serial" not in names:
            names.insert(0, "serial")
    rows = {}
    for name in names:
        runs = [measure(name, a) for _ in range(a.repeat)]
        med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
        rows[name] = {"base_kb": med("base_kb"), "peak_kb": med("peak_kb"),
                      "added_kb": med("added_kb"), "seconds": med("seconds"),
                      "digest": runs[0]["digest"],
                      "samples": min(r["samples"] for r in runs)}
    ref = rows["serial"]["digest"]
    bad = [n for n, r in rows.items() if r["digest"] != ref]
    return rows, bad


def report(rows, a):
    print(f"Memory: {a.records:,} records in {a.chunks} chunks, "
          f"{a.workers} workers, CPython {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; PSS of the process tree, MB"
          + (f", median of {a.repeat}" if a.repeat > 1 else ""))
    serial = rows["serial"]["added_kb"] or 1
    print(f"  {'variant':<22}{'baseline':>10}{'peak':>10}{'added':>10}"
          f"{'vs serial':>11}{'seconds':>10}")
    for name, r in rows.items():
        print(f"  {name:<22}{r['base_kb'] / 1024:>10.1f}"
              f"{r['peak_kb'] / 1024:>10.1f}{r['added_kb'] / 1024:>10.1f}"
              f"{r['added_kb'] / serial:>10.1f}x{r['seconds']:>10.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=600_000)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default="",
                    help="comma-separated variants (serial always runs)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child_main(a.child, a.records, a.chunks, a.workers)
    if a.repeat < 1 or a.records < a.chunks or a.chunks < 1:
        ap.error("need --repeat >= 1 and --records >= --chunks >= 1")
    rows, bad = run(a)
    if a.json:
        print(json.dumps({"python": sys.version.split()[0],
                          "cpus": os.cpu_count(), "records": a.records,
                          "chunks": a.chunks, "workers": a.workers,
                          "repeat": a.repeat, "rows": rows}, indent=1))
    else:
        report(rows, a)
    if bad:
        print(f"bench_memory: different result from: {', '.join(bad)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
