"""One measured run of a benchmark workload, in a process of its own:

    python -m multigil.bench.child SPEC_JSON

SPEC: {"kind": a candidate of executors.make_executor, "serial" or
"multigil-columns", "workload": "data" or "cpu", "workers": n, and for
"data" "csv" (a file of CSV rows), "chunks" (a list of [offset, size]
byte ranges of it) and "chunk_rows" (rows per chunk), for "cpu" "cpu_n"
and "cpu_tasks"}. The input is read before the clock starts; the clock
covers creating the pool, running every task, combining, and shutting the
pool down. Except "multigil-columns": its clock also covers reading the
file, which multigil.read_csv parses into shared columns in C; the table
is sliced at the chunks' row boundaries, so each part holds the same rows
as the others' chunks. Prints one JSON line: {"seconds", "result",
"gil"}. The parent samples this process tree's memory (multigil._memory)
from outside.
"""
import json
import sys
import time


def _read_chunks(path, chunks):
    out = []
    with open(path, "rb") as f:
        for offset, size in chunks:
            f.seek(offset)
            out.append(f.read(size).decode("ascii"))
    return out


def _run_tasks(kind, workers, fn, items):
    if kind == "serial":
        return [fn(x) for x in items]
    from .executors import make_executor
    ex = make_executor(kind, workers)
    try:
        return list(ex.map(fn, items))
    finally:
        ex.shutdown()


def read_columns(source, pool):
    """The data set's file (or bytes) as a multigil.Table of the columns
    the aggregation uses (the file has no header line)."""
    import multigil
    from .work import HEADER
    return multigil.read_csv(
        source, pool=pool, header=None, names=HEADER.strip().split(","),
        columns=["group", "value", "qty"],
        dtypes={"group": "str", "value": "f8", "qty": "i8"},
        null_values=())


def _run_columns(path, chunk_rows, workers):
    import multigil
    from .work import aggregate_columns
    with multigil.Pool(workers) as pool:
        table = read_columns(path, pool)
        parts = [table.slice(s, s + chunk_rows)
                 for s in range(0, len(table), chunk_rows)]
        return list(pool.map(aggregate_columns, parts))


def run(spec):
    from . import work
    kind, workers = spec["kind"], spec["workers"]
    if kind == "multigil-columns":
        t = time.perf_counter()
        parts = _run_columns(spec["csv"], spec["chunk_rows"], workers)
        result = work.combine(parts)
        seconds = time.perf_counter() - t
        return {"seconds": seconds, "result": result, "gil": _gil()}
    if spec["workload"] == "data":
        items = _read_chunks(spec["csv"], spec["chunks"])
        fn = work.aggregate
    else:
        items = [spec["cpu_n"]] * spec["cpu_tasks"]
        fn = work.cpu_task
    t = time.perf_counter()
    parts = _run_tasks(kind, workers, fn, items)
    result = work.combine(parts) if spec["workload"] == "data" \
        else sum(parts)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "result": result, "gil": _gil()}


def _gil():
    return getattr(sys, "_is_gil_enabled", lambda: True)()


def main(argv):
    out = run(json.loads(argv[1]))
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
