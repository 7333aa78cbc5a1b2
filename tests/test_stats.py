"""Pool.stats(): per-worker counters kept in C (engine.c), the queue, and
the process workers' counts."""
import dataclasses
import time

import pytest

import multigil as mg
import helpers_comfort as hc
import helpers_pool as h
from multigil._stats import PoolStats, ProcessStats, WorkerStats


def wait_until(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def test_fresh_pool_is_all_zero():
    with mg.Pool(2) as p:
        s = p.stats()
    assert isinstance(s, PoolStats)
    assert [w.index for w in s.workers] == [0, 1]
    assert all(isinstance(w, WorkerStats) for w in s.workers)
    assert (s.done, s.failed, s.busy, s.queued, s.running) == (0, 0, 0, 0, 0)
    assert s.process is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.queued = 1


def test_counts_after_a_known_mix_of_successes_and_failures():
    with mg.Pool(2) as p:
        assert [p.submit(h.square, i).result() for i in range(5)] \
            == [0, 1, 4, 9, 16]
        for i in range(3):
            with pytest.raises(ValueError):
                p.submit(h.fail, i).result()
        # Two chunks of 5: the second one raises at its third item.
        with pytest.raises(KeyError):
            list(p.map(h.fail_if, range(10), [7] * 10, chunksize=5))
        s = p.stats()
    assert s.done == 5 + 3 + 2
    assert s.failed == 3 + 1
    assert sum(w.done for w in s.workers) == s.done
    assert all(w.failed <= w.done for w in s.workers)
    assert s.running == 0 and s.queued == 0


def test_broadcast_is_counted_once_per_worker():
    with mg.Pool(3) as p:
        assert p.broadcast(h.square, 3) == [9, 9, 9]
        s = p.stats()
    assert [w.done for w in s.workers] == [1, 1, 1]
    assert [w.failed for w in s.workers] == [0, 0, 0]


def test_busy_time_grows_with_a_sleeping_task():
    with mg.Pool(1) as p:
        p.submit(h.square, 2).result()
        before = p.stats().workers[0].busy
        assert p.submit(h.sleep_then, 0.2, 1).result() == 1
        after = p.stats().workers[0].busy
    assert after >= before + 0.15  # a lower bound only


def test_queued_and_running_while_workers_are_blocked():
    ev = mg.Event()
    with mg.Pool(2) as p:
        blocked = [p.submit(hc.wait_event, ev, i) for i in range(2)]
        wait_until(lambda: p.stats().running == 2)
        waiting = [p.submit(h.square, i) for i in range(3)]
        s = p.stats()
        assert (s.running, s.queued) == (2, 3)
        assert all(w.running for w in s.workers)
        assert waiting[2].cancel()
        assert p.stats().queued == 2  # a cancelled task is not counted
        ev.set()
        assert [f.result() for f in blocked] == [0, 1]
        assert [f.result() for f in waiting[:2]] == [0, 1]
        s = p.stats()
    assert (s.running, s.queued, s.done, s.failed) == (0, 0, 4, 0)


def test_stats_after_shutdown_keep_the_counts():
    p = mg.Pool(2)
    list(p.map(h.square, range(20), chunksize=5))
    p.shutdown()
    s = p.stats()
    assert (s.done, s.failed, s.queued, s.running) == (4, 0, 0, 0)
    assert s == p.stats()


def test_a_recycled_worker_keeps_counting():
    with mg.Pool(1, max_tasks_per_worker=2) as p:
        ids = {p.submit(h.interp_id).result() for _ in range(5)}
        s = p.stats()
    assert len(ids) == 3  # three interpreters ...
    assert s.workers[0].done == 5  # ... one worker's count


def test_process_workers_appear_in_their_own_section():
    with mg.Pool(1) as p:
        assert p.submit_process(h.square, 4).result(timeout=120) == 16
        with pytest.raises(ValueError):
            p.submit_process(h.fail, 1).result(timeout=120)
        s = p.stats()
    assert isinstance(s.process, ProcessStats)
    assert (s.process.done, s.process.failed) == (2, 1)
    assert s.process.started >= 1
    assert s.done == 0  # the interpreters ran none of them
