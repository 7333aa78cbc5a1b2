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


INNER = {}


def leave_inner_pool_open(x):
    """Creates a pool inside a worker and keeps it in a module global (so
    it is still open when the worker's interpreter ends)."""
    import multigil
    INNER["pool"] = multigil.Pool(1)
    return INNER["pool"].submit(square, x).result()


def blocked_signals():
    import signal
    return sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))


def terminate_child():
    """Starts a child that sleeps, terminates it, returns its status."""
    import subprocess
    child = subprocess.Popen([sys.executable, "-c",
                              "import time; time.sleep(60)"])
    time.sleep(0.2)
    child.terminate()
    try:
        return child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return "ignored SIGTERM"


def thread_blocked_signals():
    out = []
    t = threading.Thread(target=lambda: out.append(blocked_signals()))
    t.start()
    t.join()
    return out[0]


def segfault_this_thread():
    import signal
    signal.pthread_kill(threading.get_ident(), signal.SIGSEGV)
    time.sleep(5)
    return "no crash"


def init_fail_long(n=400):
    raise ValueError("\u20ac" * n)


def hold_then_len(path, s):
    """Waits (up to 30 s) for path to exist, then returns len(s)."""
    wait_for_file(path, 30)
    return len(s)
