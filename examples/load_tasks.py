"""The work of examples/load_many.py and examples/gui.py: make a folder of
table files (CSV, and .xlsx where openpyxl is installed), and load one
file into a summary. Kept in a module so that any executor (threads,
processes, multigil) can import it by name; openpyxl is imported only
when an .xlsx file is loaded, in whichever interpreter loads it.

Every file has the columns id, region, amount, qty; a file's summary is
{"file", "rows", "amount", "qty", "by_region", "worker", "seconds"}.
"""
import csv
import os
import random
import threading
import time

REGIONS = ("north", "south", "east", "west", "centre")
HEADER = ("id", "region", "amount", "qty")


def _rows(n, seed):
    rng = random.Random(seed)
    for i in range(n):
        yield (i, REGIONS[rng.randrange(len(REGIONS))],
               round(rng.uniform(1.0, 500.0), 2), rng.randint(1, 20))


def make_folder(folder, n_csv=8, n_xlsx=4, rows=20_000, xlsx_rows=None):
    """Write n_csv CSV files and (if openpyxl imports here) n_xlsx .xlsx
    files of deterministic data; returns the paths written."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for k in range(n_csv):
        p = os.path.join(folder, f"sales_{k:02d}.csv")
        with open(p, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            w.writerows(_rows(rows, seed=k))
        paths.append(p)
    if n_xlsx:
        try:
            import openpyxl
        except ImportError:
            return paths
        for k in range(n_xlsx):
            p = os.path.join(folder, f"sheet_{k:02d}.xlsx")
            wb = openpyxl.Workbook(write_only=True)
            ws = wb.create_sheet("sales")
            ws.append(HEADER)
            for row in _rows(xlsx_rows or rows // 4, seed=1000 + k):
                ws.append(row)
            wb.save(p)
            paths.append(p)
    return paths


def table_files(folder):
    """The .csv and .xlsx files of folder, sorted by name."""
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.lower().endswith((".csv", ".xlsx")))


def worker_key():
    """Which worker runs this: process id and OS thread id (a multigil
    worker and a pool thread are each one OS thread)."""
    return f"{os.getpid()}:{threading.get_native_id()}"


def _summarise(name, records, started):
    n, amount, qty, by_region = 0, 0.0, 0, {}
    for _id, region, a, q in records:
        a = float(a)
        n += 1
        amount += a
        qty += int(q)
        by_region[region] = by_region.get(region, 0.0) + a
    return {"file": name, "rows": n, "amount": round(amount, 2),
            "qty": qty,
            "by_region": {k: round(v, 2) for k, v in sorted(
                by_region.items())},
            "worker": worker_key(),
            "seconds": time.perf_counter() - started}


def load_csv(path):
    started = time.perf_counter()
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        return _summarise(os.path.basename(path), r, started)


def load_xlsx(path):
    started = time.perf_counter()
    import openpyxl
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = wb.worksheets[0].iter_rows(min_row=2, values_only=True)
        return _summarise(os.path.basename(path), rows, started)
    finally:
        wb.close()


def load_file(path):
    """The summary of one .csv or .xlsx file."""
    if path.lower().endswith(".xlsx"):
        return load_xlsx(path)
    return load_csv(path)


def openpyxl_in_workers():
    """(True, None) if openpyxl imports in an own-GIL subinterpreter (as
    `python -m multigil compat openpyxl` answers, cached), else (False,
    why). Asked in the main interpreter only."""
    import importlib.util
    if importlib.util.find_spec("openpyxl") is None:
        return False, "openpyxl is not installed (pip install openpyxl)"
    from multigil import _compat
    res = _compat.check(["openpyxl"])[0]
    if res["own_gil"]:
        return True, None
    return False, res["error"] or "it does not import in a subinterpreter"


def same_totals(a, b):
    """Do two lists of summaries describe the same data?"""
    def key(s):
        return (s["file"], s["rows"], s["amount"], s["qty"], s["by_region"])
    return sorted(map(key, a)) == sorted(map(key, b))
