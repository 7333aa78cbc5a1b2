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


def test_info_build_flags_and_packages(tmp_path):
    env_cache = dict(MULTIGIL_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "multigil", "info", "--json"],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=ROOT, **env_cache))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    b = info["extension_build"]
    # `make test` builds with the test hooks and says so in the env.
    hooks = os.environ.get("MULTIGIL_TEST_HOOKS") == "1"
    assert b["test_hooks"] is hooks
    assert b["python_headers"] == sys.version.split()[0]
    assert info["build"] in ("GIL", "free-threaded")
    assert info["usable_cpus"] == len(os.sched_getaffinity(0))
    assert set(info["packages"]) == {"numpy", "pyarrow", "pandas", "polars"}
    for facts in info["packages"].values():
        if facts["installed"]:
            assert facts["own_gil_subinterpreter"].startswith("unknown")


def test_info_reads_compat_cache(tmp_path, monkeypatch):
    from multigil import __main__ as cli, _compat
    monkeypatch.setenv("MULTIGIL_CACHE_DIR", str(tmp_path))
    assert cli._package_facts("pytest")["own_gil_subinterpreter"] \
        .startswith("unknown: run python -m multigil compat pytest")
    _compat.save_cache({"pytest": {
        "package": "pytest", "own_gil": False, "error": "why not",
        "version_key": _compat.version_key("pytest")}})
    assert cli._package_facts("pytest")["own_gil_subinterpreter"] == \
        "no (why not)"
    assert cli._package_facts("no_such_package_here") == {"installed": False}
