"""Pool benchmark: multigil vs threads, processes (fork, spawn) and the
stdlib's interpreter pools, side by side in one run. Prints a table.

    python bench/bench_pool.py [--workers N] [--quick] [--json]

(the same as ``python -m multigil bench --pool``)
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from multigil.bench import pool  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    pool.run(a.workers, a.quick, a.json)
