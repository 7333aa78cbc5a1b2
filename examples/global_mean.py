"""Global mean and variance of a 10,000,000-value column, computed in
parallel chunks and merged exactly with combine_stats.

Each worker interpreter gets a view of one chunk (a handle: no copy),
computes kernels.stats on it in C with its own GIL, and returns a small
Stats tuple; the main interpreter merges them with Chan's parallel formula
and checks the result against the serial computation.

    python examples/global_mean.py [--n 10000000] [--workers 2]
"""
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import multigil as mg  # noqa: E402
from multigil import kernels  # noqa: E402

from _data import parse_args, random_column  # noqa: E402


def main(argv=None):
    args = parse_args(__doc__, argv)
    col = random_column(args.n)
    with mg.Pool(args.workers) as pool:
        # Warm the workers (interpreters, imports, caches): time the work only.
        pool.broadcast(kernels.stats, col[:1])
        t0 = time.perf_counter()
        parts = list(pool.map(kernels.stats, col.split(4 * args.workers)))
        merged = kernels.combine_stats(parts)
        t_par = time.perf_counter() - t0
    t0 = time.perf_counter()
    serial = kernels.stats(col)
    t_ser = time.perf_counter() - t0
    var_p = merged.m2 / merged.count
    var_s = serial.m2 / serial.count
    print(f"n={args.n:,} chunks={len(parts)} workers={args.workers}")
    print(f"parallel: mean={merged.mean:.12f} var={var_p:.9f} "
          f"({t_par * 1e3:.1f} ms)")
    print(f"serial:   mean={serial.mean:.12f} var={var_s:.9f} "
          f"({t_ser * 1e3:.1f} ms)")
    ok = (merged.count == serial.count
          and math.isclose(merged.mean, serial.mean, rel_tol=1e-12)
          and math.isclose(var_p, var_s, rel_tol=1e-10)
          and (merged.min, merged.max) == (serial.min, serial.max))
    print("match" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
