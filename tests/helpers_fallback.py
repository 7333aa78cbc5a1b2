"""Functions that tests send to process workers (importable by name)."""
import os
import signal
import sys

MARKS = os.environ.get("MULTIGIL_TEST_MARKS")


def where(x=None):
    return os.getpid(), x


def env_view(name):
    return os.getcwd(), os.environ.get(name), list(sys.path)


def fail(msg):
    raise ValueError(msg)


def imports_late(path):
    """Has an effect (appends to path), then imports a module that cannot
    load in a subinterpreter: not safe to run twice."""
    with open(path, "a") as f:
        f.write("ran\n")
    import _testsinglephase  # noqa: F401
    return os.getpid()


def die(x):
    os.kill(os.getpid(), signal.SIGKILL)


def fill(a, value):
    for i in range(len(a)):
        a[i] = value
    return len(a)


def same(a):
    return a


def make(n, value):
    """A SharedArray created in the process worker, returned."""
    import multigil
    a = multigil.SharedArray(n, "i8")
    a.fill(value)
    return a


def wait_file(path):
    import time
    while not os.path.exists(path):
        time.sleep(0.01)
    return os.getpid()


def touch(path):
    import time
    time.sleep(0.2)
    with open(path, "w"):
        pass


def memfd_inodes(pid=None):
    """The inodes of the memfds mapped in process pid (default: this)."""
    out = set()
    with open(f"/proc/{pid or 'self'}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5].startswith("/memfd:"):
                out.add(int(parts[4]))
    return out


def mapped(a=None):
    """memfd_inodes() of this process worker, while a task holds a."""
    return memfd_inodes()


def hold_until(path, a):
    """Waits for path while a (a SharedArray) is mapped here; this pid."""
    import time
    while not os.path.exists(path):
        time.sleep(0.01)
    return os.getpid()
