"""python -m multigil bench: a tiny run end to end (the figures are not
checked, only that every candidate ran, agreed with serial, and that the
table, the JSON and the chart say so)."""
import json
import os
import subprocess
import sys
import xml.dom.minidom

import pytest

from multigil.bench import svg, work, workloads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_csv_rows_are_chunking_independent():
    whole = work.aggregate(work.csv_rows(0, 3000))
    parts = work.combine([work.aggregate(work.csv_rows(0, 1000)),
                          work.aggregate(work.csv_rows(1000, 2000))])
    assert whole.keys() == parts.keys()
    for g in whole:
        n, s, lo, hi, q = whole[g]
        assert parts[g][0] == n and parts[g][4] == q
        assert (parts[g][2], parts[g][3]) == (lo, hi)
        assert abs(parts[g][1] - s) < 1e-6 * max(1.0, abs(s))
    assert sum(v[0] for v in whole.values()) == 3000


def test_bench_tiny_run(tmp_path):
    chart = tmp_path / "bench.svg"
    r = subprocess.run(
        [sys.executable, "-m", "multigil", "bench", "--rows", "3000",
         "--cpu-seconds", "0.005", "--only", "multigil,process-fork", "--json", "--svg", str(chart)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    for name in ("data", "cpu"):
        rows = res["workloads"][name]["rows"]
        assert [x["kind"] for x in rows] == ["serial", "process-fork",
                                             "multigil"]
        for x in rows:
            assert "error" not in x, x
            assert x["seconds"] > 0 and x["speedup"] > 0
            assert x["peak_pss"] > 0 and x["memory_ratio"] > 0
    assert any("free-threaded" in n for n in res["notes"]) or any(
        x["kind"] == "free-threaded"
        for x in res["workloads"]["cpu"]["rows"])
    assert any("read_csv" in n for n in res["notes"])
    doc = xml.dom.minidom.parse(str(chart))
    labels = [t.firstChild.data for t in doc.getElementsByTagName("text")]
    assert "multigil.Pool (codec)" in labels
    assert len(doc.getElementsByTagName("rect")) == 1 + 4 * 3
    table = workloads.report(res)
    assert "multigil.Pool (codec)" in table and "peak PSS" in table


def test_bench_reports_a_wrong_result(monkeypatch):
    calls = []

    def fake_measure(python, spec, timeout):
        calls.append(spec["kind"])
        return {"seconds": 1.0, "peak_pss": 10, "gil": True,
                "result": 1 if spec["kind"] == "serial" else 2}
    monkeypatch.setattr(workloads, "measure", fake_measure)
    rows = workloads.run_rows([("serial", sys.executable, "s"),
                               ("threads", sys.executable, "t")],
                              {}, 1, 10, lambda m: None)
    assert calls == ["serial", "threads"]
    assert "error" not in rows[0]
    assert rows[1]["error"] == "wrong result (differs from serial's)"


def test_bench_unknown_candidate_exits_2():
    r = subprocess.run([sys.executable, "-m", "multigil", "bench",
                        "--only", "nope"], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 2
    assert "no such candidate here: nope" in r.stderr


def test_svg_marks_failed_rows_na():
    res = {"multigil": "0", "python": "3", "usable_cpus": 2, "workers": 2,
           "workloads": {"cpu": {"rows": [
               {"kind": "serial", "label": "serial", "seconds": 1.0,
                "peak_pss": 2**20},
               {"kind": "threads", "label": "threads", "error": "x"}]}}}
    doc = xml.dom.minidom.parseString(svg.chart(res))
    texts = [t.firstChild.data for t in doc.getElementsByTagName("text")]
    assert texts.count("n/a") == 2


def test_free_threaded_pythons_are_found_and_checked(tmp_path):
    from multigil.bench import executors
    ft = tmp_path / "ft"
    gil = tmp_path / "gil"
    for d, flag in ((ft, 1), (gil, 0)):
        d.mkdir()
        exe = d / "python3.14t"
        # A stand-in that answers the probe as a (non-)free-threaded 3.14.
        exe.write_text(f"#!/bin/sh\necho {flag} 3.14\n")
        exe.chmod(0o755)
    found = executors.find_free_threaded(extra_dirs=[str(ft), str(gil)])
    assert (str(ft / "python3.14t"), "3.14") in found
    assert all(p != str(gil / "python3.14t") for p, _ in found)
    rows = workloads.plan([(str(ft / "python3.14t"), "3.14")])
    assert ("free-threaded", str(ft / "python3.14t"),
            "threads, free-threaded 3.14t") in rows
    assert not any("free-threaded" in n for n in workloads.notes(found))


def test_free_threaded_row_runs_threads_in_its_python():
    # The row's child runs in the given executable (here this Python).
    r = workloads.measure(sys.executable, {
        "kind": "free-threaded", "workload": "cpu", "cpu_n": 1000,
        "cpu_tasks": 4, "workers": 2}, timeout=120)
    assert "error" not in r, r
    assert r["result"] == 4 * work.cpu_task(1000)
    assert r["gil"] is getattr(sys, "_is_gil_enabled", lambda: True)()


def test_aggregate_columns_matches_aggregate_per_chunk():
    # Sliced at the chunks' row boundaries, the columns give the text's
    # aggregates exactly (the float sums add the same values in order).
    from multigil.bench import child
    text = work.csv_rows(0, 3000)
    table = child.read_columns(text.encode(), None)
    assert table.schema == {"group": "string", "value": "float64",
                            "qty": "int64"}
    expected = work.combine([work.aggregate(work.csv_rows(s, 700))
                             for s in range(0, 2800, 700)]
                            + [work.aggregate(work.csv_rows(2800, 200))])
    got = work.combine([work.aggregate_columns(table.slice(s, s + 700))
                        for s in range(0, 3000, 700)])
    assert got == expected


def test_bench_columns_row_quick(tmp_path):
    # --quick's row count; --only multigil-columns: serial and the row.
    chart = tmp_path / "bench.svg"
    r = subprocess.run(
        [sys.executable, "-m", "multigil", "bench", "--quick",
         "--cpu-seconds", "0.005", "--only", "multigil-columns", "--json",
         "--svg", str(chart)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["workloads"]["data"]["title"].startswith(
        f"{workloads.QUICK_ROWS:,} CSV rows")
    rows = res["workloads"]["data"]["rows"]
    assert [x["kind"] for x in rows] == ["serial", "multigil-columns"]
    for x in rows:
        # An "error" would include a result that differs from serial's.
        assert "error" not in x, x
        assert x["seconds"] > 0 and x["peak_pss"] > 0
    assert rows[1]["label"] == "multigil.Pool + read_csv (shared columns)"
    assert "memory_ratio" in rows[1] and "speedup" in rows[1]
    # A data-only row: the CPU workload runs serial alone.
    assert [x["kind"] for x in res["workloads"]["cpu"]["rows"]] == [
        "serial"]
    assert any("reading the file and parsing it in C" in n
               for n in res["notes"])
    doc = xml.dom.minidom.parse(str(chart))
    labels = [t.firstChild.data for t in doc.getElementsByTagName("text")]
    assert labels.count("multigil.Pool + read_csv (shared columns)") == 2


def test_columns_row_is_skipped_with_a_note_when_read_csv_fails(
        monkeypatch):
    from multigil.bench import child

    def broken(source, pool):
        raise ImportError("no read_csv here\nsecond line")
    monkeypatch.setattr(child, "read_columns", broken)
    workloads.columns_problem.cache_clear()
    try:
        assert "multigil-columns" not in [k for k, _, _ in
                                          workloads.plan([])]
        notes = workloads.notes([])
        assert ("multigil with shared columns: no row (multigil.read_csv "
                "fails on this Python: ImportError: no read_csv here)"
                in notes)
        with pytest.raises(ValueError,
                           match="read_csv fails here: ImportError"):
            workloads.run(rows=10, only=["multigil-columns"],
                          say=lambda m: None)
    finally:
        workloads.columns_problem.cache_clear()


def test_bench_csv_writes_its_files_into_a_new_folder(tmp_path):
    """bench/bench_csv.py --dir D with D missing made no files (it raised
    FileNotFoundError); the folder is created now."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "bench_csv", os.path.join(ROOT, "bench", "bench_csv.py"))
    bench_csv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_csv)
    d = tmp_path / "not" / "there"
    one, many = bench_csv.write_files(str(d), 1, 2)
    assert os.path.getsize(one) > 900_000
    assert len(many) == 2 and all(os.path.exists(p) for p in many)
    with open(one) as f:
        assert f.readline() == "id,value,name,opt,text\n"
