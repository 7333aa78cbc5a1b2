"""Pool.amap(): map() as an async iterator: same ordering and read-ahead
options, the event loop never blocked, early break, exceptions at their
position, cancellation, bounded memory on endless inputs."""
import asyncio
import contextlib
import gc
import itertools
import threading
import time

import pytest

import multigil as mg
import helpers_comfort as hc
import helpers_pool as h


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def collect(ait):
    return [x async for x in ait]


async def arange(n, reads=None):
    for i in range(n):
        await asyncio.sleep(0)
        if reads is not None:
            reads.append(i)
        yield i


def wait_done(pool, marker=7):
    """Once this returns, every task queued before it on a one-worker pool
    has run or been dropped."""
    assert pool.submit(h.square, marker).result(timeout=60) == marker ** 2


# ---- results ----

@pytest.mark.parametrize("chunksize", [None, 1, 3, 1000])
def test_results_in_order(pool, chunksize):
    out = run(collect(pool.amap(h.square, range(50), chunksize=chunksize)))
    assert out == [i * i for i in range(50)]


def test_unordered_gives_every_result(pool):
    out = run(collect(pool.amap(h.square, range(50), chunksize=4,
                                ordered=False)))
    assert sorted(out) == [i * i for i in range(50)]


@pytest.mark.parametrize("buffersize", [None, 2])
@pytest.mark.parametrize("ordered", [True, False])
def test_several_iterables_zip_to_the_shortest(pool, buffersize, ordered):
    out = run(collect(pool.amap(h.add, range(10), iter(range(100, 107)),
                                buffersize=buffersize, ordered=ordered)))
    expect = [i + 100 + i for i in range(7)]
    assert (out if ordered else sorted(out)) == expect


@pytest.mark.parametrize("buffersize", [None, 3])
def test_async_iterable_input(pool, buffersize):
    out = run(collect(pool.amap(h.square, arange(20),
                                buffersize=buffersize)))
    assert out == [i * i for i in range(20)]
    mixed = run(collect(pool.amap(h.add, arange(5), [10] * 9,
                                  buffersize=buffersize)))
    assert mixed == [10, 11, 12, 13, 14]


def test_empty_input(pool):
    assert run(collect(pool.amap(h.square, []))) == []
    assert run(collect(pool.amap(h.square, [], buffersize=2,
                                 ordered=False))) == []
    assert run(collect(pool.amap(h.square, arange(0), buffersize=2))) == []


def test_async_context_manager(pool):
    async def main():
        async with pool.amap(h.square, range(10)) as it:
            return [x async for x in it]
    assert run(main()) == [i * i for i in range(10)]


# ---- the event loop keeps running ----

@pytest.mark.parametrize("buffersize", [None, 2])
def test_reading_a_sync_input_does_not_block_the_loop(pool, buffersize):
    gate = threading.Event()

    def items():
        # Only a task of the loop opens the gate: had the loop been
        # blocked reading this, it never would.
        if not gate.wait(30):
            raise AssertionError("the event loop was blocked")
        yield from range(5)

    async def opener():
        await asyncio.sleep(0.01)
        gate.set()

    async def main():
        task = asyncio.ensure_future(opener())
        out = await collect(pool.amap(h.square, items(),
                                      buffersize=buffersize))
        await task
        return out
    assert run(main()) == [0, 1, 4, 9, 16]


def test_awaiting_a_result_does_not_block_the_loop(pool):
    ev = mg.Event()

    async def setter():
        await asyncio.sleep(0.01)
        ev.set()  # a worker waits for this while the consumer awaits

    async def main():
        task = asyncio.ensure_future(setter())
        out = await collect(pool.amap(hc.wait_event, [ev, ev], ["a", "b"]))
        await task
        return out
    assert run(main()) == ["a", "b"]


# ---- stopping early ----

def test_break_then_aclose_cancels_the_rest():
    ev = mg.Event()
    with mg.Pool(1) as p:
        async def main():
            it = p.amap(hc.gate, range(20), [ev] * 20, chunksize=1)
            async for x in it:
                assert x == 0
                break
            await it.aclose()
            with pytest.raises(StopAsyncIteration):
                await it.__anext__()
        run(main())
        ev.set()
        wait_done(p)
        s = p.stats()
    # chunk 0, perhaps chunk 1 (running when closed), the marker; not 20.
    assert s.done <= 3


def test_break_and_drop_cancels_the_rest():
    ev = mg.Event()
    with mg.Pool(1) as p:
        async def main():
            async for x in p.amap(hc.gate, range(20), [ev] * 20,
                                  chunksize=1):
                break
            gc.collect()
        run(main())
        ev.set()
        wait_done(p)
        assert p.stats().done <= 3


def test_cancelling_the_consuming_task_cancels_the_rest():
    ev = mg.Event()
    with mg.Pool(1) as p:
        async def main():
            got = asyncio.Event()

            async def consume():
                async for x in p.amap(hc.gate, range(20), [ev] * 20,
                                      chunksize=1):
                    got.set()
            task = asyncio.ensure_future(consume())
            await got.wait()  # it now awaits chunk 1, which waits for ev
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        run(main())
        ev.set()
        wait_done(p)
        assert p.stats().done <= 3


# ---- errors ----

@pytest.mark.parametrize("ordered", [True, False])
def test_an_exception_is_raised_at_its_position(pool, ordered):
    async def main():
        it = pool.amap(h.fail_if, range(10), [5] * 10, chunksize=2,
                       ordered=ordered)
        got = []
        with pytest.raises(KeyError):
            async for x in it:
                got.append(x)
        with pytest.raises(StopAsyncIteration):
            await it.__anext__()
        return got
    got = run(main())
    if ordered:
        assert got == [0, 1, 2, 3, 4]
    else:
        assert 4 in got and 5 not in got


def test_an_input_error_is_raised_at_its_position(pool):
    def items():
        yield from range(4)
        raise LookupError("input broke")

    async def aitems():
        for i in range(4):
            yield i
        raise LookupError("async input broke")

    async def main(src):
        got = []
        with pytest.raises(LookupError):
            async for x in pool.amap(h.square, src, buffersize=2):
                got.append(x)
        return got
    assert run(main(items())) == [0, 1, 4, 9]
    assert run(main(aitems())) == [0, 1, 4, 9]


def test_timeout(pool):
    ev = mg.Event()

    async def main():
        with pytest.raises(TimeoutError):
            async for x in pool.amap(hc.wait_event, [ev], [1], timeout=0.2):
                pass
    try:
        run(main())
    finally:
        ev.set()


def test_argument_checks_are_at_the_call(pool):
    with pytest.raises(ValueError):
        pool.amap(h.square, range(3), chunksize=0)
    with pytest.raises(ValueError):
        pool.amap(h.square, range(3), buffersize=0)
    with pytest.raises(TypeError):
        pool.amap(42, range(3))


def test_after_shutdown():
    p = mg.Pool(1)
    p.shutdown()

    async def main():
        with pytest.raises(RuntimeError, match="after shutdown"):
            await collect(p.amap(h.square, range(3)))
    run(main())


# ---- bounded memory ----

def test_endless_sync_input_is_read_only_ahead_of_the_consumer(pool):
    reads = []
    src = (reads.append(i) or i for i in itertools.count())

    async def main():
        got = []
        async with contextlib.aclosing(
                pool.amap(h.square, src, buffersize=3)) as it:
            async for x in it:
                got.append(x)
                if len(got) == 10:
                    break
        return got
    assert run(main()) == [i * i for i in range(10)]
    assert len(reads) <= 10 + 3 + 1


def test_endless_async_input_is_read_only_ahead_of_the_consumer(pool):
    reads = []

    async def endless():
        for i in itertools.count():
            reads.append(i)
            yield i

    async def main():
        got = []
        it = pool.amap(h.square, endless(), buffersize=3, ordered=False)
        async for x in it:
            got.append(x)
            if len(got) == 10:
                break
        await it.aclose()
        return got
    assert len(run(main())) == 10
    assert len(reads) <= 10 + 3 + 1
