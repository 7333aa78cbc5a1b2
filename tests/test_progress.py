"""map(..., progress=...): a bar on stderr (tqdm where installed, else the
built-in one), a callback, or a tqdm-like object; items are counted as
their chunks finish; the bar closes at the end, on an exception and on an
early break."""
import asyncio
import io
import itertools
import logging
import sys
import threading
import time

import pytest

import multigil as mg
from multigil import _progress
import helpers_comfort as hc
import helpers_pool as h


class FakeTty(io.StringIO):
    def isatty(self):
        return True


class FakeTqdm:
    """Records what a tqdm bar is told."""
    made = []

    def __init__(self, total=None, file=None, **kw):
        self.total, self.file, self.kw = total, file, kw
        self.updates = []
        self.closed = False
        FakeTqdm.made.append(self)

    def update(self, n=1):
        assert not self.closed
        self.updates.append(n)

    def close(self):
        self.closed = True


# pytest's output capture sets sys.stderr again between a fixture's set-up
# and the test, so the fixtures give a function that the test calls.

@pytest.fixture
def tty(monkeypatch):
    """stderr is a terminal; tqdm is not installed."""
    def patch():
        stream = FakeTty()
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.setitem(sys.modules, "tqdm", None)
        return stream
    return patch


@pytest.fixture
def fake_tqdm(monkeypatch):
    """stderr is a terminal, and `from tqdm import tqdm` gives FakeTqdm."""
    def patch():
        stream = FakeTty()
        monkeypatch.setattr(sys, "stderr", stream)
        module = type(sys)("tqdm")
        module.tqdm = FakeTqdm
        monkeypatch.setitem(sys.modules, "tqdm", module)
        FakeTqdm.made = []
        return stream
    return patch


class Calls:
    def __init__(self):
        self.calls = []
        self.threads = set()

    def __call__(self, done, total):
        self.calls.append((done, total))
        self.threads.add(threading.get_ident())


def wait_until(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def lines(text):
    """The lines the terminal would show last, one per \\n."""
    return [seg.split("\r")[-1] for seg in text.split("\n")]


# ---- the built-in bar ----

def test_builtin_bar_on_a_terminal(pool, tty):
    tty = tty()
    assert list(pool.map(h.square, range(100), progress=True)) \
        == [i * i for i in range(100)]
    out = tty.getvalue()
    assert out.startswith("\r") and out.endswith("\n")
    assert out.count("\n") == 1
    last = lines(out)[0]
    assert "100%" in last and "100/100" in last and "it/s" in last
    assert "  0%" in out.split("\r")[1]  # drawn once at the start


def test_quiet_when_stderr_is_not_a_terminal(pool, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert list(pool.map(h.square, range(10), progress=True))[-1] == 81
    assert stream.getvalue() == ""
    assert list(pool.map(h.square, range(10), progress="always"))[-1] == 81
    assert "10/10" in stream.getvalue()


def test_builtin_bar_closes_on_an_exception(pool, tty):
    tty = tty()
    with pytest.raises(KeyError):
        list(pool.map(h.fail_if, range(40), [30] * 40, chunksize=4,
                      progress=True))
    out = tty.getvalue()
    assert out.endswith("\n") and out.count("\n") == 1
    assert "40/40" not in out


def test_builtin_bar_closes_on_an_early_break(pool, tty):
    tty = tty()
    for x in pool.map(h.square, range(1000), chunksize=10, progress=True):
        break
    assert tty.getvalue().endswith("\n")


def test_builtin_bar_without_a_length(pool, tty):
    tty = tty()
    gen = ((i,) for i in range(30))
    assert len(list(pool.starmap(h.square, gen, buffersize=4,
                                 progress=True))) == 30
    last = lines(tty.getvalue())[0]
    assert last.startswith("30 [") and "%" not in last


def test_builtin_bar_redraws_at_most_ten_times_a_second(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(_progress.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    bar = _progress._Bar(stream, 1000)
    for i in range(50):
        bar.show(i)
    assert stream.getvalue().count("\r") == 1
    now[0] += 0.05
    bar.show(60)
    assert stream.getvalue().count("\r") == 1
    now[0] += 0.06
    bar.show(70)
    assert stream.getvalue().count("\r") == 2
    bar.close(80)  # the last line always, with its newline
    assert stream.getvalue().count("\r") == 3
    assert stream.getvalue().endswith("\n")


def test_builtin_bar_pads_a_shorter_line(monkeypatch):
    stream = io.StringIO()
    bar = _progress._Bar(stream, None)
    bar.show(123456)
    bar.close(1)
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second.rstrip("\n")) >= len(first)


def test_format_line():
    line = _progress.format_line(42, 100, 3.0)
    assert line == " 42%|########            | 42/100 [00:03<00:04, 14.0 it/s]"
    assert _progress.format_line(42, None, 3.0) == "42 [00:03, 14.0 it/s]"
    assert _progress.format_line(0, 10, 0.0).endswith("[00:00<?, 0.0 it/s]")
    assert "1:00:00<" in _progress.format_line(1, 2, 3600.0)


# ---- tqdm ----

def test_uses_tqdm_where_installed(pool, fake_tqdm):
    fake_tqdm = fake_tqdm()
    assert list(pool.map(h.square, range(50), chunksize=7, progress=True)) \
        == [i * i for i in range(50)]
    (bar,) = FakeTqdm.made
    assert bar.total == 50 and bar.file is fake_tqdm
    assert sum(bar.updates) == 50 and all(n > 0 for n in bar.updates)
    assert bar.closed
    assert fake_tqdm.getvalue() == ""  # tqdm draws, not the built-in bar


def test_tqdm_bar_closes_on_an_exception_and_a_break(pool, fake_tqdm):
    fake_tqdm = fake_tqdm()
    with pytest.raises(KeyError):
        list(pool.map(h.fail_if, range(20), [13] * 20, chunksize=4,
                      progress=True))
    for x in pool.map(h.square, range(100), chunksize=5, progress=True):
        break
    assert [b.closed for b in FakeTqdm.made] == [True, True]
    assert sum(FakeTqdm.made[0].updates) < 20


def test_a_tqdm_instance_is_updated_not_closed(pool):
    bar = FakeTqdm(total=None)
    assert len(list(pool.map(h.square, range(30), chunksize=4,
                             progress=bar))) == 30
    assert bar.total == 30  # it had none: the map's
    assert sum(bar.updates) == 30
    assert not bar.closed  # the caller's to close


def test_real_tqdm_if_installed(pool):
    tqdm = pytest.importorskip("tqdm", reason="tqdm is not installed")
    stream = io.StringIO()
    with tqdm.tqdm(total=25, file=stream) as bar:
        list(pool.map(h.square, range(25), chunksize=3, progress=bar))
        assert bar.n == 25


# ---- callbacks ----

def test_callback_counts_items_not_chunks(pool):
    calls = Calls()
    assert len(list(pool.map(h.square, range(50), chunksize=7,
                             progress=calls))) == 50
    assert calls.calls[0] == (0, 50) and calls.calls[-1] == (50, 50)
    done = [d for d, _ in calls.calls]
    assert done == sorted(set(done))  # growing, one call per count
    # Sums of whole chunks: six of 7 items and one of 1.
    assert all(d % 7 in (0, 1) for d in done)


def test_callback_counts_as_results_finish_not_as_consumed(pool):
    calls = Calls()
    it = pool.map(h.square, range(40), chunksize=5, progress=calls)
    assert next(it) == 0
    wait_until(lambda: calls.calls[-1][0] == 40)  # nothing more consumed
    it.close()
    assert calls.calls[-1] == (40, 40)


def test_callback_runs_where_chunks_finish(pool):
    calls = Calls()
    list(pool.map(h.square, range(40), chunksize=5, progress=calls))
    # (0, 40) from the calling thread, the rest from the threads that
    # completed the chunks (the workers'): never two at once.
    assert calls.threads - {threading.get_ident()}


def test_callback_with_unknown_length_and_an_exception(pool):
    calls = Calls()

    def items():
        for i in range(25):
            yield i, 17

    with pytest.raises(KeyError):
        list(pool.starmap(h.fail_if, items(), buffersize=3, progress=calls))
    assert calls.calls[0] == (0, None)
    assert all(t is None for _, t in calls.calls)
    # The items before the failing one, and any that finished meanwhile.
    assert 17 <= calls.calls[-1][0] < 25


def test_a_raising_callback_is_logged_and_the_map_goes_on(pool, caplog):
    def bad(done, total):
        raise RuntimeError("progress sink broke")

    with caplog.at_level(logging.ERROR, logger="multigil"):
        assert len(list(pool.map(h.square, range(20), progress=bad))) == 20
    assert "progress sink" in caplog.text and "broke" in caplog.text


def test_callback_closed_map_ignores_later_chunks():
    ev = mg.Event()
    calls = Calls()
    with mg.Pool(1) as p:
        it = p.map(hc.gate, range(6), [ev] * 6, chunksize=1, progress=calls)
        assert next(it) == 0
        it.close()  # chunk 1 may be running; the rest are cancelled
        ev.set()
        p.submit(h.square, 1).result()
    assert calls.calls[-1][0] <= 1
    assert len(calls.calls) <= 2


# ---- argument checks, amap ----

@pytest.mark.parametrize("bad, exc", [
    ("sometimes", ValueError), (5, TypeError), (FakeTqdm, TypeError)])
def test_bad_progress_is_refused_at_the_call(pool, bad, exc):
    reads = []
    src = (reads.append(i) or i for i in range(5))
    with pytest.raises(exc):
        pool.map(h.square, src, progress=bad)
    with pytest.raises(exc):
        pool.starmap(h.add, [(1, 2)], progress=bad)
    with pytest.raises(exc):
        pool.amap(h.square, range(3), progress=bad)
    assert reads == []


def test_amap_progress(pool):
    calls = Calls()

    async def main():
        return [x async for x in pool.amap(h.square, range(30), chunksize=4,
                                           progress=calls)]
    assert len(asyncio.run(main())) == 30
    assert calls.calls[0] == (0, 30) and calls.calls[-1] == (30, 30)


def test_endless_input_with_progress(pool):
    calls = Calls()
    it = pool.map(h.square, itertools.count(), buffersize=2, progress=calls)
    assert [next(it) for _ in range(5)] == [0, 1, 4, 9, 16]
    it.close()
    assert all(t is None for _, t in calls.calls)
