"""multigil demo: a CPU-bound pure-Python data job run serially, with
threads, with processes and with multigil, side by side, with the figures
measured in this run.

The job: 600,000 synthetic sales records as text, parsed and aggregated in
chunks (revenue by month and store, units by product), then merged.

    python examples/demo.py [--records N] [--workers W]
"""
import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import multigil  # noqa: E402
from demo_tasks import aggregate, make_lines, merge  # noqa: E402


def split_lines(text, parts):
    lines = text.split("\n")
    k = -(-len(lines) // parts)
    return ["\n".join(lines[i:i + k]) for i in range(0, len(lines), k)]


def timed(label, fn, results):
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    results.append((label, dt, out))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=600_000)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--chunks", type=int, default=0)
    ap.add_argument("--column", type=int, default=10_000_000,
                    help="values in the shared-memory column")
    a = ap.parse_args()
    w = a.workers
    chunks = split_lines(make_lines(a.records), a.chunks or w * 4)
    mb = sum(len(c) for c in chunks) / 1e6
    print(f"multigil {multigil.__version__} demo on CPython "
          f"{sys.version.split()[0]}: {a.records:,} records ({mb:.1f} MB of "
          f"text) in {len(chunks)} chunks, {w} workers, "
          f"{os.cpu_count()} CPUs\n")

    results = []
    timed("serial (one interpreter)",
          lambda: merge(map(aggregate, chunks)), results)
    with cf.ThreadPoolExecutor(w) as ex:
        timed("threads (one GIL)",
              lambda: merge(ex.map(aggregate, chunks)), results)
    for method in ("fork", "spawn"):
        t = time.perf_counter()
        with cf.ProcessPoolExecutor(w, mp_context=mp.get_context(method)) \
                as ex:
            out = merge(ex.map(aggregate, chunks))
        results.append((f"processes ({method}), incl. start-up",
                        time.perf_counter() - t, out))
    t = time.perf_counter()
    with multigil.Pool(w) as pool:
        out = merge(pool.map(aggregate, chunks))
    results.append(("multigil.Pool, incl. start-up", time.perf_counter() - t,
                    out))
    with multigil.Pool(w) as pool:
        pool.broadcast(len, "warm")
        timed("multigil.Pool, warm",
              lambda: merge(pool.map(aggregate, chunks)), results)

    serial = results[0][1]
    reference = results[0][2]
    print(f"  {'how':<40}{'seconds':>10}{'speedup':>10}  same result")
    for label, dt, out in results:
        same = (out[0] == reference[0] and out[2] == reference[2]
                and all(abs(out[1][k] - v) < 1e-6 * max(1.0, abs(v))
                        for k, v in reference[1].items()))
        print(f"  {label:<40}{dt:>10.3f}{serial / dt:>9.2f}x  "
              f"{'yes' if same else 'NO'}")
        if not same:
            sys.exit(f"demo: {label} gave a different result")
    n, revenue, units = reference
    top = max(revenue.items(), key=lambda kv: kv[1])
    print(f"\n  {n:,} records; best month/store: {top[0][0]} {top[0][1]} "
          f"({top[1]:,.2f}); {len(units)} products")

    # Part 2: bulk numbers in shared memory, processed by C kernels inside
    # the workers; arrays cross as handles, never copied.
    import global_mean
    import normalize
    print(f"\nShared memory: a {a.column:,}-value float64 column "
          f"(mg.SharedArray), {w} workers")
    print("  global mean/variance from per-chunk partial moments:")
    rc = global_mean.main(["--n", str(a.column), "--workers", str(w)])
    print("  (x - mean) / std, in place, in parallel:")
    rc |= normalize.main(["--n", str(a.column), "--workers", str(w)])
    if rc:
        sys.exit("demo: a shared-memory example did not verify")


if __name__ == "__main__":
    main()
