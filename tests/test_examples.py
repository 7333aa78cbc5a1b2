"""The examples in examples/ run and verify themselves (small sizes)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def run_example(name, *args):
    env = dict(os.environ, PYTHONPATH=ROOT, MULTIGIL_EXAMPLE_N="200000")
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", name), *args],
        capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("name,word", [("global_mean.py", "match"),
                                       ("normalize.py", "verified"),
                                       ("csv_groupby.py", "verified")])
def test_example_runs_and_verifies(name, word):
    r = run_example(name, "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == word



def test_demo_runs_and_every_way_agrees(tmp_path):
    chart = tmp_path / "demo.svg"
    r = run_example("demo.py", "--rows", "20000", "--column", "100000",
                    "--workers", "2", "--svg", str(chart))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "machine: " in r.stdout
    assert "multigil.Pool (codec)" in r.stdout
    assert "failed" not in r.stdout and "wrong result" not in r.stdout
    assert f"chart: {chart}" in r.stdout
    assert chart.read_text().startswith("<svg")
    assert r.stdout.rstrip().endswith("verified")


@pytest.mark.parametrize("name,args", [
    ("channel.py", ["--records", "5000"]),
    ("etl_pipeline.py", ["--records", "3000", "--workers", "2"]),
])
def test_queue_examples_match_a_serial_run(name, args):
    r = run_example(name, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "verified"


def _openpyxl_here():
    import importlib.util
    return importlib.util.find_spec("openpyxl") is not None


def test_load_many_loads_csv_and_xlsx_and_every_way_agrees(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, MULTIGIL_CACHE_DIR=str(tmp_path))
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "load_many.py"),
         "--csv", "3", "--xlsx", "2", "--rows", "2000", "--workers", "2",
         "--compare"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert out.rstrip().endswith("verified")
    assert out.count("same totals: yes") == 2
    if not _openpyxl_here():
        assert "openpyxl is not installed" in out
        assert ".xlsx" not in out.split("\n\n", 1)[1]
    elif sys.version_info >= (3, 13):
        # openpyxl is pure Python; from 3.13 its pyexpat is multi-phase.
        assert "the .xlsx files load inside the workers" in out
        assert "main interpreter" not in out.split("\n\n", 1)[1]
    else:
        # 3.12's pyexpat is single-phase: openpyxl fails in a worker.
        assert "openpyxl cannot be used in the workers" in out
        assert out.count("main interpreter") == 2 + 1


def _pyside6_here():
    import importlib.util
    return importlib.util.find_spec("PySide6") is not None


@pytest.mark.skipif(not _pyside6_here(), reason="needs PySide6 (an "
                    "optional extra: scripts/venv.sh installs it into the "
                    "bench venv where it has wheels for this Python)")
def test_gui_headless_screenshot(tmp_path):
    shot = tmp_path / "gui.png"
    env = dict(os.environ, PYTHONPATH=ROOT, QT_QPA_PLATFORM="offscreen",
               MULTIGIL_CACHE_DIR=str(tmp_path))
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "gui.py"),
         "--selftest", str(shot), "--workers", "2", "--timeout", "100"],
        capture_output=True, text=True, timeout=150, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(res) == {"threads", "processes", "multigil"}
    rows = {m: (v["files"], v["rows"]) for m, v in res.items()}
    assert len(set(rows.values())) == 1 and rows["multigil"][0] == 8
    assert all(v["workers"] >= 1 for v in res.values())
    # Not blank: the picture has the window's size and many colours.
    check = ("import sys\nfrom PySide6.QtGui import QImage\n"
             "img = QImage(sys.argv[1])\n"
             "cols = {img.pixel(x, y) for x in range(0, img.width(), 7)"
             " for y in range(0, img.height(), 7)}\n"
             "print(img.width(), img.height(), len(cols))\n")
    r = subprocess.run([sys.executable, "-c", check, str(shot)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    w, h, ncolours = map(int, r.stdout.split())
    assert w >= 400 and h >= 200
    assert ncolours >= 8
