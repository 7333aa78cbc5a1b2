"""Functions that queue/sync/pipeline tests send to worker interpreters."""
import multigil as mg


def produce(q, start, n, batch=1):
    """Puts start..start+n-1 (in batches of batch); returns how many were
    put before the queue was closed, and their sum."""
    count = total = 0
    i = start
    end = start + n
    try:
        while i < end:
            items = list(range(i, min(i + batch, end)))
            if batch == 1:
                q.put(items[0])
            else:
                q.put_many(items)
            count += len(items)
            total += sum(items)
            i += len(items)
    except mg.QueueClosed:
        pass
    return count, total


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
