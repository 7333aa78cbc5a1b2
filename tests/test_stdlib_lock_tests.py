"""CPython's own tests of the threading primitives (Lib/test/lock_tests.py:
LockTests, RLockTests, EventTests, ConditionTests, SemaphoreTests,
BoundedSemaphoreTests, BarrierTests) run against multigil's types, as the
threading module runs them against its own. These tests use threads of one
interpreter; tests/test_sync.py covers several interpreters.

Left out, each for a stated reason (the private hooks threading's own
classes use among themselves, not part of the documented API):
"""
import unittest

import pytest

import multigil as mg

try:
    from test import lock_tests
except ImportError:  # a Python built without its test package
    lock_tests = None

# (class, test): why it is not run against multigil.
NOT_RUN = {
    ("LockTests", "test_at_fork_reinit"):
        "_at_fork_reinit is threading's private fork hook; multigil's locks "
        "live outside the process's interpreters and are not reinitialised "
        "in a forked child (docs/queue.md)",
    ("EventTests", "test_at_fork_reinit"):
        "tests threading.Event's private _cond attribute",
    ("RLockTests", "test_release_save_unacquired"):
        "_release_save is the private hook threading.Condition uses on its "
        "own RLock; multigil.Condition does this in C",
    ("ConditionTests", "test_acquire"):
        "passes a threading.Lock to the condition; a multigil.Condition "
        "needs a multigil Lock or RLock (it is shared by interpreters)",
}

__doc__ += "".join(f"\n- {c}.{t}: {why}" for (c, t), why in NOT_RUN.items())


def _adapt(base, **types):
    ns = {name: staticmethod(t) for name, t in types.items()}
    for (cls, test), why in NOT_RUN.items():
        if cls == base.__name__ and hasattr(base, test):
            ns[test] = unittest.skip(reason=why)(getattr(base, test))
    return type("Mg" + base.__name__, (base,), ns)


if lock_tests is None:
    @pytest.mark.skip(reason="this Python has no test.lock_tests")
    def test_stdlib_lock_tests():
        """Stands for the stdlib tests this Python does not ship."""
else:
    MgLockTests = _adapt(lock_tests.LockTests, locktype=mg.Lock)
    MgRLockTests = _adapt(lock_tests.RLockTests, locktype=mg.RLock)
    MgEventTests = _adapt(lock_tests.EventTests, eventtype=mg.Event)
    MgConditionTests = _adapt(lock_tests.ConditionTests,
                              condtype=mg.Condition)
    MgSemaphoreTests = _adapt(lock_tests.SemaphoreTests,
                              semtype=mg.Semaphore)
    MgBoundedSemaphoreTests = _adapt(lock_tests.BoundedSemaphoreTests,
                                     semtype=mg.BoundedSemaphore)
    MgBarrierTests = _adapt(lock_tests.BarrierTests, barriertype=mg.Barrier)

    def test_every_left_out_test_exists():
        """NOT_RUN names tests that exist (a rename upstream would make it
        silently skip nothing)."""
        for cls, test in NOT_RUN:
            assert hasattr(getattr(lock_tests, cls), test), (cls, test)
