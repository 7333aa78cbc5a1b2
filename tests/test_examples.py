"""The examples in examples/ run and verify themselves (small sizes)."""
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
                                       ("normalize.py", "verified")])
def test_example_runs_and_verifies(name, word):
    r = run_example(name, "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == word



def test_demo_runs_and_every_way_agrees():
    r = run_example("demo.py", "--records", "20000", "--column", "100000",
                    "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "multigil.Pool, warm" in r.stdout
    assert " NO" not in r.stdout
    assert r.stdout.count("yes") == 6
    assert r.stdout.rstrip().endswith("verified")


@pytest.mark.parametrize("name,args", [
    ("channel.py", ["--records", "5000"]),
    ("etl_pipeline.py", ["--records", "3000", "--workers", "2"]),
])
def test_queue_examples_match_a_serial_run(name, args):
    r = run_example(name, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "verified"
