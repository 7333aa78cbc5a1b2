"""Round-trip latency benchmark: `submit(f, i).result()` on multigil.Pool vs
concurrent.futures.ThreadPoolExecutor, 1 and 2 workers, on an idle machine
and with one CPU-bound neighbour process, side by side in one run.

    python bench/bench_latency.py [--runs 7] [--calls 2000] [--only idle|busy]
                                  [--no-cpu] [--json]

Each cell is the median over `runs` runs of the per-run median round trip
(each run: `calls` sequential round trips, timed one by one); the range
shows the spread of the run medians (a bimodal cell shows as a wide range).
The executors are measured alternately, run by run, so that drift in the
machine's load hits both alike. The neighbour is a `python -c 'while True:
pass'` subprocess started here and killed at the end.

Then a CPU-bound throughput check (the one of `python -m multigil bench`):
16 pure-Python tasks of ~0.1 s on 2 workers vs serial, so that spinning is
seen not to cost throughput. Timings only; nothing here is asserted.
"""
import argparse
import concurrent.futures as cf
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import multigil  # noqa: E402
from multigil.bench import pool as _bench  # noqa: E402
from multigil.bench.work import noop  # noqa: E402

KINDS = ("multigil", "threads")


def start_neighbour():
    """A CPU-bound process beside the benchmark; returns it once it runs."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.3)  # let it start and become a steady CPU hog
    if proc.poll() is not None:
        raise RuntimeError("the CPU-bound neighbour did not start")
    return proc


def stop_neighbour(proc):
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


def one_run(ex, calls):
    """(mean, median) round trip in seconds of `calls` sequential round
    trips, each timed on its own."""
    clock = time.perf_counter_ns
    times = []
    for i in range(calls):
        t = clock()
        ex.submit(noop, i).result()
        times.append(clock() - t)
    return sum(times) * 1e-9 / calls, statistics.median(times) * 1e-9


def measure_case(workers, runs, calls):
    """{kind: [run medians]} for both executors, measured alternately."""
    exs = {k: _bench.make_executor(k, workers) for k in KINDS}
    try:
        for ex in exs.values():
            _bench.warm(ex, workers)
            one_run(ex, calls // 10 or 1)
        out = {k: [] for k in KINDS}
        for _ in range(runs):
            for k in KINDS:
                out[k].append(one_run(exs[k], calls))
        return out
    finally:
        for ex in exs.values():
            _bench.shutdown(ex)


def measure(runs, calls, cases=("idle", "busy neighbour")):
    res = {}
    for case in cases:
        proc = start_neighbour() if case != "idle" else None
        try:
            for workers in (1, 2):
                res[f"{case}, {workers} worker{'s' if workers > 1 else ''}"] = \
                    measure_case(workers, runs, calls)
        finally:
            stop_neighbour(proc)
    return res


def us(v):
    return f"{v * 1e6:.1f}"


def _table(res, which, title):
    print(title)
    print(f"  {'case':<26}{'multigil us':>12}{'range':>14}"
          f"{'threads us':>12}{'range':>14}{'threads/mg':>12}")
    for case, cell in res.items():
        mg = [r[which] for r in cell["multigil"]]
        th = [r[which] for r in cell["threads"]]
        mmed, tmed = statistics.median(mg), statistics.median(th)
        print(f"  {case:<26}{us(mmed):>12}"
              f"{us(min(mg)) + '-' + us(max(mg)):>14}"
              f"{us(tmed):>12}{us(min(th)) + '-' + us(max(th)):>14}"
              f"{tmed / mmed:>11.2f}x")


def report(res, runs, calls):
    print(f"Round trip of submit(noop, i).result(): CPython "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, {runs} runs of "
          f"{calls} calls; each cell: median over the runs, and their range")
    _table(res, 0, "\nMean round trip of a run (run time / calls):")
    _table(res, 1, "\nMedian round trip of a run (per-call median):")
    print("  (threads/mg > 1: multigil's round trip is the shorter one)")


def cpu_check(workers=2):
    n = _bench.calibrate_cpu_task(0.1)
    rows = _bench.bench_cpu(["multigil"], workers, n)
    print(f"\nCPU-bound: {_bench.N_CPU_TASKS} tasks of ~0.1 s, {workers} "
          f"workers, best of 3")
    for k, v in rows.items():
        print(f"  {k:<26}{v:>10.3f} s{rows['serial'] / v:>10.2f}x")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--only", choices=("idle", "busy"),
                    help="measure only the idle or the busy-neighbour case")
    ap.add_argument("--no-cpu", action="store_true",
                    help="skip the CPU-bound throughput check")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    cases = {"idle": ("idle",), "busy": ("busy neighbour",),
             None: ("idle", "busy neighbour")}[a.only]
    res = measure(a.runs, a.calls, cases)
    if a.json:
        cpu = None
        if not a.no_cpu:
            n = _bench.calibrate_cpu_task(0.1)
            cpu = _bench.bench_cpu(["multigil"], 2, n)
        print(json.dumps({"python": sys.version.split()[0],
                          "round_trip": res, "cpu": cpu}, indent=2))
        return
    report(res, a.runs, a.calls)
    if not a.no_cpu:
        cpu_check()

if __name__ == "__main__":
    main()
