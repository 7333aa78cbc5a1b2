"""python -m multigil."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "multigil", *args],
                          capture_output=True, text=True, env=env,
                          timeout=300)


def test_info_json():
    r = run("info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["python"] == sys.version.split()[0]
    assert info["extension"].endswith(".so")


def test_bad_command_exits_2():
    r = run("nope")
    assert r.returncode == 2
    assert "invalid choice" in r.stderr
