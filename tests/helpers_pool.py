"""Module-level functions that tests send to worker interpreters (workers
import functions by module and name)."""
import os
import sys
import threading
import time

import multigil._core as _core

STATE = {"init": None}


def identity(x):
    return x


def square(x):
    return x * x


def add(a, b=0, *, c=0):
    return a + b + c


def interp_id():
    return _core.interpreter_id()


def fail(x):
    raise ValueError(f"bad value {x}")


def fail_if(x, bad):
    if x == bad:
        raise KeyError(x)
    return x


def raise_system_exit():
    raise SystemExit(3)


def raise_keyboard_interrupt():
    raise KeyboardInterrupt


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def busy(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def count_loop(n):
    s = 0
    for i in range(n):
        s += i
    return s


def init_state(value):
    STATE["init"] = value


def read_state():
    return STATE["init"]


def init_fail():
    raise RuntimeError("initializer says no")


def getcwd():
    return os.getcwd()


def getenv(name):
    return os.environ.get(name)


def sys_path():
    return list(sys.path)


def thread_name():
    tid = threading.get_native_id()
    with open(f"/proc/self/task/{tid}/comm") as f:
        return f.read().strip()


def import_module(name):
    import importlib
    return importlib.import_module(name).__name__


def unpicklable_result():
    return threading.Lock()


def wait_for_file(path, timeout):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def c_bound(n):
    """Runs in C (holding the GIL) for a while, then in Python bytecode
    (where an interrupt can fire) for a while longer."""
    total = sum(range(n))
    for i in range(n // 10):
        total += i
    return total


def mg_thread_names():
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return [n for n in names if n.startswith("mg-")]
