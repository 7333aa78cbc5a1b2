"""The stress test of issue #8: numbered items through one mg.Queue, 4
producers and 4 consumers each in its own worker interpreter; every item
that was put arrives exactly once (count, sum and sum of squares), also
when the queue is closed mid-stream.

The normal suite moves MULTIGIL_STRESS_ITEMS items (default 40,000, a
second or two); `make stress` moves 1,000,000."""
import os
import time

import pytest

import multigil as mg
from helpers_queue import consume, produce

ITEMS = int(os.environ.get("MULTIGIL_STRESS_ITEMS", "40000"))
NP = NC = 4


def run(maxsize, close_after=None, batch=50):
    q = mg.Queue(maxsize)
    per = ITEMS // NP
    with mg.Pool(NP + NC) as pool:
        cons = [pool.submit(consume, q, 1 if batch == 1 else 64)
                for _ in range(NC)]
        prods = [pool.submit(produce, q, i * per, per, batch)
                 for i in range(NP)]
        if close_after is not None:
            # Close mid-stream: once the consumers have taken some items
            # (the queue drains while producers still run).
            while q.qsize() < close_after and not all(
                    f.done() for f in prods):
                time.sleep(0.001)
            q.close()
        put = [f.result() for f in prods]
        q.close()
        got = [f.result() for f in cons]
    sums = [sum(x[k] for x in put) for k in range(3)]
    assert [sum(x[k] for x in got) for k in range(3)] == sums
    return sums[0]


@pytest.mark.parametrize("maxsize, batch", [(0, 50), (256, 50), (64, 1)])
def test_every_item_exactly_once(maxsize, batch):
    n = ITEMS // NP * NP
    assert run(maxsize, batch=batch) == n


@pytest.mark.parametrize("maxsize", [0, 256])
def test_close_mid_stream_delivers_everything_put_before(maxsize):
    count = run(maxsize, close_after=min(200, ITEMS // 10))
    assert 0 < count <= ITEMS
