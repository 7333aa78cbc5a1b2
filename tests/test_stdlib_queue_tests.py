"""CPython's own tests of queue.Queue and queue.SimpleQueue
(Lib/test/test_queue.py: BaseQueueTestMixin, BaseSimpleQueueTest) run
against multigil.Queue: put/get/qsize/full/empty, timeouts, many threads,
task_done/join, and on 3.13+ shutdown(immediate). These use threads of one
interpreter; tests/test_queue.py covers several interpreters.

Left out, each for a stated reason:
"""
import queue
import unittest

import pytest

import multigil as mg

try:
    from test import test_queue
except ImportError:  # a Python built without its test package
    test_queue = None

# (class, test): why it is not run against multigil.
NOT_RUN = {
    ("BaseQueueTestMixin", "test_shrinking_queue"):
        "assigns maxsize; a multigil.Queue's bound is fixed at creation "
        "(it is shared by interpreters)",
    ("BaseSimpleQueueTest", "test_references"):
        "checks that the very object put comes back; a multigil.Queue "
        "copies plain values (it is shared by interpreters), and the test's "
        "local class cannot be pickled",
}

__doc__ += "".join(f"\n- {c}.{t}: {why}" for (c, t), why in NOT_RUN.items())


def _adapt(base):
    def setUp(self):
        self.type2test = mg.Queue
        self.queue = queue
        base.setUp(self)
    ns = {"setUp": setUp}
    for (cls, test), why in NOT_RUN.items():
        if cls == base.__name__ and hasattr(base, test):
            ns[test] = unittest.skip(reason=why)(getattr(base, test))
    return type("Mg" + base.__name__, (base, unittest.TestCase), ns)


if test_queue is None:
    @pytest.mark.skip(reason="this Python has no test.test_queue")
    def test_stdlib_queue_tests():
        """Stands for the stdlib tests this Python does not ship."""
else:
    MgBaseQueueTestMixin = _adapt(test_queue.BaseQueueTestMixin)
    MgBaseSimpleQueueTest = _adapt(test_queue.BaseSimpleQueueTest)

    def test_every_left_out_test_exists():
        """NOT_RUN names tests that exist (a rename upstream would make it
        silently skip nothing)."""
        for cls, test in NOT_RUN:
            assert hasattr(getattr(test_queue, cls), test), (cls, test)


def test_task_done_and_join_across_interpreters():
    from helpers_queue import consume_with_task_done
    q = mg.Queue()
    for i in range(50):
        q.put(i)
    with mg.Pool(2) as p:
        fs = [p.submit(consume_with_task_done, q) for _ in range(2)]
        q.join()                       # every item was marked done
        assert q.unfinished_tasks == 0
        q.close()
        got = sorted(x for f in fs for x in f.result(timeout=60))
    assert got == list(range(50))
    with pytest.raises(ValueError, match="too many"):
        q.task_done()


def test_closed_queue_is_a_stdlib_shutdown_where_there_is_one():
    q = mg.Queue()
    q.shutdown()
    assert q.is_shutdown and q.closed
    with pytest.raises(mg.QueueClosed):
        q.put(1)
    if hasattr(queue, "ShutDown"):
        assert issubclass(mg.QueueClosed, queue.ShutDown)


def test_shutdown_immediate_drops_items_and_releases_join():
    q = mg.Queue()
    for i in range(5):
        q.put(i)
    assert q.get() == 0                # taken, not yet done
    q.shutdown(immediate=True)
    assert q.qsize() == 0 and q.unfinished_tasks == 1
    with pytest.raises(mg.QueueClosed):
        q.get_nowait()
    q.task_done()
    q.join()                           # returns: nothing is unfinished
