"""mg.Event, Lock, RLock, Semaphore, BoundedSemaphore, Barrier, Condition:
threading's API, shared by interpreters (crossing to tasks as handles)."""
import functools
import threading
import _thread

import pytest

import multigil as mg
from helpers_queue import (SlowToPickle, action_with, barrier_outcome,
                           barrier_parties, barrier_rounds, barrier_wait,
                           cond_consume, locked_increments, native_id,
                           put_thread_name,
                           raise_value_error, rlock_owner_probe, wait_event)


def test_event_api_and_cross_interpreter_wake(pool):
    ev = mg.Event()
    assert not ev.is_set() and ev.wait(0.01) is False
    f = pool.submit(wait_event, ev, 30)
    ev.set()
    assert f.result() is True and ev.is_set() and ev.wait() is True
    ev.clear()
    assert not ev.is_set()


def test_lock_api():
    lock = mg.Lock()
    assert lock.acquire() and lock.locked()
    assert lock.acquire(blocking=False) is False
    assert lock.acquire(timeout=0.01) is False
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    with pytest.raises(ValueError):
        lock.acquire(False, 1)
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_lock_excludes_across_interpreters():
    lock, counter = mg.Lock(), mg.Queue(1)
    counter.put(0)
    with mg.Pool(3) as p:
        fs = [p.submit(locked_increments, lock, counter, 300)
              for _ in range(3)]
        locked_increments(lock, counter, 300)
        assert sum(f.result() for f in fs) == 900
    assert counter.get() == 1200


def test_rlock_owner_is_interpreter_and_thread(pool):
    r = mg.RLock()
    with r:
        with r:  # reentrant in this thread
            assert r._is_owned()
        # Another interpreter (and another thread of this one) is not the
        # owner: neither may take it.
        assert pool.submit(rlock_owner_probe, r).result() is False
        out = []
        t = threading.Thread(target=lambda: out.append(
            r.acquire(blocking=False)))
        t.start()
        t.join()
        assert out == [False]
    with pytest.raises(RuntimeError):
        r.release()


def test_semaphores():
    s = mg.Semaphore(2)
    assert s.acquire() and s.acquire(timeout=0.01)
    assert s.acquire(blocking=False) is False
    s.release(2)
    with s:
        pass
    b = mg.BoundedSemaphore(1)
    with pytest.raises(ValueError):
        b.release()
    with pytest.raises(ValueError):
        mg.Semaphore(-1)


def test_barrier_across_interpreters_and_breaking():
    b = mg.Barrier(3)
    assert b.parties == 3
    with mg.Pool(2) as p:
        fs = [p.submit(barrier_wait, b) for _ in range(2)]
        mine = b.wait()
        assert sorted([mine] + [f.result() for f in fs]) == [0, 1, 2]
    lone = mg.Barrier(2)
    with pytest.raises(threading.BrokenBarrierError):
        lone.wait(timeout=0.01)
    assert lone.broken
    lone.reset()
    assert not lone.broken and lone.n_waiting == 0
    lone.abort()
    with pytest.raises(mg.BrokenBarrierError):
        lone.wait()
    with pytest.raises(TypeError):
        mg.Barrier(2, action=42)


def test_barrier_action_runs_once_per_round_before_release_anywhere():
    q = mg.Queue()
    b = mg.Barrier(3, action=functools.partial(put_thread_name, q))
    rounds = 6
    with mg.Pool(2) as p:
        fs = [p.submit(barrier_rounds, b, q, rounds) for _ in range(2)]
        mine = barrier_rounds(b, q, rounds)
        theirs = [f.result(timeout=60) for f in fs]
        parties = set(p.broadcast(native_id)) | {threading.get_native_id()}
    assert mine == [True] * rounds
    assert theirs == [[True] * rounds] * 2
    names = [q.get_nowait() for _ in range(rounds)]
    assert q.empty()
    # Each round's action ran in whichever party arrived last: the main
    # interpreter's thread or a worker's.
    assert set(names) <= parties


def test_barrier_action_error_breaks_it_and_propagates_in_the_last():
    b = mg.Barrier(2, action=raise_value_error)
    with mg.Pool(1) as p:
        f = p.submit(barrier_outcome, b)
        outcomes = sorted([barrier_outcome(b), f.result(timeout=60)])
    assert outcomes == ["BrokenBarrierError", "ValueError"]
    assert b.broken


def test_barrier_action_that_refers_to_its_barrier_stays_local():
    holder = []
    b = mg.Barrier(2, action=lambda: holder.append(b.parties))
    t = threading.Thread(target=b.wait)
    t.start()
    b.wait()
    t.join()
    assert holder == [2]      # the very callable ran, in this interpreter
    with mg.Pool(1) as p:
        with pytest.raises(mg.NotShareableError, match="itself"):
            p.submit(barrier_wait, b)


def test_barrier_sent_from_two_threads_at_once_is_not_a_self_reference():
    """Regression: while one thread encoded a new barrier's action (here
    pickling a value of it releases the GIL), a second thread sending the
    same barrier got the error meant for an action that refers to its own
    barrier."""
    b = mg.Barrier(1, action=functools.partial(action_with, SlowToPickle()))
    errors, results = [], []
    with mg.Pool(1) as p:
        def send():
            try:
                results.append(p.submit(barrier_parties, b).result(60))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [] and results == [1, 1]


def test_barrier_action_that_cannot_cross_fails_at_submit():
    lock = threading.Lock()
    b = mg.Barrier(2, action=lambda: lock.locked())
    with mg.Pool(1) as p:
        with pytest.raises(mg.NotShareableError):
            p.submit(barrier_wait, b)


def test_condition_notify_across_interpreters(pool):
    cond = mg.Condition(mg.Lock())
    box = mg.Queue(1)
    box.put([])
    f = pool.submit(cond_consume, cond, box, 3)
    for i in range(3):
        with cond:
            items = box.get()
            items.append(i)
            box.put(items)
            cond.notify()
    assert f.result() == [0, 1, 2]


def test_condition_api():
    c = mg.Condition()
    with pytest.raises(RuntimeError):
        c.wait(0)
    with pytest.raises(RuntimeError):
        c.notify()
    with c:
        assert c.wait(0.01) is False
        assert c.wait_for(lambda: 7, timeout=0) == 7
        assert c.wait_for(lambda: 0, timeout=0.01) == 0
        c.notify_all()
    with pytest.raises(TypeError):
        mg.Condition(threading.Lock())


def test_ctrl_c_interrupts_waits_and_condition_keeps_its_lock():
    c = mg.Condition()
    for wait in (mg.Event().wait, mg.Barrier(2).wait,
                 lambda: mg.Semaphore(0).acquire()):
        timer = threading.Timer(0.05, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            wait()
        timer.join()
    with c:
        timer = threading.Timer(0.05, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            c.wait()
        timer.join()
        c.notify()  # still held: no RuntimeError
