"""multigil's main job (`make demo`): a parallel data job measured end to
end on this machine, with the figures it measured.

1. The benchmark of `python -m multigil bench` at demo size: it generates a
   CSV data set (2,000,000 rows by default), then every candidate (serial,
   threads, processes with fork / spawn / forkserver, the stdlib's
   interpreter pool where this Python has one, multigil with the codec,
   multigil with read_csv into shared columns) loads it in parallel,
   computes per-group aggregates in pure Python and combines them, each in
   a fresh process whose whole process tree is sampled for peak PSS; then
   a pure-CPU job. Every result is checked against the serial one. It
   prints the table (time, speed-up, peak memory) and writes a chart.
2. Bulk numbers in shared memory: a float64 column (mg.SharedArray)
   reduced and normalised in place by C kernels inside the workers.

    python examples/demo.py [--rows N] [--workers W] [--column N]
                            [--svg PATH] [--repeats R]
"""
import argparse
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import multigil  # noqa: E402
from multigil.bench import svg, workloads  # noqa: E402


def machine():
    """One line: CPU model, CPUs usable, memory, OS, Python."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{model}, {len(os.sched_getaffinity(0))} CPUs usable{mem}, "
            f"{platform.system()} {platform.release()}, CPython "
            f"{platform.python_version()}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--workers", type=int,
                    default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--column", type=int, default=10_000_000,
                    help="values in the shared-memory column")
    ap.add_argument("--svg", default=os.path.join(
        os.path.dirname(HERE), "build", "demo-bench.svg"))
    a = ap.parse_args(argv)
    start = time.perf_counter()
    print(f"multigil {multigil.__version__} demo\nmachine: {machine()}\n",
          flush=True)

    res = workloads.run(rows=a.rows, workers=a.workers, repeats=a.repeats,
                        cpu_seconds=0.25 if a.rows >= 1_000_000 else 0.06)
    os.makedirs(os.path.dirname(os.path.abspath(a.svg)), exist_ok=True)
    svg.write(res, a.svg)
    print(workloads.report(res))
    print(f"chart: {os.path.abspath(a.svg)}\n", flush=True)
    failed = [r["label"] for wl in res["workloads"].values()
              for r in wl["rows"] if "error" in r]

    # Part 2: bulk numbers in shared memory, processed by C kernels inside
    # the workers; arrays cross as handles, never copied.
    import global_mean
    import normalize
    print(f"Shared memory: a {a.column:,}-value float64 column "
          f"(mg.SharedArray), {a.workers} workers")
    print("  global mean/variance from per-chunk partial moments:")
    rc = global_mean.main(["--n", str(a.column), "--workers", str(a.workers)])
    print("  (x - mean) / std, in place, in parallel:")
    rc |= normalize.main(["--n", str(a.column), "--workers", str(a.workers)])
    print(f"\ndemo: {time.perf_counter() - start:.0f} s in all")
    if failed:
        sys.exit(f"demo: these runs failed: {', '.join(failed)}")
    if rc:
        sys.exit("demo: a shared-memory example did not verify")
    print("verified")


if __name__ == "__main__":
    main()
