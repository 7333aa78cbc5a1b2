"""python -m multigil bench: a tiny run end to end (the figures are not
checked, only that every candidate ran, agreed with serial, and that the
table, the JSON and the chart say so)."""
import json
import os
import subprocess
import sys
import xml.dom.minidom

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
