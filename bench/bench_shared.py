"""bench_shared.py - SharedArray and its kernels against the hardware and
against process-based parallelism, side by side, as a table of ratios.

    python bench/bench_shared.py [--n 100000000] [--proc-n 10000000]

1. Hand-off: give a task an n-value f8 array (800 MB at the default n) and
   get a small result back, versus giving it a small int: multigil (a
   handle, no copy) vs ProcessPoolExecutor (pickle of the bytes through a
   pipe). The process pool uses --proc-n values and its time is scaled
   linearly to n (stated in the table).
2. sum of n f8 on one core vs memcpy of the same bytes (GB/s of the array
   size; memcpy reads and writes, so it moves twice the bytes), and the
   sum split over 2 workers vs 2 plain C threads summing the halves.
3. Normalisation (x - mean) / std in place: 2 workers vs 1 worker vs
   2 plain C threads doing the same two in-place passes (sub, then div;
   the mean and std are computed once before timing).

Arrays reach workers as handles (a block reference and a view
description, never the data).
No timing here is asserted anywhere; tests never time things.
"""
import argparse
import math
import os
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import multigil as mg  # noqa: E402
from multigil import _core, kernels  # noqa: E402


def best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _normalize_view(view, mean, std):
    kernels.sub(view, mean)
    kernels.div(view, std)


def _nbytes_of(data):
    return len(data)


def _ident(x):
    return x


def section_handoff(a, proc_n, out):
    n = len(a)
    gb = a.nbytes / 1e9
    with mg.Pool(1) as pool:
        pool.submit(len, a).result()
        t_arr = best(lambda: pool.submit(len, a).result(), 20)
        t_int = best(lambda: pool.submit(abs, 1).result(), 20)
    out.append(("hand-off", f"multigil (handles): {gb:.1f} GB array -> task",
                f"{t_arr * 1e6:.0f} us", f"{t_arr / t_int:.2f}x a small int"))
    small = mg.SharedArray(proc_n)
    payload = bytes(small)
    with ProcessPoolExecutor(1) as ex:
        ex.submit(_ident, 1).result()
        t_int = best(lambda: ex.submit(abs, 1).result(), 5)
        t_b = best(lambda: ex.submit(_nbytes_of, payload).result(), 3)
    scale = n / proc_n
    out.append(("hand-off",
                f"ProcessPool+pickle: {proc_n * 8 / 1e9:.2f} GB, "
                f"scaled x{scale:g}", f"{t_b * scale * 1e3:.0f} ms",
                f"{t_b * scale / t_int:.0f}x a small int"))
    t_pickle = best(lambda: pickle.loads(pickle.dumps(payload, 5)), 3)
    out.append(("hand-off", "pickle dumps+loads alone (scaled)",
                f"{t_pickle * scale * 1e3:.0f} ms", ""))


def section_sum(a, out):
    gb = a.nbytes / 1e9
    dst = mg.SharedArray(len(a))
    t_copy = best(lambda: _core._memcpy_bench(dst, a))
    dst = None  # free the 0.8 GB copy before the next measurements
    t_sum = best(lambda: kernels.sum(a))
    t_c2 = best(lambda: _core._threads_sum_bench(a, 2))
    out.append(("sum", "memcpy (1 core)", f"{gb / t_copy:.1f} GB/s", "1.00"))
    out.append(("sum", "kernels.sum (1 core)", f"{gb / t_sum:.1f} GB/s",
                f"{t_copy / t_sum:.2f} of memcpy (target >= 0.50)"))
    out.append(("sum", "2 plain C threads", f"{gb / t_c2:.1f} GB/s",
                f"{t_sum / t_c2:.2f}x 1 core"))
    parts = a.split(2)

    def workers_sum(pool):
        futs = [pool.submit(kernels.sum, p) for p in parts]
        return math.fsum(f.result() for f in futs)
    with mg.Pool(2) as pool:
        workers_sum(pool)
        t_w2 = best(lambda: workers_sum(pool))
    out.append(("sum", "2 workers (handles)", f"{gb / t_w2:.1f} GB/s",
                f"{t_c2 / t_w2:.2f} of 2 C threads (target >= 0.90)"))


def _apply_workers(pool, chunks, mean, std):
    futs = [pool.submit(_normalize_view, c, mean, std)
            for c in chunks]
    for f in futs:
        f.result()


def section_normalize(a, out):
    """Times the in-place pass (x - mean) / std only, for every variant;
    the mean and std come from one stats() before timing."""
    gb = a.nbytes / 1e9
    st = kernels.stats(a)
    mean, std = st.mean, math.sqrt(st.m2 / st.count) or 1.0
    t_c1 = best(lambda: _core._threads_normalize_bench(a, 1, mean, std))
    t_c2 = best(lambda: _core._threads_normalize_bench(a, 2, mean, std))
    out.append(("normalize", "1 plain C thread", f"{t_c1 * 1e3:.0f} ms",
                f"{gb / t_c1:.1f} GB/s"))
    out.append(("normalize", "2 plain C threads", f"{t_c2 * 1e3:.0f} ms",
                f"{t_c1 / t_c2:.2f}x 1 thread"))
    times = {}
    for k in (1, 2):
        with mg.Pool(k) as pool:
            chunks = a.split(k)
            _apply_workers(pool, chunks, mean, std)
            times[k] = best(lambda: _apply_workers(pool, chunks, mean, std))
    out.append(("normalize", "1 worker (handles)",
                f"{times[1] * 1e3:.0f} ms", ""))
    out.append(("normalize", "2 workers (handles)", f"{times[2] * 1e3:.0f} ms",
                f"{times[1] / times[2]:.2f}x 1 worker (target >= 1.6), "
                f"{t_c2 / times[2]:.2f} of 2 C threads (target >= 0.90)"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000_000)
    p.add_argument("--proc-n", type=int, default=10_000_000)
    args = p.parse_args(argv)
    a = mg.SharedArray(args.n)
    a.fill(1.0)
    out = []
    section_handoff(a, min(args.proc_n, args.n), out)
    section_sum(a, out)
    section_normalize(a, out)
    print(f"multigil {mg.__version__}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, n={args.n:,} f8 ({a.nbytes / 1e9:.2f} GB)")
    w = [max(len(r[i]) for r in out) for i in range(4)]
    for row in out:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(row)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
