"""scripts/soak.py (`make soak`) at a tiny size: it runs, checks what it
should, and fails when memory does leak."""
import json
import os
import subprocess
import sys

import pytest

# AddressSanitizer keeps freed memory in its quarantine (resident), so RSS
# growth there says nothing about leaks; the plain runs of the suite check
# it, and make asan still runs the rest of the suite.
rss_means_nothing = pytest.mark.skipif(
    bool(os.environ.get("MULTIGIL_SANITIZER")),
    reason="RSS is not meaningful under AddressSanitizer (quarantine)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def soak(*args):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "soak.py"),
         "--tasks", "30000", "--cycles", "4", "--json", *args],
        capture_output=True, text=True, timeout=300)


@rss_means_nothing
def test_small_soak_passes_with_no_thread_or_fd_left_behind():
    # One measured cycle: a one-time allocator step of a couple of MB is
    # noise at this size, so RSS may grow 25% here (the leak test below
    # keeps the 2% limit; make soak measures a thousand cycles).
    r = soak("--rss-limit", "25")
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["failures"] == []
    assert res["tasks"]["tasks"] == 30000
    assert res["cycles"]["cycles"] == 4
    for phase in ("tasks", "cycles"):
        for what in ("threads", "fds"):
            assert res[phase]["warm"][what] == res[phase]["end"][what]
    # The pool's two worker threads and its output delivery thread are
    # alive during the tasks phase, and gone between cycles.
    assert res["tasks"]["end"]["threads"] == res["cycles"]["end"]["threads"] + 3


@rss_means_nothing
def test_soak_fails_on_a_leak():
    # 4 MB and a pipe kept per block of tasks and per pool cycle: memory
    # well over 2%, and fds.
    r = soak("--inject-leak", "4096")
    assert r.returncode == 1, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert [f.split(":")[0] for f in res["failures"]] == [
        "tasks", "cycles", "tasks", "cycles"]
    # 1 measured block and 1 measured cycle, 2 fds each.
    fds = [line for line in r.stderr.splitlines() if ": fds " in line]
    assert len(fds) == 2
    assert fds[0].startswith("soak: FAIL: tasks: fds ") and \
        fds[0].endswith("at the end (+2)")
    assert fds[1].startswith("soak: FAIL: cycles: fds ") and \
        fds[1].endswith("at the end (+2)")
    assert "soak: FAIL: tasks: RSS grew" in r.stderr
    assert "soak: FAIL: cycles: RSS grew" in r.stderr
