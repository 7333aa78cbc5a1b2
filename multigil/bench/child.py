"""One measured run of a benchmark workload, in a process of its own:

    python -m multigil.bench.child SPEC_JSON

SPEC: {"kind": a candidate of executors.make_executor or "serial",
"workload": "data" or "cpu", "workers": n, and for "data" "csv" (a file
of CSV rows) and "chunks" (a list of [offset, size] byte ranges of it),
for "cpu" "cpu_n" and "cpu_tasks"}. The input is read before the clock
starts; the clock covers creating the pool, running every task,
combining, and shutting the pool down. Prints one JSON line: {"seconds",
"result", "gil"}. The parent samples this process tree's memory
(multigil._memory) from outside.
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


def run(spec):
    from . import work
    kind, workers = spec["kind"], spec["workers"]
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
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return {"seconds": seconds, "result": result, "gil": gil}


def main(argv):
    out = run(json.loads(argv[1]))
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
