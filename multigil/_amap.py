"""Pool.amap(): map() as an async iterator for asyncio code.

The producing side is map's own (_MapFeed in multigil/pool.py: chunks,
bounded read-ahead, buffersize, ordering, progress); only the consumer is
asynchronous. What may block or take long runs in the loop's default
executor, never on the loop: reading a sync input (its snapshot, or a
lazy chunk), encoding and submitting chunks, and the rare wait for a chunk
that another thread is encoding. Results are awaited through
asyncio.wrap_future; unordered, the chunks' done-callbacks hand them to
the loop (call_soon_threadsafe). An async input is read on the loop (it
has to be) and handed to the feed through a buffer, one chunk at a time.

Closing (exhausted, an exception raised at its position, aclose(), the
consuming task cancelled while it awaits the next result, or the iterator
dropped, e.g. after `break`) cancels the chunks not yet finished, as map's
generator does. Closing is synchronous (feed.finish), so a dropped
iterator cancels at once, without the loop.
"""
import asyncio
import collections
import functools
import time

from .pool import _AHEAD_PER_WORKER, _Failed, _map_input, _remaining

_END = object()


class _LoopQueue:
    """map's done_q for ordered=False: put() from any thread hands the item
    to an asyncio.Queue on the loop."""

    def __init__(self, loop):
        self.loop = loop
        self.q = asyncio.Queue()

    def put(self, item):
        try:
            self.loop.call_soon_threadsafe(self.q.put_nowait, item)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for it any more


class _Drip:
    """The lazy feed's source for an async input: the items read so far
    on the loop (a deque), then the error that reading met, if any; ends
    (StopIteration) when they are used up, for now."""

    def __init__(self):
        self.items = collections.deque()
        self.exc = None

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.items.popleft()
        except IndexError:
            if self.exc is not None:
                exc, self.exc = self.exc, None
                raise exc from None
            raise StopIteration from None


def _is_async(it):
    return hasattr(type(it), "__aiter__")


async def _next_row(its):
    """The next item (a tuple for several inputs), or _END."""
    row = []
    for it in its:
        try:
            row.append(await anext(it) if _is_async(it) else next(it))
        except (StopIteration, StopAsyncIteration):
            return _END
    return row[0] if len(row) == 1 else tuple(row)


class AsyncMap:
    """The async iterator that Pool.amap() returns; also an async context
    manager (closes on exit)."""

    def __init__(self, pool, fn, iterables, star, timeout, chunksize,
                 ordered, buffersize, progress):
        self._pool, self._fn, self._star = pool, fn, star
        self._iterables = iterables
        self._chunksize, self._ordered = chunksize, ordered
        self._buffersize, self._progress = buffersize, progress
        self._end_time = None if timeout is None \
            else timeout + time.monotonic()
        self._feed = None
        self._loop = None
        self._done_q = None
        self._async_in = None   # iterators of an async input, read lazily
        self._drip = None       # ... into this
        self._index = 0         # ordered: next chunk; unordered: received
        self._values = []       # the current chunk's values, reversed
        self._exc = None        # ... and the exception that ends it
        self._closed = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._closed:
            raise StopAsyncIteration
        try:
            while not self._values:
                if self._exc is not None:
                    exc, self._exc = self._exc, None
                    raise exc
                if not await self._next_chunk():
                    raise StopAsyncIteration
            return self._values.pop()
        except BaseException:
            self._close()
            raise

    async def aclose(self):
        """Stop: cancel the chunks not yet finished."""
        self._close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        self._close()

    def __del__(self):
        self._close()

    def _close(self):
        if self._closed:
            return
        self._closed = True
        self._values = []
        if self._feed is not None:
            self._feed.finish()

    # ---- steps ----

    def _off(self, fn, *args):
        """Runs fn(*args) in the loop's default executor (awaitable)."""
        return self._loop.run_in_executor(None, functools.partial(fn, *args))

    async def _start(self):
        """Reads the input (a snapshot, or the first chunks of a lazy one)
        and submits the first chunks, off the loop; returns the feed."""
        self._loop = asyncio.get_running_loop()
        iterables, star, n = self._iterables, self._star, None
        if any(_is_async(it) for it in iterables):
            its = [aiter(it) if _is_async(it) else iter(it)
                   for it in iterables]
            if self._buffersize is None:
                rows = []
                while (row := await _next_row(its)) is not _END:
                    rows.append(row)
                iterables = (rows,)
            else:
                self._async_in, self._drip = its, _Drip()
        if self._drip is not None:
            n, take, source = None, None, self._drip
        else:
            n, take, source = await self._off(_map_input, iterables,
                                              self._buffersize)
        if not self._ordered:
            self._done_q = _LoopQueue(self._loop)
        feed = self._pool._map_feed(self._fn, star, self._chunksize,
                                    self._ordered, take, n, source,
                                    self._progress, self._done_q)
        self._feed = feed  # from now on, closing cancels its chunks
        ahead = self._buffersize or _AHEAD_PER_WORKER * self._pool.workers
        await self._fill(ahead * feed.chunksize)
        await self._off(feed.start, ahead)
        return feed

    async def _fill(self, k):
        """Async input: reads items on the loop until the buffer holds k
        (fewer at the end; an error is kept for its position)."""
        drip = self._drip
        if drip is None:
            return
        while len(drip.items) < k and drip.exc is None:
            try:
                row = await _next_row(self._async_in)
            except Exception as e:  # noqa: BLE001 - raised at its position
                drip.exc = e
                return
            if row is _END:
                return
            drip.items.append(row)

    async def _next_feed(self, feed):
        """Submits what map's consumer would before taking a chunk."""
        await self._fill(feed.chunksize)
        await self._off(feed._next_feed)

    async def _next_chunk(self):
        """Takes the next chunk's outcome into _values/_exc; False at the
        end."""
        feed = self._feed
        if feed is None:
            feed = await self._start()
        if self._ordered:
            i, f = await self._next_ordered(feed)
        else:
            i, f = await self._next_unordered(feed)
        if f is None:
            return False
        values, exc = await self._outcome(f)
        feed.slots.pop(i, None)
        values.reverse()
        self._values, self._exc = values, exc
        return True

    async def _next_ordered(self, feed):
        await self._next_feed(feed)
        i = self._index
        f = feed.slots.get(i)
        if f is None:
            if feed.nchunks is not None and i >= feed.nchunks:
                return i, None
            # Another thread is encoding it (or the input just ended).
            f = await self._off(feed._slot, i, self._end_time)
            if f is None:
                return i, None
        self._index = i + 1
        return i, f

    async def _next_unordered(self, feed):
        if feed.nchunks is not None and self._index >= feed.nchunks:
            return None, None
        try:
            i, f = await asyncio.wait_for(self._done_q.q.get(),
                                          _remaining(self._end_time))
        except TimeoutError:
            raise TimeoutError() from None
        self._index += 1
        await self._next_feed(feed)
        return i, f

    async def _outcome(self, f):
        """(values, exc) of a chunk's future, awaited on the loop."""
        if isinstance(f, _Failed):
            raise f.exc
        if not f.done():
            waiter = asyncio.wrap_future(f)
            try:
                await asyncio.wait_for(waiter, _remaining(self._end_time))
            except TimeoutError:
                raise TimeoutError() from None
        return f.result()
