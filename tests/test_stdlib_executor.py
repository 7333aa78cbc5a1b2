"""CPython's generic executor tests (test.test_concurrent_futures) run
against multigil.Pool (see stdlib_executor_support for what is adapted),
and tests of the map() and initializer behaviour those tests check, for
every Python (3.12 ships no test.test_concurrent_futures)."""
import contextlib
import gc
import itertools
import logging
import os
import select
import threading
import unittest
import weakref
from concurrent.futures import CancelledError

import pytest

import multigil
import multigil.pool
import stdlib_executor_support as sup

try:
    sup.build(globals())
except unittest.SkipTest as e:
    _WHY = str(e)

    @pytest.mark.skip(reason=_WHY)
    def test_stdlib_concurrent_futures_suite():
        """Stands for the stdlib suite this Python does not ship."""


# ---- map(): what the stdlib tests check, on every Python ----

@pytest.fixture
def pipes():
    """Two pipes, (gate_r, gate_w, done_r, done_w): tasks wait for a byte on
    the gate, and write one on done. The gate is opened wide at the end so
    that no worker stays blocked."""
    gate_r, gate_w = os.pipe()
    done_r, done_w = os.pipe()
    yield gate_r, gate_w, done_r, done_w
    os.write(gate_w, b"g" * 4096)
    for fd in (gate_w, done_r, done_w):
        os.close(fd)
    # gate_r stays open: a worker may still read it; closed at exit.


@contextlib.contextmanager
def gated_pool(workers, gate_w):
    """A Pool whose workers are let through the gate before it shuts down,
    even when the test fails."""
    pool = multigil.Pool(workers)
    try:
        yield pool
    finally:
        os.write(gate_w, b"g" * 4096)
        pool.shutdown(wait=True)


def read_exactly(fd, n, timeout=60):
    got = b""
    while len(got) < n:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"only {len(got)} of {n} bytes within {timeout}s"
        got += os.read(fd, n - len(got))
    return got


def readable(fd):
    return bool(select.select([fd], [], [], 0)[0])


@pytest.mark.parametrize("ordered", [True, False])
def test_map_keeps_no_reference_to_yielded_results(ordered):
    # stdlib test_free_reference; chunks of several items each.
    with multigil.Pool(2) as pool:
        for obj in pool.map(sup.make_thing, range(40), chunksize=8,
                            ordered=ordered):
            wr = weakref.ref(obj)
            del obj
            gc.collect()
            assert wr() is None


def test_map_buffersize_reads_only_buffersize_items():
    # stdlib test_map_buffersize_when_buffer_is_full
    with multigil.Pool(2) as pool:
        ints = iter(range(10))
        it = pool.map(pow, ints, itertools.repeat(2), buffersize=3)
        assert next(ints) == 3
        assert next(it) == 0
        ints = iter(range(10))
        pool.map(str, ints, buffersize=2)
        pool.shutdown(wait=True)
        assert next(ints) == 2


def test_map_timeout_cancels_the_chunk_it_timed_out_on(pipes):
    gate_r, gate_w, done_r, done_w = pipes
    with gated_pool(1, gate_w) as pool:
        blocker = pool.submit(sup.read_byte, gate_r)  # holds the worker
        it = pool.map(sup.write_byte, [done_w], timeout=0.05)
        with pytest.raises(TimeoutError):
            next(it)
        os.write(gate_w, b"g")
        assert blocker.result(timeout=60) == b"g"
    # The chunk was still queued when map() timed out: it never ran.
    assert not readable(done_r)


def test_map_encodes_a_few_chunks_ahead_and_runs_unconsumed(pipes):
    gate_r, gate_w, done_r, done_w = pipes
    n = 40
    pulled = []

    def items():
        for i in range(n):
            pulled.append(i)
            yield sup.Counted(i, b"x" * 50_000)
    sup.ENCODED[0] = 0
    with gated_pool(2, gate_w) as pool:
        it = pool.map(sup.gated, itertools.repeat(gate_r),
                      itertools.repeat(done_w), items(), chunksize=1)
        # map() reads its input at once, as Executor.map does, but while
        # no task can finish only a few chunks per worker are encoded.
        assert len(pulled) == n
        assert sup.ENCODED[0] == multigil.pool._AHEAD_PER_WORKER * 2
        # Every task runs although nobody iterates the results.
        os.write(gate_w, b"g" * n)
        assert read_exactly(done_r, n) == b"d" * n
        assert list(it) == list(range(n))
    assert sup.ENCODED[0] == n


def test_map_then_shutdown_runs_every_chunk(pipes):
    gate_r, gate_w, done_r, done_w = pipes
    n = 12
    with gated_pool(1, gate_w) as pool:
        it = pool.map(sup.gated, itertools.repeat(gate_r),
                      itertools.repeat(done_w), map(sup.Counted, range(n)),
                      chunksize=1)
        # Most chunks are not yet sent: shutdown sends them before closing.
        pool.shutdown(wait=False)
        os.write(gate_w, b"g" * n)
        pool.shutdown(wait=True)
    assert list(it) == list(range(n))


def test_map_shutdown_cancel_futures_cancels_the_unsent_chunks(pipes):
    gate_r, gate_w, done_r, done_w = pipes
    sup.ENCODED[0] = 0
    with gated_pool(1, gate_w) as pool:
        it = pool.map(sup.gated, itertools.repeat(gate_r),
                      itertools.repeat(done_w), map(sup.Counted, range(12)),
                      chunksize=1)
        pool.shutdown(wait=False, cancel_futures=True)
        os.write(gate_w, b"g" * 12)
        pool.shutdown(wait=True)
    got = []
    with pytest.raises(CancelledError):
        for v in it:
            got.append(v)
    assert got in ([], [0])  # chunk 0 may have started before shutdown
    assert sup.ENCODED[0] == multigil.pool._AHEAD_PER_WORKER


def test_map_unsendable_item_raises_at_map_or_at_its_position():
    items = [1, 2, 3, 4, 5, threading.Lock(), 7]
    with multigil.Pool(1) as pool:
        # Inside the chunks encoded at once: map() raises, as
        # Executor.map does.
        with pytest.raises(multigil.NotShareableError):
            pool.map(abs, items[4:], chunksize=1)
        # Beyond them: the results before it, then the error.
        it = pool.map(abs, items, chunksize=1)
        assert [next(it) for _ in range(5)] == [1, 2, 3, 4, 5]
        with pytest.raises(multigil.NotShareableError):
            next(it)


def test_map_unsendable_item_sent_by_shutdown(pipes):
    # shutdown sends the rest of the chunks at once; one of them fails.
    gate_r, gate_w, done_r, done_w = pipes
    items = [sup.Counted(i) for i in range(8)]
    items[5] = threading.Lock()
    with gated_pool(1, gate_w) as pool:
        it = pool.map(sup.gated, itertools.repeat(gate_r),
                      itertools.repeat(done_w), items, chunksize=1)
        pool.shutdown(wait=False)
        os.write(gate_w, b"g" * 8)
        pool.shutdown(wait=True)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(multigil.NotShareableError):
        next(it)


def test_failed_initializer_is_logged_and_exposed_as_broken(caplog):
    # stdlib FailingInitializerMixin.test_initializer
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        with multigil.Pool(1, initializer=sup.fail_init) as pool:
            with pytest.raises(multigil.BrokenPool):
                pool.submit(abs, -1).result(timeout=60)
            assert "initializer failed on purpose" in pool._broken
            assert pool._broken  # read twice, logged once
    records = [r for r in caplog.records if r.name == "concurrent.futures"]
    assert len(records) == 1
    assert records[0].levelno == logging.CRITICAL
    text = records[0].getMessage()
    assert text.startswith("Exception in initializer:")
    assert "ValueError: initializer failed on purpose" in text


def test_working_pool_is_not_broken():
    with multigil.Pool(1) as pool:
        assert pool.submit(abs, -1).result(timeout=60) == 1
        assert not pool._broken
