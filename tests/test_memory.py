"""multigil._memory: PSS of a process tree, sampled from outside it."""
import os
import subprocess
import sys
import textwrap

import pytest

from multigil import _memory

MB = 2**20

pytestmark = pytest.mark.skipif(not _memory.available(),
                                reason="needs /proc/PID/smaps_rollup (Linux)")

# A child that holds `mb` MB of touched private memory, then forks `kids`
# children that only read it (so its pages are shared with them), says
# "ready" and waits for its stdin to close.
TREE = textwrap.dedent("""
    import os, sys
    mb, kids = int(sys.argv[1]), int(sys.argv[2])
    data = bytearray(os.urandom(1024)) * (mb * 1024)
    pids = []
    for _ in range(kids):
        pid = os.fork()
        if pid == 0:
            sys.stdin.read()
            os._exit(0)
        pids.append(pid)
    print("ready", flush=True)
    sys.stdin.read()
    for pid in pids:
        os.waitpid(pid, 0)
""")


def start_tree(mb, kids):
    p = subprocess.Popen([sys.executable, "-c", TREE, str(mb), str(kids)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline() == "ready\n"
    return p


def stop_tree(p):
    p.stdin.close()
    assert p.wait(timeout=60) == 0


def test_tree_includes_children_and_counts_shared_pages_once():
    p = start_tree(64, 2)
    try:
        pids = _memory.tree_pids(p.pid)
        assert len(pids) == 3 and pids[0] == p.pid
        parent = _memory.pss_bytes(p.pid)
        total = _memory.tree_pss(p.pid)
        # The 64 MB are shared three ways: the parent's PSS holds a third,
        # the tree all of them, once (RSS would count them three times).
        assert parent < 50 * MB
        assert 60 * MB < total < 100 * MB
    finally:
        stop_tree(p)


def test_peak_sampler_sees_a_peak_that_is_gone_at_the_end():
    code = ("import time, os\n"
            "x = bytearray(os.urandom(1024)) * (80 * 1024)\n"
            "time.sleep(0.5)\n"
            "del x\n"
            "time.sleep(0.3)\n")
    p = subprocess.Popen([sys.executable, "-c", code])
    with _memory.PeakSampler(p.pid, interval=0.01) as s:
        p.wait(timeout=60)
    assert s.samples > 5
    assert s.peak > 80 * MB


def test_gone_process_reads_as_none():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert _memory.pss_bytes(p.pid) is None
    assert _memory.tree_pss(p.pid) is None
