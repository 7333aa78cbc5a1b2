"""Progress of Pool.map / starmap / amap (their progress= argument).

Items are counted as their chunks finish (in each chunk future's
done-callback, on the thread that completed it), and reported to a sink:
a callback, a tqdm-like object, tqdm itself, or a small built-in bar on
stderr. Reports are made one at a time, with counts that only grow,
without holding a lock while the sink runs: the first thread that finds
nobody reporting reports, and goes on until the count it reported is the
latest; the others only count. The sink is closed once every item is
counted (a known total), or when the iteration ends (exhausted, raised,
broken off or closed), whichever comes first; later counts are ignored.
"""
import logging
import sys
import threading
import time

_MIN_INTERVAL = 0.1  # the built-in bar redraws at most 10 times a second
_BAR_WIDTH = 20

LOGGER = logging.getLogger("multigil")


def check(progress):
    """Raises TypeError now for a progress= that no sink can take."""
    if progress is None or isinstance(progress, bool):
        return
    if isinstance(progress, str):
        if progress != "always":
            raise ValueError(f"progress must be True, False, None or "
                             f"'always' (or a callable, or a tqdm bar), "
                             f"not {progress!r}")
        return
    if isinstance(progress, type):
        raise TypeError("progress= takes an instance (a tqdm bar: "
                        "tqdm(total=...)), not a class")
    if not callable(progress) and not hasattr(progress, "update"):
        raise TypeError(
            f"progress must be True, False, None, 'always', a callable "
            f"taking (done, total) or an object with update(n) (a tqdm "
            f"bar), not {type(progress).__name__}")


def make(progress, total):
    """A started Progress for map's progress= (checked), or None.
    total: the number of items, or None when unknown."""
    if progress is None or progress is False:
        return None
    if progress is True or isinstance(progress, str):
        stream = sys.stderr
        if stream is None or (progress is True and not _isatty(stream)):
            return None
        sink = _default_sink(stream, total)
    elif callable(progress):
        sink = _Callback(progress, total)
    else:
        sink = _Updater(progress, total)
    p = Progress(sink, total)
    p.add(0)
    return p


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except Exception:  # noqa: BLE001 - a closed or odd stream: no bar
        return False


def _default_sink(stream, total):
    try:
        from tqdm import tqdm
    except ImportError:
        return _Bar(stream, total)
    return _Tqdm(tqdm(total=total, file=stream, unit="it"))


class Progress:
    """Counts finished items (add, from any thread) and reports them."""

    def __init__(self, sink, total):
        self.sink = sink
        self.total = total
        self.cond = threading.Condition(threading.Lock())
        self.done = 0
        self.shown = -1        # the count last reported
        self.reporter = None   # ident of the thread reporting, or None
        self.closed = False    # no more counts; close the sink next
        self.ended = False     # the sink is closed (or failed)

    def add(self, k):
        with self.cond:
            if self.closed:
                return
            self.done += k
            if self.reporter is not None:
                return  # it reports our count too before it stops
            self.reporter = threading.get_ident()
        self._report()

    def close(self):
        """The iteration ended: report the last count and close the sink,
        after any report under way on another thread."""
        me = threading.get_ident()
        with self.cond:
            self.closed = True
            while self.reporter not in (None, me):
                self.cond.wait()
            if self.reporter == me or self.ended:
                return  # a report of ours is under way: it ends the sink
            self.reporter = me
        self._report()

    def _report(self):
        # This thread is the reporter: report until the count shown is
        # the latest (and close the sink at the end), then stop.
        while True:
            with self.cond:
                done = self.done
                end = self.closed or (self.total is not None
                                      and done >= self.total)
                if self.ended or (done == self.shown and not end):
                    self.reporter = None
                    self.cond.notify_all()
                    return
                self.shown = done
                if end:
                    self.closed = self.ended = True
            try:
                (self.sink.close if end else self.sink.show)(done)
            except Exception:  # noqa: BLE001 - progress never fails a map
                LOGGER.exception("multigil: the progress sink %r raised; "
                                 "no more progress reports", self.sink)
                with self.cond:
                    self.closed = self.ended = True


class _Callback:
    """fn(done, total) with each new count (the last one once)."""

    def __init__(self, fn, total):
        self.fn, self.total = fn, total
        self.last = None

    def show(self, done):
        if done != self.last:
            self.last = done
            self.fn(done, self.total)

    close = show

    def __repr__(self):
        return repr(self.fn)


class _Updater:
    """A tqdm-like object of the caller's: update(n) with each new count;
    its total is set when it has none and the map's is known; never
    closed here (it is the caller's)."""

    def __init__(self, bar, total):
        self.bar = bar
        self.last = 0
        if total is not None and getattr(bar, "total", 0) is None:
            bar.total = total

    def show(self, done):
        if done > self.last:
            self.bar.update(done - self.last)
            self.last = done

    close = show

    def __repr__(self):
        return repr(self.bar)


class _Tqdm(_Updater):
    """A tqdm bar made here (progress=True): closed at the end."""

    def __init__(self, bar):
        super().__init__(bar, None)

    def close(self, done):
        self.show(done)
        self.bar.close()


class _Bar:
    """The built-in bar: one line redrawn with \\r, at most 10 times a
    second; the last one ends with a newline."""

    def __init__(self, stream, total):
        self.stream, self.total = stream, total
        self.start = time.monotonic()
        self.drawn = None   # when last drawn
        self.width = 0      # length of the line last drawn

    def show(self, done):
        now = time.monotonic()
        if self.drawn is None or now - self.drawn >= _MIN_INTERVAL:
            self._draw(done, now, "")

    def close(self, done):
        self._draw(done, time.monotonic(), "\n")

    def _draw(self, done, now, end):
        self.drawn = now
        line = format_line(done, self.total, now - self.start)
        pad = " " * max(0, self.width - len(line))
        self.width = len(line)
        self.stream.write(f"\r{line}{pad}{end}")
        self.stream.flush()


def format_line(done, total, elapsed):
    """The built-in bar's text: ' 42%|########            | 42/100
    [00:03<00:04, 12.5 it/s]', or '42 [00:03, 12.5 it/s]' without a
    total."""
    rate = done / elapsed if elapsed > 0 else 0.0
    speed = f"{rate:.0f} it/s" if rate >= 100 else f"{rate:.1f} it/s"
    if total is None:
        return f"{done} [{_clock(elapsed)}, {speed}]"
    frac = min(1.0, done / total) if total > 0 else 1.0
    fill = int(frac * _BAR_WIDTH)
    bar = "#" * fill + " " * (_BAR_WIDTH - fill)
    eta = _clock((total - done) / rate) if rate > 0 else "?"
    return (f"{int(frac * 100):3d}%|{bar}| {done}/{total} "
            f"[{_clock(elapsed)}<{eta}, {speed}]")


def _clock(seconds):
    s = int(max(0.0, seconds))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
