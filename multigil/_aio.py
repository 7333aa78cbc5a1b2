"""asyncio faces of multigil.Queue: ``await q.aget()`` and ``await q.aput(x)``.

The event loop never blocks: a thread of the loop's default executor waits
(in C, GIL released) until the queue *could* give (or take) an item, in
slices of at most ``_SLICE`` seconds, and the loop then takes the item
without waiting. The waiting thread takes nothing, so a cancelled await
loses no item, and the thread is the executor's (reused, bounded, joined
by the loop's shutdown_default_executor): no thread is left behind.
"""
import asyncio

_SLICE = 0.1


async def aget(q):
    loop = asyncio.get_running_loop()
    while True:
        try:
            return q.get_nowait()
        except Exception as exc:
            from multigil._core import QueueEmpty
            if not isinstance(exc, QueueEmpty):
                raise
        await loop.run_in_executor(None, q._wait_ready, False, _SLICE)


async def aput(q, obj):
    loop = asyncio.get_running_loop()
    while True:
        try:
            return q.put_nowait(obj)
        except Exception as exc:
            from multigil._core import QueueFull
            if not isinstance(exc, QueueFull):
                raise
        await loop.run_in_executor(None, q._wait_ready, True, _SLICE)
