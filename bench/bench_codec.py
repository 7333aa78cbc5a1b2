"""bench_codec.py - multigil's C codec vs pickle, side by side.

    python bench/bench_codec.py [--repeat N] [--no-pool]

Part 1: encode+decode of typical payloads in one interpreter, best of N:
the codec as a pool task uses it (_core._roundtrip: into a transport
buffer and back), dumps+loads through bytes, and pickle (highest
protocol). For 10 MB bytes also one memcpy-bound copy,
bytes(bytearray(data)) (two copies, like any encode+decode).
Part 2: pool round trips: submit(f, 1).result() latency, and map over
range(100_000) with a module-level function and with a lambda.
Run part 2 with PYTHONPATH pointing at another build (e.g. the pickle
codec of an older commit) to compare; a build that cannot send lambdas
prints n/a. Timings vary with machine load: compare within one run.
"""
import argparse
import os
import pickle
import sys
import time

# Appended, so that PYTHONPATH can point at another build to compare.
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import multigil as mg  # noqa: E402
from multigil import _core  # noqa: E402

HAS_CODEC = hasattr(_core, "dumps")


def ident(x):
    return x


def best(fn, repeat, number=1):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def payloads():
    return [
        ("100k small ints", list(range(100_000))),
        ("100k floats", [i * 0.37 for i in range(100_000)]),
        ("10k short str", [f"item-{i}" for i in range(10_000)]),
        ("10k dicts x5", [{"id": i, "name": f"user{i}", "score": i * 0.5,
                           "age": i % 90, "city": "Paris"}
                          for i in range(10_000)]),
        ("10 MB bytes", bytes(range(256)) * (10 * 4096)),
    ]


def fmt(t):
    return f"{t * 1e3:9.3f} ms"


def bench_values(repeat):
    proto = pickle.HIGHEST_PROTOCOL
    print(f"Python {sys.version.split()[0]}, best of {repeat}; "
          f"times are encode+decode per payload\n")
    print(f"{'payload':<16}{'codec (buf)':>13}{'dumps+loads':>13}"
          f"{'pickle':>13}{'pickle/codec':>14}{'memcpy x2':>13}"
          f"{'codec/memcpy':>14}")
    for name, v in payloads():
        assert _core._roundtrip(v) == v
        t_codec = best(lambda: _core._roundtrip(v), repeat)
        t_bytes = best(lambda: _core.loads(_core.dumps(v)), repeat)
        t_pickle = best(lambda: pickle.loads(pickle.dumps(v, proto)),
                        repeat)
        mem = ratio = ""
        if isinstance(v, bytes):
            t_mem = best(lambda: bytes(bytearray(v)), repeat)
            mem = fmt(t_mem)
            ratio = f"{t_codec / t_mem:13.2f}x"
        print(f"{name:<16}{fmt(t_codec):>13}{fmt(t_bytes):>13}"
              f"{fmt(t_pickle):>13}{t_pickle / t_codec:13.2f}x"
              f"{mem:>13}{ratio:>14}")


def bench_pool(repeat):
    import bench_codec as me  # a module-level function, by reference
    print(f"\npool ({'C codec' if HAS_CODEC else 'pickle codec'} build), "
          f"2 workers, best of {repeat}")
    with mg.Pool(2) as pool:
        pool.submit(me.ident, 1).result()
        n = 2000
        t = best(lambda: [pool.submit(me.ident, 1).result()
                          for _ in range(n)], repeat) / n
        print(f"  submit(f, 1).result() round trip   {t * 1e6:9.1f} us")
        data = range(100_000)
        t = best(lambda: list(pool.map(me.ident, data)), repeat)
        print(f"  map(module function, 100k)         {t * 1e3:9.1f} ms")
        try:
            f = (lambda x: x)
            pool.submit(f, 1).result()
            t = best(lambda: list(pool.map(f, data)), repeat)
            print(f"  map(lambda, 100k)                  {t * 1e3:9.1f} ms")
        except mg.NotShareableError:
            print("  map(lambda, 100k)                        n/a "
                  "(this build cannot send lambdas)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-pool", action="store_true")
    ap.add_argument("--pool-only", action="store_true")
    a = ap.parse_args()
    if HAS_CODEC and not a.pool_only:
        bench_values(a.repeat)
    if not a.no_pool:
        bench_pool(a.repeat)


if __name__ == "__main__":
    main()
