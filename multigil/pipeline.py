"""mg.Pipeline: streaming stages on worker interpreters, connected by
bounded mg.Queues (a slow stage applies backpressure instead of filling
memory).

    results = (mg.Pipeline(lines, ordered=True)
               .map(parse, workers=2)
               .filter(valid)
               .batch(100)
               .map(load_batch))
    for r in results: ...

How it runs (each ``for`` over the pipeline is one run):

* A feeder thread of the calling interpreter reads the source and puts
  *records* ``(seq, [value])`` into the first queue.
* ``map``/``filter``/``flat_map`` stages run ``workers`` tasks each, in one
  mg.Pool made for the run. A worker turns each record ``(seq, values)``
  into ``(seq, new values)`` (map: one each, filter: kept ones, flat_map:
  every item of fn(value)), so every source item keeps exactly one record
  per stage: order is restored by ``seq`` alone.
* ``batch(n)``/``unbatch()`` regroup values across records: a relay thread
  of the calling interpreter does it (restoring order first when ordered)
  and numbers its output records afresh.
* With ``ordered=True`` (the default) the consumer restores input order;
  the feeder then keeps at most ``window`` records in flight before the
  next reordering point, so reorder buffers stay bounded too.

Failure: an exception in a stage (or in the source) sets the run's stop
event and closes every queue, which wakes every blocked get and put; the
consumer re-raises the exception with a note naming the stage and, as its
``__cause__``, an mg.RemoteTraceback holding the worker's traceback.
Leaving the loop early (break, an exception in the loop body, Ctrl-C)
stops the run the same way and joins every thread and worker before the
loop statement finishes.
"""
import itertools
import threading
import traceback

__all__ = ["Pipeline"]

_STOP_POLL = 0.05  # seconds: how often a blocked relay/feeder checks stop


def _core():
    import multigil._core as core
    return core


class _Run:
    """The shared objects of one run; crosses to workers as handles."""

    def __init__(self, core):
        self.stop = core.Event()
        self.errors = core.Queue()
        self.queues = []

    def fail(self, stage, exc):
        tb = "".join(traceback.format_exception(exc))
        try:
            self.errors.put_nowait((stage, exc, tb))
        except Exception:
            try:
                self.errors.put_nowait((stage, None, tb))
            except Exception:
                pass
        self.halt()

    def halt(self):
        self.stop.set()
        for q in self.queues:
            q.close()


def _apply(kind, fn, values):
    if kind == "map":
        return [fn(v) for v in values]
    if kind == "filter":
        return [v for v in values if fn(v)]
    out = []
    for v in values:
        out.extend(fn(v))
    return out


def _stage_worker(kind, name, fn, qin, qout, remaining, stop, errors,
                  queues):
    """One worker of a map/filter/flat_map stage (runs in a worker
    interpreter): records from qin to qout until qin is closed and drained
    or the run stops. The last worker of the stage closes qout."""
    import multigil as mg
    try:
        for seq, values in qin:
            if stop.is_set():
                break
            qout.put((seq, _apply(kind, fn, values)))
    except mg.QueueClosed:
        pass
    except BaseException as exc:
        tb = "".join(traceback.format_exception(exc))
        try:
            errors.put((name, exc, tb))
        except Exception:
            errors.put((name, None, tb))
        stop.set()
        for q in queues:
            q.close()
    finally:
        left = remaining.get() - 1  # the one-slot queue is the lock
        remaining.put(left)
        if left == 0:
            qout.close()
    return None


class _Reorder:
    """Records in seq order (ordered) or as they come."""

    def __init__(self, ordered):
        self.ordered = ordered
        self.pending = {}
        self.next = 0

    def push(self, seq, values):
        if not self.ordered:
            yield values
            return
        self.pending[seq] = values
        while self.next in self.pending:
            yield self.pending.pop(self.next)
            self.next += 1


class Pipeline:
    """Pipeline(source, *, ordered=True, maxsize=None, window=None)

    source: any iterable (an endless one works: memory stays bounded).
    maxsize: capacity of each queue between stages (default: 2 records
    per worker of the next stage, at least 4). window: records in flight
    when ordered (default: 4 * maxsize)."""

    def __init__(self, source, *, ordered=True, maxsize=None, window=None):
        self._source = source
        self._ordered = ordered
        self._maxsize = maxsize
        self._window = window
        self._stages = []

    def _add(self, kind, fn=None, workers=1, n=None):
        if kind in ("map", "filter", "flat_map"):
            if not callable(fn):
                raise TypeError(f"{kind}() needs a callable")
            if int(workers) < 1:
                raise ValueError("workers must be at least 1")
        p = Pipeline(self._source, ordered=self._ordered,
                     maxsize=self._maxsize, window=self._window)
        label = getattr(fn, "__name__", None) or (str(n) if n else "")
        name = f"{kind}({label})#{len(self._stages)}"
        p._stages = self._stages + [(kind, fn, int(workers), n, name)]
        return p

    def map(self, fn, workers=1):
        return self._add("map", fn, workers)

    def filter(self, fn, workers=1):
        return self._add("filter", fn, workers)

    def flat_map(self, fn, workers=1):
        return self._add("flat_map", fn, workers)

    def batch(self, n):
        if int(n) < 1:
            raise ValueError("batch size must be at least 1")
        return self._add("batch", n=int(n))

    def unbatch(self):
        return self._add("unbatch")

    def __iter__(self):
        return self._run()

    # ---- a run ----

    def _queue(self, run, core, workers):
        size = self._maxsize or max(4, 2 * workers)
        q = core.Queue(size)
        run.queues.append(q)
        return q

    def _run(self):
        core = _core()
        import multigil
        run = _Run(core)
        nworkers = sum(s[2] for s in self._stages
                       if s[0] in ("map", "filter", "flat_map"))
        pool = multigil.Pool(nworkers) if nworkers else None
        threads = []
        window = None
        try:
            first_workers = self._stages[0][2] if self._stages else 1
            head = self._queue(run, core, first_workers)
            if self._ordered:
                window = threading.BoundedSemaphore(
                    self._window or 4 * (self._maxsize or
                                         max(4, 2 * first_workers)))
            threads.append(self._start(self._feed, run, head, window))
            q = head
            credit = window  # released where order is first restored
            for i, (kind, fn, workers, n, name) in enumerate(self._stages):
                nxt = self._stages[i + 1] if i + 1 < len(self._stages) else None
                out = self._queue(run, core, nxt[2] if nxt else 1)
                if kind in ("batch", "unbatch"):
                    threads.append(self._start(self._relay, run, kind, n,
                                               name, q, out, credit))
                    credit = None
                else:
                    remaining = core.Queue(1)
                    remaining.put(workers)
                    for _ in range(workers):
                        pool.submit(_stage_worker, kind, name, fn, q, out,
                                    remaining, run.stop, run.errors,
                                    run.queues)
                q = out
            yield from self._consume(run, q, credit)
        finally:
            run.halt()
            for t in threads:
                t.join()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None  # a raised exception's frames must not keep it
        self._raise_error(run)

    def _start(self, target, *args):
        t = threading.Thread(target=target, args=args, daemon=True,
                             name="multigil-pipeline")
        t.start()
        return t

    def _feed(self, run, head, window):
        core = _core()
        try:
            for seq, value in enumerate(self._source):
                if window is not None:
                    while not window.acquire(timeout=_STOP_POLL):
                        if run.stop.is_set():
                            return
                if run.stop.is_set():
                    return
                head.put((seq, [value]))
        except core.QueueClosed:
            return
        except BaseException as exc:
            run.fail("source", exc)
            return
        head.close()

    def _relay(self, run, kind, n, name, qin, qout, credit):
        core = _core()
        order = _Reorder(self._ordered)
        buf, seq = [], itertools.count()
        try:
            for rseq, values in qin:
                for vals in order.push(rseq, values):
                    if credit is not None:
                        credit.release()
                    if kind == "unbatch":
                        flat = [x for v in vals for x in v]
                        qout.put((next(seq), flat))
                        continue
                    buf.extend(vals)
                    while len(buf) >= n:
                        qout.put((next(seq), [buf[:n]]))
                        del buf[:n]
            if buf and not run.stop.is_set():
                qout.put((next(seq), [buf]))
        except core.QueueClosed:
            return
        except BaseException as exc:
            run.fail(name, exc)
            return
        qout.close()

    def _consume(self, run, q, credit):
        order = _Reorder(self._ordered)
        for seq, values in q:
            if run.stop.is_set():
                return
            for vals in order.push(seq, values):
                if credit is not None:
                    credit.release()
                yield from vals

    @staticmethod
    def _raise_error(run):
        try:
            stage, exc, tb = run.errors.get_nowait()
        except Exception:
            return
        core = _core()
        if exc is None:
            exc = core.MultigilError(f"pipeline stage {stage} failed")
        if hasattr(exc, "add_note"):
            exc.add_note(f"raised in pipeline stage {stage}")
        raise exc from core.RemoteTraceback(tb)
