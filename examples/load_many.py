"""load_many: a folder of CSV and Excel (.xlsx) files loaded in parallel by
multigil workers, and with --compare by threads and by processes too, the
times side by side.

    python examples/load_many.py [--dir FOLDER] [--csv 8] [--xlsx 4]
                                 [--rows 20000] [--workers W] [--compare]

Without --dir, a temporary folder of generated files is used (.xlsx only
where openpyxl is installed: pip install openpyxl). The .xlsx files are
read with openpyxl inside the workers when openpyxl imports in an own-GIL
subinterpreter (asked of `python -m multigil compat openpyxl`, cached);
where it does not (CPython 3.12: its pyexpat is a single-phase module), the
script says why and loads them in the main interpreter while the workers
load the CSV files. Ends with "verified" when every way agrees.
"""
import argparse
import concurrent.futures as cf
import importlib.util
import multiprocessing as mp
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import multigil  # noqa: E402
from load_tasks import (load_file, make_folder,  # noqa: E402
                        openpyxl_in_workers, same_totals, table_files)


def load_with_multigil(paths, workers, xlsx_in_workers):
    """Every file through a multigil pool; the .xlsx files in this
    (the main) interpreter instead when xlsx_in_workers is false."""
    mine = [p for p in paths if p.lower().endswith(".xlsx")
            and not xlsx_in_workers]
    theirs = [p for p in paths if p not in mine]
    with multigil.Pool(workers) as pool:
        futures = [pool.submit(load_file, p) for p in theirs]
        here = [load_file(p) for p in mine]  # while the workers work
        for r in here:
            r["worker"] = "main interpreter"
        return [f.result() for f in futures] + here


def load_with(executor, paths):
    with executor as ex:
        return list(ex.map(load_file, paths))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="folder of .csv/.xlsx files to load "
                    "(default: a temporary folder of generated files)")
    ap.add_argument("--csv", type=int, default=8)
    ap.add_argument("--xlsx", type=int, default=4)
    ap.add_argument("--rows", type=int, default=20_000,
                    help="rows per CSV file (a quarter of it per .xlsx)")
    ap.add_argument("--workers", type=int,
                    default=len(os.sched_getaffinity(0)))
    ap.add_argument("--compare", action="store_true",
                    help="also load with threads and with processes")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="multigil-load-") as tmp:
        folder = a.dir
        if folder is None:
            folder = tmp
            make_folder(folder, a.csv, a.xlsx, a.rows)
            if a.xlsx and not any(p.lower().endswith(".xlsx")
                                  for p in table_files(folder)):
                print("openpyxl is not installed (pip install openpyxl): no "
                      ".xlsx files were made, only CSV")
        return run(folder, a)


def run(folder, a):
    paths = table_files(folder)
    n_xlsx = sum(p.lower().endswith(".xlsx") for p in paths)
    print(f"multigil {multigil.__version__} on CPython "
          f"{sys.version.split()[0]}: {len(paths)} files in {folder} "
          f"({len(paths) - n_xlsx} CSV, {n_xlsx} .xlsx), "
          f"{a.workers} workers")
    if not paths:
        print("no .csv or .xlsx files there")
        return 1
    in_workers = False
    if n_xlsx:
        in_workers, why = openpyxl_in_workers()
        if in_workers:
            print("openpyxl imports in an own-GIL subinterpreter: the "
                  ".xlsx files load inside the workers")
        else:
            print(f"openpyxl cannot be used in the workers: {why}\n"
                  f"  -> the .xlsx files load in the main interpreter "
                  f"while the workers load the CSV files")
            if importlib.util.find_spec("openpyxl") is None:
                paths = [p for p in paths if not p.lower().endswith(".xlsx")]
    results, dt = timed(lambda: load_with_multigil(paths, a.workers,
                                                   in_workers))
    print(f"\n  {'file':<20}{'rows':>8}{'amount':>16}{'seconds':>9}  worker")
    names = {}
    for r in sorted(results, key=lambda r: r["file"]):
        w = r["worker"]
        if w != "main interpreter":
            w = names.setdefault(w, f"worker {len(names) + 1}")
        print(f"  {r['file']:<20}{r['rows']:>8,}{r['amount']:>16,.2f}"
              f"{r['seconds']:>9.3f}  {w}")
    total = sum(r["rows"] for r in results)
    print(f"\n  multigil.Pool: {total:,} rows in {dt:.2f} s")
    agree = True
    if a.compare:
        for label, ex in (
                ("ThreadPoolExecutor", cf.ThreadPoolExecutor(a.workers)),
                ("ProcessPoolExecutor (spawn)", cf.ProcessPoolExecutor(
                    a.workers, mp_context=mp.get_context("spawn")))):
            other, t = timed(lambda: load_with(ex, paths))
            ok = same_totals(results, other)
            agree = agree and ok
            print(f"  {label}: {t:.2f} s ({dt and t / dt:.2f}x multigil's "
                  f"time), same totals: {'yes' if ok else 'NO'}")
    if not agree:
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
