"""Normalise a 10,000,000-value array in place, (x - mean) / std, in
parallel worker interpreters, and verify it.

Pass 1: each worker computes kernels.stats of its chunk (a view, no copy)
and the main interpreter merges them. Pass 2: each worker subtracts the mean
and divides by the std on its own chunk, in place, in the shared memory.
Each chunk has a single writer, so no locking is needed.

    python examples/normalize.py [--n 10000000] [--workers 2]
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
    x = random_column(args.n)
    original = x[:: max(1, args.n // 1000)].copy()  # a sample to verify
    with mg.Pool(args.workers) as pool:
        # Warm the workers (interpreters, imports, caches): time the work only.
        pool.broadcast(kernels.stats, x[:1])
        t0 = time.perf_counter()
        chunks = x.split(args.workers)
        st = kernels.combine_stats(pool.map(kernels.stats, chunks))
        mean, std = st.mean, math.sqrt(st.m2 / st.count)
        list(pool.starmap(kernels.sub, [(c, mean) for c in chunks]))
        list(pool.starmap(kernels.div, [(c, std) for c in chunks]))
        elapsed = time.perf_counter() - t0
    after = kernels.stats(x)
    sample = x[:: max(1, args.n // 1000)]
    expected = [(v - mean) / std for v in original]
    ok = (abs(after.mean) < 1e-9
          and math.isclose(after.m2 / after.count, 1.0, rel_tol=1e-9)
          and all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
                  for a, b in zip(sample, expected)))
    print(f"n={args.n:,} workers={args.workers} mean={mean:.6f} "
          f"std={std:.6f} -> mean={after.mean:.2e} "
          f"var={after.m2 / after.count:.12f} ({elapsed * 1e3:.1f} ms)")
    print("verified" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
