"""multigil._memory - peak memory of a whole process tree, measured as PSS
from outside it.

PSS (proportional set size) charges each resident page to the processes
that map it in equal shares, so the PSS of a tree summed over its processes
counts a page shared by a parent and its forked children once, not once per
process: the memory the tree really costs. Linux only (/proc/PID/
smaps_rollup, kernel 4.14+).

Used by ``python -m multigil bench`` and bench/: start the program to
measure as a child, sample the tree from the parent (a sampler inside the
measured process would add its own thread and pages to what it measures).

    with PeakSampler(proc.pid) as s:
        proc.wait()
    s.peak   # bytes, or None where /proc cannot tell
"""
import os
import threading

__all__ = ["pss_bytes", "tree_pids", "tree_pss", "PeakSampler",
           "available"]


def available():
    """True where this kernel can report PSS (/proc/self/smaps_rollup)."""
    return os.path.exists("/proc/self/smaps_rollup")


def pss_bytes(pid):
    """PSS of one process in bytes, or None if it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _children(pid):
    """Direct children of pid: from /proc/PID/task/TID/children where the
    kernel has it (CONFIG_PROC_CHILDREN), else by scanning /proc."""
    kids = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(k) for k in f.read().split())
        except FileNotFoundError:
            return _children_by_scan(pid)
        except (OSError, ValueError):
            continue
    return kids


def _children_by_scan(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            # The command name (field 2) may hold spaces and parentheses:
            # the fields after its last ')' are state, then the parent pid.
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(entry))
    return kids


def tree_pids(pid):
    """pid and all its living descendants (children, grandchildren...)."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


def tree_pss(pid):
    """PSS of pid and all its descendants in bytes (processes that end
    while being read count 0), or None if pid itself is unreadable."""
    total = None
    for p in tree_pids(pid):
        v = pss_bytes(p)
        if v is not None:
            total = (total or 0) + v
    return total


class PeakSampler:
    """Sample tree_pss(pid) every `interval` seconds on a thread of the
    calling (measuring) process until stop(); `peak` is the largest sum
    seen (bytes, None if never readable) and `samples` how many were
    taken. A peak shorter than the interval may be missed: the reported
    peak is a lower bound."""

    def __init__(self, pid, interval=0.02):
        self.pid = pid
        self.interval = interval
        self.peak = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"pss-sampler-{pid}")

    def _sample(self):
        v = tree_pss(self.pid)
        if v is not None:
            self.samples += 1
            if self.peak is None or v > self.peak:
                self.peak = v

    def _run(self):
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                return

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.peak

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
