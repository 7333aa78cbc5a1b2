"""An ETL pipeline on mg.Pipeline: extract (read the lines of a generated
file), transform (CPU-heavy pure Python per record), load (aggregate in the
main interpreter). Checked against a serial loop doing the same work.

    python examples/etl_pipeline.py [--records N] [--workers K]
"""
import argparse
import os
import sys
import tempfile
import time

import multigil as mg


def write_input(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(f"{i},sensor{i % 13},{(i * 2654435761) % 100000}\n")


def extract(path):
    with open(path) as f:
        for line in f:
            yield line


def parse(line):
    i, sensor, raw = line.rstrip("\n").split(",")
    return int(i), sensor, int(raw)


def transform(rec):
    """CPU-heavy pure Python: an iterated integer mix of the reading."""
    i, sensor, raw = rec
    h = raw
    for _ in range(200):
        h = (h * 1103515245 + 12345) & 0x7FFFFFFF
    return sensor, h % 1000


def transform_lines(lines):
    return [transform(parse(line)) for line in lines]


def load(stream):
    totals = {}
    for sensor, value in stream:
        c, s = totals.get(sensor, (0, 0))
        totals[sensor] = (c + 1, s + value)
    return sorted(totals.items())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int,
                    default=min(int(os.environ.get("MULTIGIL_EXAMPLE_N",
                                                   50000)), 50000))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "input.csv")
        write_input(path, args.records)
        t0 = time.perf_counter()
        expected = load(transform(parse(line)) for line in extract(path))
        t1 = time.perf_counter()
        pipe = (mg.Pipeline(extract(path))
                .batch(256)  # fewer, larger messages between interpreters
                .map(transform_lines, workers=args.workers)
                .unbatch())
        got = load(pipe)
        t2 = time.perf_counter()
    print(f"serial {t1 - t0:.2f} s, pipeline {t2 - t1:.2f} s "
          f"({args.records} records, {args.workers} transform workers)")
    ok = got == expected
    print("verified" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
