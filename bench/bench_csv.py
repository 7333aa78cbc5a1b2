"""bench_csv.py - read_csv against csv, pandas, pyarrow, polars and DuckDB.

    python bench/bench_csv.py [--mb 100] [--files 8] [--repeat 3] [--dir D]
                              [--reuse] [--readers a,b] [--configs 1f1t,...]
                              [--ceiling]

Generates one file of about --mb MB (an int, a float, a short string, an
often-empty int, and a text column with quoted commas and 1% quoted
newlines) and the same rows in --files files, then times every reader at
1 and 2 threads on both, warm page cache, in MB/s of input: the readers
take turns (--repeat rounds of every reader, each in a fresh process doing
--inner reads), best time kept. Each reader runs in its own subprocess (so thread settings that
libraries read at import apply). Peak memory is the PSS of the reader's
process tree (multigil._memory, sampled from here) minus its PSS once the
library is imported: what the read itself costs, mapped file pages
included (taken in a separate run of one read: sampling slows the reader,
so the timed runs are not sampled). --reuse keeps the generated files in --dir between runs. Readers
that are not installed are listed as such. The machine is shared: numbers
are noisy, compare within one run only. It ends with each reader's
2-thread / 1-thread ratio and, with --ceiling, the machine's own: two
1-thread multigil reads at once in two processes against one alone.
Each reader's CPU time per second of wall time shows the threads it
starts by itself (pandas' read_csv starts two on this machine); --pin
runs the 1-thread reads on one CPU, those threads included.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from multigil import _memory  # noqa: E402

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]


def gen_rows(target_bytes, seed=1):
    rnd = random.Random(seed)
    size = 0
    out = []
    i = 0
    while size < target_bytes:
        text = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 8)))
        if rnd.random() < 0.3:
            text = text.replace(" ", ", ", 1)
        if rnd.random() < 0.01:
            text = text.replace(" ", "\n", 1)
        opt = "" if rnd.random() < 0.6 else str(rnd.randint(0, 10**6))
        row = (f"{i},{rnd.uniform(-1e6, 1e6):.6f},{rnd.choice(WORDS)}{i % 97},"
               f"{opt},\"{text}\"\n")
        out.append(row)
        size += len(row)
        i += 1
    return out


def write_files(d, mb, nfiles, reuse=False):
    header = "id,value,name,opt,text\n"
    one = os.path.join(d, "one.csv")
    many = [os.path.join(d, f"part{k:02d}.csv") for k in range(nfiles)]
    stamp = os.path.join(d, f"done-{mb}-{nfiles}")
    os.makedirs(d, exist_ok=True)
    if reuse and os.path.exists(stamp):
        return one, many
    rows = gen_rows(mb * 1_000_000)
    with open(one, "w", newline="") as f:
        f.write(header)
        f.writelines(rows)
    per = -(-len(rows) // nfiles)
    for k, p in enumerate(many):
        with open(p, "w", newline="") as f:
            f.write(header)
            f.writelines(rows[k * per:(k + 1) * per])
    open(stamp, "w").close()
    return one, many


# ---- readers: each runs in a child process (see child()) ----

def r_csv(paths, threads):
    cols = None
    for p in paths:
        cols = _csv_columns(p, cols)
    return cols


def _csv_columns(path, cols=None):
    """csv.reader's rows of path appended to cols (one list per column,
    made at the first row when None)."""
    import csv
    with open(path, newline="") as f:
        rd = csv.reader(f)
        next(rd)
        for row in rd:
            if cols is None:
                cols = [[] for _ in row]
            for c, v in zip(cols, row):
                c.append(v)
    return cols


def r_csv_procs(paths, threads):
    """csv.reader in a ProcessPoolExecutor, columns returned to the parent
    (figure 3 of the issue); one task per file."""
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(threads) as ex:
        parts = list(ex.map(_csv_columns, paths))
    return parts


def r_pandas(paths, threads):
    import pandas as pd
    return [pd.read_csv(p, engine="c") for p in paths]


def r_pyarrow(paths, threads):
    import pyarrow as pa
    from pyarrow import csv
    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)
    po = csv.ParseOptions(newlines_in_values=True)
    ro = csv.ReadOptions(use_threads=threads > 1)
    if len(paths) == 1:
        return csv.read_csv(paths[0], read_options=ro, parse_options=po)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(threads) as ex:
        ts = list(ex.map(lambda p: csv.read_csv(p, read_options=ro,
                                                parse_options=po), paths))
    return pa.concat_tables(ts)


def r_polars(paths, threads):
    import polars as pl
    if len(paths) == 1:
        return pl.read_csv(paths[0])
    return pl.concat([pl.scan_csv(p) for p in paths]).collect()


def r_duckdb(paths, threads):
    import duckdb
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    lst = ", ".join(f"'{p}'" for p in paths)
    return con.sql(f"SELECT * FROM read_csv([{lst}])").fetch_arrow_table()


def r_multigil(paths, threads):
    import multigil as mg
    src = paths[0] if len(paths) == 1 else paths
    return mg.read_csv(src, workers=threads)


READERS = {"csv.reader": r_csv, "csv+procpool": r_csv_procs,
           "pandas": r_pandas, "pyarrow": r_pyarrow,
           "polars": r_polars, "duckdb": r_duckdb, "multigil": r_multigil}
SINGLE_THREADED = {"csv.reader", "pandas"}
# Rows of each reader's result.
ROWS = {"csv.reader": lambda cols: len(cols[0]),
        "csv+procpool": lambda parts: sum(len(p[0]) for p in parts),
        "pandas": lambda dfs: sum(len(d) for d in dfs),
        "pyarrow": lambda t: t.num_rows, "polars": lambda t: t.height,
        "duckdb": lambda t: t.num_rows, "multigil": lambda t: t.num_rows}


IMPORTS = {"csv.reader": ["csv"], "csv+procpool": ["csv", "concurrent.futures"],
           "pandas": ["pandas"], "pyarrow": ["pyarrow.csv"],
           "polars": ["polars"], "duckdb": ["duckdb"], "multigil": ["multigil"]}


def child(name, paths, threads, repeat):
    """One reader in this process: imports, says ready, waits for go, then
    the best of repeat reads as JSON. A read's clock covers dropping its
    result too, unless BENCH_HOLD=1 (then the result is dropped after the
    clock stops)."""
    import importlib
    fn = READERS[name]
    hold = os.environ.get("BENCH_HOLD") == "1"
    for m in IMPORTS[name]:
        importlib.import_module(m)
    if os.environ.get("BENCH_PIN") == "1" and threads == 1:
        # One CPU for the process and every thread it starts.
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print("ready", flush=True)
    sys.stdin.readline()  # the parent has taken the baseline PSS
    best = cpu = None
    rows = None
    for _ in range(repeat):
        c0 = _cpu_seconds()
        t0 = time.perf_counter()
        result = fn(paths, threads)
        if not hold:
            rows = ROWS[name](result)
            del result
        dt = time.perf_counter() - t0
        if hold:
            rows = ROWS[name](result)
            del result
        if best is None or dt < best:
            best, cpu = dt, _cpu_seconds() - c0
    print(json.dumps({"best": best, "rows": rows, "cpu": cpu}), flush=True)


def _cpu_seconds():
    """CPU time of this process (all its threads) and its children."""
    import resource
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        u = resource.getrusage(who)
        total += u.ru_utime + u.ru_stime
    return total


def _start(name, paths, threads, repeat):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, POLARS_MAX_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(
                   [root] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    cmd = [sys.executable, __file__, "--child", name, str(threads),
           str(repeat), *paths]
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    return p, p.stdout.readline()


def _go(p, ready):
    if ready.strip() == "ready":
        p.stdin.write("go\n")
        p.stdin.flush()


def _result(p, ready):
    out, err = p.communicate()
    if p.returncode != 0 or ready.strip() != "ready":
        last = (err.strip().splitlines() or [ready.strip() or "?"])[-1]
        return {"error": last[:80]}
    return json.loads(out.strip().splitlines()[-1])


def measure(name, paths, threads, repeat, pss=False):
    p, ready = _start(name, paths, threads, repeat)
    base = _memory.tree_pss(p.pid) or 0
    # The sampler reads /proc/PID/smaps_rollup, which walks the process's
    # mappings under its mm lock and slows the reader: timed runs go
    # unsampled, a separate run (pss=True) gives the peak.
    s = _memory.PeakSampler(p.pid, interval=0.01)
    if pss:
        s.start()
    _go(p, ready)
    r = _result(p, ready)
    if pss:
        s.stop()
    if pss and "error" not in r:
        r["pss_mb"] = ((s.peak or base) - base) / 1e6
    return r


def ceiling(path, repeat, inner):
    """The machine's own limit for two threads: one 1-thread multigil read
    alone, then two of them at once in two processes (which share nothing
    but the machine); best of repeat rounds each."""
    alone = together = None
    for _ in range(repeat):
        r = measure("multigil", [path], 1, inner)
        if "best" in r:
            alone = r["best"] if alone is None else min(alone, r["best"])
        pair = [_start("multigil", [path], 1, inner) for _ in range(2)]
        for p, ready in pair:
            _go(p, ready)
        rs = [_result(p, ready) for p, ready in pair]
        if all("best" in r for r in rs):
            worst = max(r["best"] for r in rs)
            together = worst if together is None else min(together, worst)
    return alone, together


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--inner", type=int, default=2,
                    help="reads per reader process (the first one also "
                         "pays for fresh memory)")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--readers", default=",".join(READERS))
    ap.add_argument("--reuse", action="store_true",
                    help="keep the generated files in --dir between runs")
    ap.add_argument("--configs", default="1f1t,1f2t,mf1t,mf2t",
                    help="which of 1 file / many files at 1 / 2 threads")
    ap.add_argument("--ceiling", action="store_true",
                    help="also time two 1-thread reads at once in two "
                         "processes: what two threads could reach here")
    ap.add_argument("--pin", action="store_true",
                    help="run the 1-thread reads on one CPU (affinity), "
                         "threads a library starts by itself included")
    ap.add_argument("--hold", action="store_true",
                    help="stop each read's clock before its result is "
                         "dropped (by default the clock covers the drop)")
    ap.add_argument("--child", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.child:
        name, threads, repeat, *paths = a.child
        return child(name, paths, int(threads), int(repeat))
    if a.pin:
        os.environ["BENCH_PIN"] = "1"
    if a.hold:
        os.environ["BENCH_HOLD"] = "1"
    d = a.dir or tempfile.mkdtemp(prefix="bench_csv_")
    one, many = write_files(d, a.mb, a.files, a.reuse)
    nbytes = os.path.getsize(one)
    print(f"# {nbytes / 1e6:.0f} MB in 1 file and {a.files} files; best of "
          f"{a.repeat} interleaved runs x {a.inner} reads; MB/s of input "
          f"(noisy: shared machine); load {os.getloadavg()[0]:.1f}"
          + ("; 1-thread reads pinned to one CPU" if a.pin else "")
          + ("; results dropped after the clock" if a.hold else ""))
    every = {"1f1t": ("1 file", [one], 1), "1f2t": ("1 file", [one], 2),
             "mf1t": (f"{a.files} files", many, 1),
             "mf2t": (f"{a.files} files", many, 2)}
    configs = [every[c] for c in a.configs.split(",")]
    results = {}
    # Interleaved: each repeat runs every reader once (in a fresh process,
    # --inner reads, the best kept), so that a change in the machine's load
    # during the run hits every reader alike; the best over the repeats.
    for label, paths, threads in configs:
        for rep in range(a.repeat):
            for name in a.readers.split(","):
                if threads > 1 and name in SINGLE_THREADED:
                    continue
                r = measure(name, paths, threads, a.inner)
                old = results.get((name, label, threads))
                if old is None or "error" in r or (
                        "best" in old and r["best"] < old["best"]):
                    results[(name, label, threads)] = r
        for name in a.readers.split(","):
            r = results.get((name, label, threads))
            if r is None:
                continue
            if "best" in r:
                m = measure(name, paths, threads, 1, pss=True)
                r["pss_mb"] = m.get("pss_mb", float("nan"))
            shown = r.get("error") or (f"{nbytes / 1e6 / r['best']:7.0f} MB/s"
                                       f"  rows={r['rows']}"
                                       f"  peak PSS +{r['pss_mb']:.0f} MB"
                                       f"  CPU {r['cpu'] / r['best']:.2f}"
                                       f" x wall")
            print(f"{name:11s} {label:8s} {threads}t  {shown}", flush=True)
    print()
    print("| reader | " + " | ".join(f"{lb} {t}t" for lb, _, t in configs)
          + " | peak PSS MB |")
    print("|---" * (len(configs) + 2) + "|")
    for name in a.readers.split(","):
        cells = []
        pss = []
        for label, _, threads in configs:
            r = results.get((name, label, threads))
            if r is None:
                cells.append("n/a")
            elif "error" in r:
                cells.append("missing")
            else:
                cells.append(f"{nbytes / 1e6 / r['best']:.0f}")
                pss.append(f"{r['pss_mb']:.0f}")
        print(f"| {name} | " + " | ".join(cells) + " | "
              + "/".join(pss) + " |")
    print()
    print("CPU seconds per second of wall time in the best read (threads a "
          "library starts by itself count):")
    for name in a.readers.split(","):
        cpus = []
        for label, _, threads in configs:
            r = results.get((name, label, threads))
            if r and "best" in r:
                cpus.append(f"{label} {threads}t {r['cpu'] / r['best']:.2f}")
        if cpus:
            print(f"  {name}: " + ", ".join(cpus))
    print()
    for label, _, threads in configs:
        mine = results.get(("multigil", label, threads))
        others = [(n, results.get((n, label, threads))) for n in READERS
                  if n not in ("multigil", "csv.reader", "csv+procpool")]
        others = [(n, r) for n, r in others if r and "best" in r]
        if mine and "best" in mine and others:
            n, best = min(others, key=lambda x: x[1]["best"])
            print(f"{label} {threads}t: multigil / fastest other ({n}) = "
                  f"{best['best'] / mine['best']:.2f}x")
    print()
    for label in dict.fromkeys(lb for lb, _, _ in configs):
        for name in a.readers.split(","):
            one_t = results.get((name, label, 1))
            two_t = results.get((name, label, 2))
            if one_t and two_t and "best" in one_t and "best" in two_t:
                print(f"{label}: {name} 2 threads / 1 thread = "
                      f"{one_t['best'] / two_t['best']:.2f}x")
    if a.ceiling:
        alone, together = ceiling(one, a.repeat, a.inner)
        if alone and together:
            print(f"ceiling: two 1-thread multigil reads of 1 file at once, "
                  f"in two processes, read {2 * alone / together:.2f}x the "
                  f"bytes per second of one alone ({alone * 1e3:.0f} ms "
                  f"alone, {together * 1e3:.0f} ms the slower of the two)")


if __name__ == "__main__":
    main()
