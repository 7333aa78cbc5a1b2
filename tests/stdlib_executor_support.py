"""Runs CPython's own generic executor tests (test.test_concurrent_futures)
against multigil.Pool.

The stdlib test modules are imported from the running Python, never copied:
each version's ExecutorTest, WaitTests, AsCompletedTests,
ExecutorShutdownTest and initializer mixins are combined, by the stdlib's own
create_executor_tests, with PoolMixin below, the way the stdlib combines
them with its ThreadPoolMixin or InterpreterPoolMixin. Only what is
executor-specific is adapted: the executor type, the Event factory, and the
import line of the child scripts that the shutdown tests run; no assertion.
"""
import contextlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The generic test classes of each stdlib module, by the name that module
# gives them. A name a version does not define is left out for it.
GENERIC = {
    "executor": ("ExecutorTest",),
    "test_wait": ("WaitTests",),
    "test_as_completed": ("AsCompletedTests",),
    "test_shutdown": ("ExecutorShutdownTest",),
    "test_init": ("InitializerMixin", "FailingInitializerMixin"),
}

def load():
    """Returns (package, {module name: module}), or raises unittest.SkipTest
    saying why this Python cannot run the stdlib suite."""
    import importlib
    import unittest
    try:
        pkg = importlib.import_module("test.test_concurrent_futures")
        mods = {name: importlib.import_module(
                    f"test.test_concurrent_futures.{name}")
                for name in ("util", *GENERIC)}
    except ImportError as e:
        raise unittest.SkipTest(
            f"CPython {sys.version.split()[0]} does not ship the package "
            f"test.test_concurrent_futures ({e}); nothing to run") from None
    return pkg, mods


_SCRIPT_IMPORT = "from concurrent.futures import Pool"


# The child scripts compare what their tasks print with untagged text, as
# the stdlib executors write it: their Pool writes straight to the file
# descriptors (output=None) instead of forwarding tagged lines.
_CHILD_POOL = ("import sys; sys.path.insert(0, {root!r}); "
               "from multigil import Pool as _MgPool; "
               "Pool = type('Pool', (_MgPool,), {{'__init__': lambda self, "
               "*a, output=None, **k: _MgPool.__init__(self, *a, "
               "output=output, **k)}})")


def _pool_script(code):
    """A child script of the shutdown tests, importing multigil's Pool where
    the stdlib script imports its executor from concurrent.futures."""
    return code.replace(_SCRIPT_IMPORT, _CHILD_POOL.format(root=ROOT))


def make_pool_mixin(util):
    """The executor mixin for multigil.Pool, like util.ThreadPoolMixin."""
    import multigil

    class PoolMixin(util.ExecutorMixin):
        executor_type = multigil.Pool

        def create_event(self):
            # A threading.Event cannot cross to a worker interpreter; an
            # mg.Event crosses as a handle (the stdlib's InterpreterPool
            # tests use a queue-backed event the same way).
            return multigil.Event()

        def setUp(self):
            # The shutdown tests run `from concurrent.futures import
            # <executor_type.__name__>` in a child; point it at multigil.
            shutdown = sys.modules["test.test_concurrent_futures.test_shutdown"]
            run = shutdown.assert_python_ok

            def assert_python_ok(*args, **kw):
                return run(*[_pool_script(a) if isinstance(a, str) else a
                             for a in args], **kw)

            stack = contextlib.ExitStack()
            stack.enter_context(_patched(shutdown, "assert_python_ok",
                                         assert_python_ok))
            self.addCleanup(stack.close)
            super().setUp()

    return PoolMixin


@contextlib.contextmanager
def _patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def build(namespace):
    """Defines the test classes (unittest TestCases, which pytest collects)
    in namespace, a test module's globals()."""
    _, mods = load()
    util = mods["util"]
    mixin = make_pool_mixin(util)
    for modname, names in GENERIC.items():
        for name in names:
            generic = getattr(mods[modname], name, None)
            if generic is not None:
                util.create_executor_tests(namespace, generic,
                                           executor_mixins=(mixin,))


# ---- for the tests of map and of the initializer in test_stdlib_executor;
# functions that workers import (by module and name) and run ----

ENCODED = [0]  # how many Counted objects this interpreter has encoded


class Counted:
    """An item that counts its encodings (its __reduce__ runs in the
    interpreter that sends it)."""

    def __init__(self, value, payload=b""):
        self.value = value
        self.payload = payload

    def __reduce__(self):
        ENCODED[0] += 1
        return (Counted, (self.value, self.payload))


class Thing:
    pass


def make_thing(_):
    return Thing()


def gated(gate_fd, done_fd, item):
    """Waits for one byte on gate_fd, then writes one to done_fd."""
    os.read(gate_fd, 1)
    os.write(done_fd, b"d")
    return item.value


def read_byte(fd):
    return os.read(fd, 1)


def write_byte(fd):
    os.write(fd, b"w")


def fail_init():
    raise ValueError("initializer failed on purpose")
