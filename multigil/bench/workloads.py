"""The workload benchmark of ``python -m multigil bench``: one data job and
one pure-CPU job, run by every candidate, each run in a fresh child
process (multigil.bench.child) whose whole process tree the parent samples
for peak PSS (multigil._memory).

Data: N rows of CSV text (generated once into a temporary file, untimed),
read by each run into chunks before its clock starts; the clock covers
starting the pool, parsing and aggregating every chunk in pure Python in
the workers, combining the chunks' aggregates, and shutting the pool down.
The shared-columns row (data only) reads the file with multigil.read_csv
inside its clock instead, and aggregates the columns of row ranges equal
to the chunks.
CPU: CPU_TASKS calls of a pure-Python loop. Every run's result is checked
against the serial run's.
"""
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from .. import _memory
from . import executors, work

CPU_TASKS = 16
DEFAULT_ROWS = 10_000_000
QUICK_ROWS = 500_000
MAX_CHUNK_ROWS = 250_000
SAMPLE_INTERVAL = 0.02

LABELS = {
    "serial": "serial (one interpreter)",
    "threads": "ThreadPoolExecutor",
    "process-fork": "ProcessPoolExecutor (fork)",
    "process-spawn": "ProcessPoolExecutor (spawn)",
    "process-forkserver": "ProcessPoolExecutor (forkserver)",
    "stdlib-interpreters": "InterpreterPoolExecutor (stdlib)",
    "_interpreters-minimal": "minimal pool on _interpreters",
    "free-threaded": "threads, free-threaded {version}t",
    "multigil": "multigil.Pool (codec)",
    "multigil-columns": "multigil.Pool + read_csv (shared columns)",
}
# Candidates of the data workload only.
DATA_ONLY = {"multigil-columns"}


@functools.lru_cache(maxsize=None)
def columns_problem():
    """Why the shared-columns row cannot run here (one line), or None:
    read_csv and aggregate_columns tried on a few rows of the data set."""
    from .child import read_columns
    text = work.csv_rows(0, 50)
    try:
        got = work.aggregate_columns(read_columns(text.encode(), None))
    except Exception as e:  # anything: the row is skipped, with the reason
        return f"{type(e).__name__}: {e}".splitlines()[0][:200]
    if got != work.aggregate(text):
        return "read_csv's columns give other aggregates than the text"
    return None


def plan(free_threaded):
    """[(kind, python executable, label)] in table order."""
    rows = [(k, sys.executable, LABELS[k]) for k in
            ("serial", "threads", "process-fork", "process-spawn",
             "process-forkserver")]
    ik = executors.interpreter_pool_kind()
    if ik is not None:
        rows.append((ik, sys.executable, LABELS[ik]))
    for exe, version in free_threaded:
        rows.append(("free-threaded", exe,
                     LABELS["free-threaded"].format(version=version)))
    rows.append(("multigil", sys.executable, LABELS["multigil"]))
    if columns_problem() is None:
        rows.append(("multigil-columns", sys.executable,
                     LABELS["multigil-columns"]))
    return rows


def notes(free_threaded):
    out = []
    n = executors.interpreter_pool_note()
    if n:
        out.append(n)
    if not free_threaded:
        out.append("no free-threaded CPython (python3.13t/3.14t) found in "
                   "PATH, /opt/*/bin, /usr/local/bin or pyenv: no "
                   "free-threaded row")
    problem = columns_problem()
    if problem:
        out.append(f"multigil with shared columns: no row (multigil."
                   f"read_csv fails on this Python: {problem})")
    else:
        out.append(f"{LABELS['multigil-columns']}, data only: its clock "
                   "also covers reading the file and parsing it in C "
                   "(read_csv on as many C threads as workers; columns "
                   "group, value, qty only); the workers then aggregate "
                   "row ranges of the columns in pure Python. The other "
                   "rows read their text chunks before their clock starts "
                   "and parse them in Python inside it")
    return out


# ---- input ----

def chunk_rows(rows, workers):
    """Rows per chunk: about four chunks per worker, at most
    MAX_CHUNK_ROWS (so 10M rows are 40 chunks), at least 1."""
    return max(1, min(MAX_CHUNK_ROWS, -(-rows // (workers * 4))))


def write_csv(path, rows, per_chunk, workers):
    """Write the data set to path, generated in parallel with a multigil
    pool; return the chunks' [offset, size] byte ranges."""
    import multigil
    starts = list(range(0, rows, per_chunk))
    counts = [min(per_chunk, rows - s) for s in starts]
    ranges, offset = [], 0
    with multigil.Pool(workers) as pool, open(path, "wb") as f:
        for text in pool.map(work.csv_rows, starts, counts,
                             buffersize=2 * workers):
            data = text.encode("ascii")
            f.write(data)
            ranges.append([offset, len(data)])
            offset += len(data)
    return ranges


def calibrate_cpu_n(seconds):
    from .pool import calibrate_cpu_task
    return calibrate_cpu_task(seconds)


# ---- one measured run ----

def _child_env():
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [root, env.get("PYTHONPATH", "")] if p)
    return env


def measure(python, spec, timeout):
    """Run one child; return {"seconds", "result", "gil", "peak_pss"} or
    {"error": one line}."""
    import signal
    proc = subprocess.Popen(
        [python, "-m", "multigil.bench.child", json.dumps(spec)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_child_env(), start_new_session=True)
    sampler = _memory.PeakSampler(proc.pid, SAMPLE_INTERVAL).start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        peak = sampler.stop()
    if proc.returncode != 0:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        return {"error": (lines[-1] if lines else
                          f"exit status {proc.returncode}")[:200]}
    res = json.loads(out.strip().splitlines()[-1])
    res["peak_pss"] = peak
    return res


def run_rows(rows, spec, repeats, timeout, say):
    """Every candidate, `repeats` runs each; the median of the times and of
    the peaks; results checked against the serial one."""
    table, expected = [], None
    for kind, python, label in rows:
        runs = []
        for _ in range(repeats):
            r = measure(python, dict(spec, kind=kind), timeout)
            runs.append(r)
            if "error" in r:
                break
        row = {"kind": kind, "label": label, "python": python}
        errors = [r["error"] for r in runs if "error" in r]
        if errors:
            row["error"] = errors[0]
        else:
            row["seconds"] = statistics.median(r["seconds"] for r in runs)
            peaks = [r["peak_pss"] for r in runs if r["peak_pss"]]
            row["peak_pss"] = statistics.median(peaks) if peaks else None
            row["runs"] = [r["seconds"] for r in runs]
            row["gil"] = runs[0]["gil"]
            if expected is None:
                expected = runs[0]["result"]
            elif any(r["result"] != expected for r in runs):
                row["error"] = "wrong result (differs from serial's)"
        table.append(row)
        say(f"  {label}: " + (row.get("error") or
                              f"{row['seconds']:.2f} s"))
    base = table[0] if table and "error" not in table[0] else None
    for row in table:
        if base and "seconds" in row:
            row["speedup"] = base["seconds"] / row["seconds"]
            if row.get("peak_pss") and base.get("peak_pss"):
                row["memory_ratio"] = row["peak_pss"] / base["peak_pss"]
    return table


# ---- the whole benchmark ----

def run(rows=DEFAULT_ROWS, workers=2, repeats=1, quick=False,
        cpu_seconds=None, say=None, timeout=None, only=None):
    """Measure both workloads; returns the result dict (see report()).
    only: the candidate kinds to run (serial, the base, always runs)."""
    import multigil
    if say is None:
        def say(msg):
            print(msg, file=sys.stderr, flush=True)
    ft = executors.find_free_threaded()
    plan_rows = plan(ft)
    if only is not None:
        unknown = set(only) - {k for k, _, _ in plan_rows}
        if unknown:
            why = (f"; no multigil-columns: read_csv fails here: "
                   f"{columns_problem()}"
                   if "multigil-columns" in unknown else "")
            raise ValueError(f"no such candidate here: "
                             f"{', '.join(sorted(unknown))} (candidates: "
                             f"{', '.join(k for k, _, _ in plan_rows)})"
                             + why)
        plan_rows = [r for r in plan_rows
                     if r[0] == "serial" or r[0] in only]
    per_chunk = chunk_rows(rows, workers)
    if cpu_seconds is None:
        cpu_seconds = 0.06 if quick else 0.25
    res = {
        "multigil": multigil.__version__,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "machine": os.uname().machine,
        "workers": workers,
        "repeats": repeats,
        "memory": "peak PSS of the run's whole process tree, sampled "
                  f"every {SAMPLE_INTERVAL * 1e3:.0f} ms from outside it",
        "notes": notes(ft),
        "workloads": {},
    }
    if not _memory.available():
        res["notes"].append("this kernel has no /proc/PID/smaps_rollup: "
                            "no memory figures")
    with tempfile.TemporaryDirectory(prefix="multigil-bench-") as tmp:
        path = os.path.join(tmp, "rows.csv")
        t = time.perf_counter()
        ranges = write_csv(path, rows, per_chunk, workers)
        size = sum(r[1] for r in ranges)
        say(f"generated {rows:,} CSV rows ({size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - t:.1f} s")
        # Generous: a run may be a few times slower than serial's 2 us/row.
        row_timeout = timeout or max(120.0, rows * 2e-5)
        say("data workload:")
        res["workloads"]["data"] = {
            "title": f"{rows:,} CSV rows ({size / 1e6:.0f} MB) in "
                     f"{len(ranges)} chunks: parse, per-group aggregates "
                     f"in pure Python, combine",
            "rows": run_rows(plan_rows, {"workload": "data", "csv": path,
                                         "chunks": ranges,
                                         "chunk_rows": per_chunk,
                                         "workers": workers},
                             repeats, row_timeout, say),
        }
    n = calibrate_cpu_n(cpu_seconds)
    say("cpu workload:")
    res["workloads"]["cpu"] = {
        "title": f"{CPU_TASKS} pure-Python CPU tasks of about "
                 f"{cpu_seconds:g} s each",
        "rows": run_rows([r for r in plan_rows if r[0] not in DATA_ONLY],
                         {"workload": "cpu", "cpu_n": n,
                          "cpu_tasks": CPU_TASKS, "workers": workers},
                         repeats, timeout or max(120.0, 60 * cpu_seconds
                                                 * CPU_TASKS), say),
    }
    return res


# ---- report ----

def _mb(v):
    return f"{v / 2**20:,.0f} MB" if v else "n/a"


def report(res):
    """The terminal table of a run() result."""
    out = [f"multigil {res['multigil']} bench: CPython {res['python']}, "
           f"{res['usable_cpus']} usable CPUs ({res['machine']}), "
           f"{res['workers']} workers, median of {res['repeats']}",
           "time: pool start-up + all tasks + combine + shut-down; "
           "memory: " + res["memory"]]
    w = max([36] + [len(r["label"]) + 2 for wl in res["workloads"].values()
                    for r in wl["rows"]])
    for name, wl in res["workloads"].items():
        out.append(f"\n{name}: {wl['title']}")
        out.append(f"  {'candidate':<{w}}{'time':>9}{'speedup':>9}"
                   f"{'peak PSS':>11}{'memory':>8}")
        for row in wl["rows"]:
            if "seconds" not in row:
                out.append(f"  {row['label']:<{w}}  failed: {row['error']}")
                continue
            sp = row.get("speedup")
            mr = row.get("memory_ratio")
            out.append(
                f"  {row['label']:<{w}}{row['seconds']:>8.2f}s"
                f"{(f'{sp:.2f}x' if sp else ''):>9}"
                f"{_mb(row.get('peak_pss')):>11}"
                f"{(f'{mr:.2f}x' if mr else ''):>8}"
                + (f"  ({row['error']})" if "error" in row else ""))
    if res["notes"]:
        out.append("")
        out.extend(f"note: {n}" for n in res["notes"])
    return "\n".join(out)
