"""Typed use of multigil's public API: tests/test_typing.py runs
`mypy --strict` on this file against the stubs (multigil/*.pyi) and
expects no error. It is never imported by the test suite."""
import asyncio
import concurrent.futures as cf
from collections.abc import AsyncIterator, Iterator

import multigil as mg
from multigil import kernels
from multigil.pool import PoolStats


def square(x: int) -> int:
    return x * x


def add(x: int, y: float) -> float:
    return x + y


def describe(a: mg.SharedArray) -> str:
    return f"{a.dtype} {len(a)} {a.nbytes} {a.readonly}"


def use_pool() -> list[int]:
    with mg.Pool(2, name="typed") as pool:
        fut: cf.Future[int] = pool.submit(square, 3)
        squares: Iterator[int] = pool.map(square, range(10), chunksize=4)
        sums: list[float] = list(pool.map(add, [1, 2], [0.5, 1.5]))
        star = list(pool.starmap(add, [(1, 2.0)], ordered=False))
        warm: list[int] = pool.broadcast(square, 2)
        workers: int = pool.workers
        why: str | None = pool.broken
        assert sums and star and warm and workers and why is None
        result: int = asyncio.run(pool.arun(square, 4))
        shown = list(pool.map(square, range(5), progress=True))
        told = list(pool.starmap(add, [(1, 2.0)], progress=on_progress))
        stats: PoolStats = pool.stats()
        busy: float = stats.busy + sum(w.busy for w in stats.workers)
        assert shown and told and busy >= 0 and stats.queued >= 0
        assert stats.process is None or stats.process.done >= 0
        return [fut.result(), result, *squares, *asyncio.run(amapped(pool))]


def on_progress(done: int, total: int | None) -> None:
    print(done, total)


async def agen() -> AsyncIterator[int]:
    yield 1


async def amapped(pool: mg.Pool) -> list[int]:
    out: list[int] = [x async for x in pool.amap(square, range(3))]
    async with pool.amap(add, agen(), [1.5], ordered=False) as it:
        floats: list[float] = [x async for x in it]
    it2 = pool.amap(square, agen(), buffersize=2, timeout=5.0)
    first: int = await it2.__anext__()
    await it2.aclose()
    return out + [first, len(floats)]


def use_shared() -> float:
    a = mg.SharedArray(100, dtype="f8")
    b = mg.SharedArray.from_iterable([1.0, 2.0, 3.0])
    c = mg.SharedArray.from_buffer(bytes(16), dtype="i8")
    a[0] = 1.5
    a[1:3] = [2.0, 3.0]
    view: mg.SharedArray = a[::2]
    parts: list[mg.SharedArray] = a.split(4)
    a += 1
    a *= b[0]
    kernels.add(a, 2.0)
    st: kernels.Stats = kernels.combine_stats([kernels.stats(p) for p in parts])
    mv = memoryview(a)
    mean: float = kernels.mean(a) + a.var(ddof=1) + st.mean + mv.nbytes
    first = a[0]
    total = kernels.sum(c) + first + len(view) + describe(b).count(" ")
    return mean + total


def use_codec() -> object:
    data: bytes = mg.dumps({"a": [1, 2.0]})
    return mg.loads(data)


def handle(e: BaseException) -> str:
    if isinstance(e, mg.NotShareableError):
        return "not shareable"
    if isinstance(e, mg.BrokenPool):
        return "broken"
    if isinstance(e, (mg.RemoteTraceback, mg.MultigilError)):
        return str(e)
    return "other"


def channels() -> int:
    q = mg.Queue(4)
    q.put(1)
    q.put_many([2, 3])
    items: list[object] = q.get_many(2, timeout=1.0)
    ev = mg.Event()
    with mg.Lock():
        ev.set()
    cond = mg.Condition(mg.RLock())
    with cond:
        cond.notify_all()
    total = len(list(mg.Pipeline(range(3)).map(abs).batch(2)))
    return len(items) + int(ev.is_set()) + total + mg.Barrier(1).wait()


def _csv_and_tables() -> None:
    table: mg.Table = mg.read_csv(b"a,b\n1,x\n", dtypes={"a": int})
    col: mg.Column = table["a"]
    n: int = len(col) + table.num_rows
    parts: list[mg.Table] = table.split(2)
    both: mg.Table = mg.Table.concat(parts)
    print(n, both.column_names, table.schema)
    try:
        mg.read_csv("missing.csv", on_bad_lines="skip", n_rows=10)
    except mg.CSVError as e:
        print(e.line, e.column_name)

    @mg.process_task
    def needs_numpy(x: int) -> int:
        return x

    with mg.Pool(1, fallback=None, process_workers=1) as pool:
        f: cf.Future[int] = pool.submit_process(needs_numpy, 1)
        print(f.result(), pool.fallback_stats())
