"""A folder of CSV files into one Table, a per-group aggregate in the
workers, merged, and handed to pandas (or pyarrow) without a copy.

read_csv parses the files in parallel in C into shared column blocks;
t.split(k) makes k row-range views; each worker interpreter receives its
view as handles (no copy of a column) and aggregates its rows; the main
interpreter merges the partial results, checks them against a serial run
over the whole table, and exports the result through the Arrow stream
interface (the consumer's buffers are the shared blocks).

    python examples/csv_groupby.py [--dir D] [--files 8] [--rows 200000]
                                   [--workers 2]
"""
import argparse
import ctypes
import math
import os
import random
import sys
import tempfile
import time

import multigil as mg

KEYS = ["north", "south", "east", "west", "centre, old town", 'the "new" port']


def make_folder(d, nfiles, rows, seed=7):
    rnd = random.Random(seed)
    for k in range(nfiles):
        with open(os.path.join(d, f"sales_{k:02d}.csv"), "w", newline="") as f:
            f.write("region,qty,price,note\n")
            for i in range(rows // nfiles):
                key = rnd.choice(KEYS)
                quoted = '"' + key.replace('"', '""') + '"'
                note = "" if rnd.random() < 0.5 else f'"line\nbreak {i}"'
                f.write(f"{quoted},{rnd.randint(1, 20)},"
                        f"{rnd.uniform(0.5, 99.5):.2f},{note}\n")


def aggregate(t):
    """{region: [qty total, revenue, rows]} of the rows of t."""
    out = {}
    regions = t["region"].to_pylist()
    qty = t["qty"].to_pylist()
    price = t["price"].to_pylist()
    for r, q, p in zip(regions, qty, price):
        acc = out.setdefault(r, [0, 0.0, 0])
        acc[0] += q
        acc[1] += q * p
        acc[2] += 1
    return out


def merge(parts):
    out = {}
    for part in parts:
        for r, (q, rev, n) in part.items():
            acc = out.setdefault(r, [0, 0.0, 0])
            acc[0] += q
            acc[1] += rev
            acc[2] += n
    return out


def address(buf):
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--rows", type=int,
                    default=int(os.environ.get("MULTIGIL_EXAMPLE_N", 200000)))
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    if a.dir is None:
        with tempfile.TemporaryDirectory(prefix="csv_groupby_") as d:
            return run(a, d)
    return run(a, a.dir)


def run(a, d):
    if not any(n.endswith(".csv") for n in os.listdir(d)):
        make_folder(d, a.files, a.rows)
    with mg.Pool(a.workers) as pool:
        t0 = time.perf_counter()
        t = mg.read_csv(os.path.join(d, "*.csv"), pool=pool)
        t1 = time.perf_counter()
        parts = list(pool.map(aggregate, t.split(4 * a.workers)))
        merged = merge(parts)
        t2 = time.perf_counter()
    serial = aggregate(t)
    print(f"{t.num_rows:,} rows from {a.files} files: read {t1 - t0:.3f} s, "
          f"aggregate in {a.workers} workers {t2 - t1:.3f} s")
    ok = sorted(merged) == sorted(serial) and all(
        merged[k][0] == serial[k][0] and merged[k][2] == serial[k][2]
        and math.isclose(merged[k][1], serial[k][1], rel_tol=1e-9)
        for k in serial)
    names = sorted(merged)
    result = mg.Table.from_pydict({
        "region": names,
        "qty": [merged[k][0] for k in names],
        "revenue": [merged[k][1] for k in names],
        "rows": [merged[k][2] for k in names]})
    try:
        import pandas as pd
        df = result.to_pandas(types_mapper=pd.ArrowDtype)
        print(df.to_string(index=False))
    except ImportError:
        df = None
    try:
        import pyarrow as pa
        at = pa.table(result)
        same = at.column("qty").chunks[0].buffers()[1].address == \
            address(result["qty"].values)
        print("handed over without a copy" if same else "COPIED")
        ok = ok and same
        if df is None:
            print(at)
    except ImportError:
        print("(pyarrow not installed: no Arrow hand-off)")
    print("verified" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
