"""Functions that queue/sync/pipeline tests send to worker interpreters."""
import multigil as mg


def produce(q, start, n, batch=1):
    """Puts start..start+n-1 (in batches of batch) until done or the queue
    is closed: (count, sum, sum of squares) of what was really put."""
    count = total = squares = 0
    i = start
    end = start + n
    while i < end:
        items = list(range(i, min(i + batch, end)))
        try:
            if batch == 1:
                q.put(items[0])
            else:
                q.put_many(items)
        except mg.QueueClosed as e:
            # A bounded put_many may have put part of its batch.
            items = items[:e.items_put]
            i = end
        count += len(items)
        total += sum(items)
        squares += sum(x * x for x in items)
        i += len(items)
    return count, total, squares


def consume(q, batch=1):
    """Takes items until the queue is closed and drained: (count, sum,
    sum of squares)."""
    count = total = squares = 0
    while True:
        try:
            items = q.get_many(batch) if batch > 1 else [q.get()]
        except mg.QueueClosed:
            return count, total, squares
        count += len(items)
        total += sum(items)
        squares += sum(x * x for x in items)


def make_queue_with(items):
    q = mg.Queue()
    q.put_many(items)
    return q


def echo_through(qin, qout):
    for item in qin:
        qout.put(item)
    return "drained"


def array_total(q):
    a = q.get()
    return a.sum()


def locked_increments(lock, counter_q, n):
    """n read-modify-write rounds of a counter kept in a 1-slot queue,
    guarded by lock (a lost update shows without mutual exclusion)."""
    for _ in range(n):
        with lock:
            v = counter_q.get()
            counter_q.put(v + 1)
    return n


def wait_event(ev, timeout):
    return ev.wait(timeout)


def barrier_wait(b):
    return b.wait()


def cond_consume(cond, box, n):
    """Takes n items from box (a list kept in a Queue of one) under cond."""
    got = []
    for _ in range(n):
        with cond:
            while True:
                items = box.get()
                if items:
                    got.append(items.pop(0))
                    box.put(items)
                    break
                box.put(items)
                cond.wait()
    return got


def rlock_owner_probe(rlock):
    """From another interpreter: the RLock held by the caller is not ours."""
    return rlock.acquire(blocking=False)


def square(x):
    return x * x


def fail_at(x, bad=36):
    if x == bad:
        raise ValueError(f"bad record {x}")
    return x


def slow_identity(x):
    import time
    time.sleep(0.001)
    return x


def sleep_forever(x):
    import time
    time.sleep(0.2)
    return x


def put_thread_name(q):
    """A Barrier action: records which OS thread ran it."""
    import threading
    q.put(threading.get_native_id())


def native_id():
    import threading
    return threading.get_native_id()


def barrier_rounds(b, q, rounds):
    """Waits at b `rounds` times; after each, the action of that round has
    run exactly once and before anyone passed: q holds one item a round."""
    seen = []
    for r in range(rounds):
        b.wait()
        seen.append(q.qsize() == r + 1)
    return seen


def raise_value_error():
    raise ValueError("action failed")


def barrier_outcome(b):
    """The type name of what b.wait() raised, or 'ok'."""
    try:
        b.wait(timeout=30)
    except BaseException as e:  # noqa: BLE001 - reported to the test
        return type(e).__name__
    return "ok"


def consume_with_task_done(q):
    """Gets until q is closed, calling task_done() after each item."""
    got = []
    for item in q:
        got.append(item)
        q.task_done()
    return got


class SlowToPickle:
    """Pickling it sleeps (the GIL is released): another thread runs
    meanwhile."""

    def __reduce__(self):
        import time
        time.sleep(0.2)
        return (SlowToPickle, ())


def action_with(value):
    """A Barrier action that holds value (sent with it)."""
    return value is not None


def barrier_parties(b):
    return b.parties
