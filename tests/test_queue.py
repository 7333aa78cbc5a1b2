"""mg.Queue: the queue.Queue API, close semantics, batches, crossing to
tasks as a handle (also inside other values), Ctrl-C and asyncio."""
import asyncio
import queue
import threading
import _thread

import pytest

import multigil as mg
from helpers_queue import (array_total, consume, echo_through,
                           make_queue_with, produce)


def test_fifo_and_queue_api():
    q = mg.Queue(2)
    assert q.maxsize == 2 and q.empty() and not q.full()
    q.put({"a": [1, 2]})
    q.put_nowait("x")
    assert q.full() and q.qsize() == 2
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.01)
    with pytest.raises(mg.QueueFull):
        q.put_nowait(3)
    assert q.get() == {"a": [1, 2]}
    assert q.get_nowait() == "x"
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(mg.QueueEmpty):
        q.get(block=False)
    with pytest.raises(ValueError):
        q.get(timeout=-1)


def test_close_refuses_puts_and_drains_then_ends_iteration():
    q = mg.Queue()
    q.put_many(range(5))
    q.close()
    assert q.closed
    with pytest.raises(mg.QueueClosed):
        q.put(9)
    with pytest.raises(mg.QueueClosed):
        q.put_many([9])
    assert q.get() == 0
    assert list(q) == [1, 2, 3, 4]
    with pytest.raises(mg.QueueClosed):
        q.get()
    with pytest.raises(mg.QueueClosed):
        q.get_many(3, timeout=1)


def test_close_wakes_a_blocked_getter_and_putter():
    q = mg.Queue(1)
    errors = []

    def getter():
        try:
            mg.Queue.get(r)
        except mg.QueueClosed:
            errors.append("get")

    def putter():
        q.put(1)
        try:
            q.put(2)
        except mg.QueueClosed:
            errors.append("put")
    r = mg.Queue()
    ts = [threading.Thread(target=getter), threading.Thread(target=putter)]
    for t in ts:
        t.start()
    while not q.full():
        pass
    q.close()
    r.close()
    for t in ts:
        t.join(10)
    assert sorted(errors) == ["get", "put"]


def test_put_many_get_many_batches_in_order():
    q = mg.Queue()
    q.put_many(x * x for x in range(10))
    assert q.get_many(4) == [0, 1, 4, 9]
    assert q.get_many(100) == [16, 25, 36, 49, 64, 81]
    with pytest.raises(ValueError):
        q.get_many(0)
    with pytest.raises(mg.QueueEmpty):
        q.get_many(3, timeout=0.01)


def test_put_many_encodes_everything_before_putting_anything():
    q = mg.Queue()
    with pytest.raises(mg.NotShareableError):
        q.put_many([1, 2, threading.Lock()])
    assert q.qsize() == 0


def test_bounded_put_many_partial_timeout_keeps_what_was_put():
    q = mg.Queue(3)
    with pytest.raises(mg.QueueFull) as ei:
        q.put_many(range(5), timeout=0.01)
    assert ei.value.items_put == 3
    assert q.get_many(10) == [0, 1, 2]
    q.close()
    with pytest.raises(mg.QueueClosed) as ei:
        q.put(1)
    assert ei.value.items_put == 0


def test_wrappers_of_one_queue_are_equal_and_not_picklable():
    import pickle
    q = mg.Queue()
    carrier = mg.Queue()
    carrier.put(q)
    other = carrier.get()
    assert other is not q and q == other and q != mg.Queue()
    assert hash(q) == hash(other)
    with pytest.raises(TypeError):
        pickle.dumps(q)


def test_queue_crosses_to_tasks_and_back(pool):
    q = mg.Queue()
    f = pool.submit(produce, q, 0, 1000, 7)
    got = [q.get() for _ in range(1000)]
    assert got == list(range(1000)) and f.result()[:2] == (1000, 499500)
    q2 = pool.submit(make_queue_with, ["made", "in", "a", "worker"]).result()
    assert q2.get_many(10) == ["made", "in", "a", "worker"]


def test_queue_inside_values_and_queues(pool):
    qin, qout = mg.Queue(), mg.Queue()
    carrier = mg.Queue()
    carrier.put({"pair": (qin, qout)})
    pair = carrier.get()["pair"]
    f = pool.submit(echo_through, *pair)
    qin.put_many(["a", qin.maxsize, [1.5]])
    qin.close()
    assert f.result() == "drained"
    assert qout.get_many(10) == ["a", 0, [1.5]]


def test_shared_array_moves_as_a_handle(pool):
    a = mg.SharedArray(1000, "f8")
    a[:] = range(1000)
    q = mg.Queue()
    q.put(a)
    b = q.get()
    b[0] = 42.0  # the same memory, not a copy
    assert a[0] == 42.0
    q.put(a)
    assert pool.submit(array_total, q).result() == sum(range(1000)) + 42


def test_ctrl_c_interrupts_a_main_thread_get():
    q = mg.Queue()
    timer = threading.Timer(0.05, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        q.get()
    timer.join()


def test_many_producers_consumers_across_interpreters():
    n, per = 4, 5000
    q = mg.Queue(64)
    with mg.Pool(4) as p:
        cons = [p.submit(consume, q, 16) for _ in range(2)]
        prods = [p.submit(produce, q, i * per, per, 3) for i in range(2)]
        main_put = produce(q, 2 * per, 2 * per, 5)
        for f in prods:
            f.result()
        q.close()
        counts = [f.result() for f in cons]
    assert main_put[0] == 2 * per
    total = n * per
    assert sum(c for c, _, _ in counts) == total
    assert sum(s for _, s, _ in counts) == total * (total - 1) // 2
    assert sum(s for _, _, s in counts) == sum(x * x for x in range(total))


def test_asyncio_aget_aput_do_not_block_the_loop():
    async def main():
        q = mg.Queue(1)
        ticks = []

        async def ticker():
            for _ in range(5):
                ticks.append(1)
                await asyncio.sleep(0.01)

        async def producer():
            await asyncio.sleep(0.03)
            await q.aput("a")
            await q.aput("b")  # waits for room
        t1 = asyncio.create_task(ticker())
        t2 = asyncio.create_task(producer())
        got = [await q.aget(), await q.aget()]
        await t1
        await t2
        return got, len(ticks)
    got, ticks = asyncio.run(main())
    assert got == ["a", "b"] and ticks == 5


def test_asyncio_cancelled_aget_loses_no_item():
    async def main():
        q = mg.Queue()
        t = asyncio.create_task(q.aget())
        await asyncio.sleep(0.02)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        q.put("kept")
        return await q.aget()
    assert asyncio.run(main()) == "kept"
