"""Pool(output="forward"): what tasks print and log reaches the owner
interpreter's sys.stdout / sys.stderr / logging, tagged with the worker,
as whole lines in order per worker, before the task's result; nothing is
lost at shutdown or exit; memory stays bounded (docs/pool.md, Output)."""
import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import textwrap

import pytest

import multigil
import helpers_output as h

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = re.compile(r"^\[mg-out-w(\d+)\] (.*)$")


def run_script(code, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, os.path.join(ROOT, "tests"), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                       capture_output=True, text=True, timeout=timeout,
                       env=env)
    assert "Fatal Python error" not in r.stderr, r.stderr
    return r


@pytest.fixture(scope="module")
def pool():
    p = multigil.Pool(2, name="out")
    yield p
    p.shutdown()


def tagged(text):
    """[(worker, line)] for every line of text, which must all be tagged."""
    out = []
    for line in text.splitlines():
        m = TAG.match(line)
        assert m, f"untagged or cut line: {line!r}"
        out.append((int(m[1]), m[2]))
    return out


# ---- text ----

def test_print_reaches_capsys_tagged_before_the_result(pool, capsys):
    assert pool.submit(h.say, "hello", 1).result() == "said"
    out, err = capsys.readouterr()
    assert [line for _, line in tagged(out)] == ["hello 1"]
    assert err == ""


def test_stderr_reaches_the_owners_stderr(pool, capsys):
    pool.submit(h.say, "oops", stream="err").result()
    out, err = capsys.readouterr()
    assert out == ""
    assert [line for _, line in tagged(err)] == ["oops"]


def test_redirect_stdout_in_the_main_interpreter_sees_it(pool):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        pool.submit(h.say, "redirected").result()
    assert [line for _, line in tagged(buf.getvalue())] == ["redirected"]


def test_line_without_newline_at_task_end_is_delivered(pool):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert pool.submit(h.say_then_partial).result() == "done"
        pool.submit(h.say, "tail", end="").result()
    assert [line for _, line in tagged(buf.getvalue())] == [
        "first", "no newline", "tail"]
    assert buf.getvalue().endswith("\n")


def test_done_callback_and_map_see_the_output_first(pool):
    buf = io.StringIO()
    seen = []
    with contextlib.redirect_stdout(buf):
        f = pool.submit(h.say, "before callback")
        f.add_done_callback(lambda _: seen.append(buf.getvalue()))
        f.result()
        for i, n in enumerate(pool.map(h.say_lines, ["m"] * 4, [3] * 4,
                                       chunksize=1)):
            assert n == 3
            # Every chunk's lines are out before its result is.
            assert buf.getvalue().count("] m ") >= 3 * (i + 1)
    assert "before callback" in seen[0]


def test_parallel_workers_lines_intact_in_order_none_lost(pool):
    n = 3000
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        # One task per worker, at the same time.
        assert pool.broadcast(h.say_lines, "p", n, 40) == [n, n]
    lines = tagged(buf.getvalue())
    assert len(lines) == 2 * n
    per_worker = {0: [], 1: []}
    for worker, line in lines:
        tag, i, xs = line.split(" ")
        assert tag == "p" and xs == "x" * (40 + int(i) % 7), line
        per_worker[worker].append(int(i))
    assert per_worker == {0: list(range(n)), 1: list(range(n))}


def test_output_of_a_thread_the_task_started(pool):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert pool.submit(h.say_from_thread, "from a thread").result() \
            == "joined"
    assert [line for _, line in tagged(buf.getvalue())] == ["from a thread"]


def test_thread_printing_after_its_task_is_delivered_by_shutdown():
    buf = io.StringIO()
    ev = multigil.Event()
    with contextlib.redirect_stdout(buf):
        p = multigil.Pool(1, name="out")
        assert p.submit(h.say_from_late_thread, "late", ev).result() \
            == "started"
        ev.set()
        p.shutdown()  # joins the task's thread, delivers its line
    assert [line for _, line in tagged(buf.getvalue())] == ["late"]


def test_shutdown_delivers_everything_queued():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        p = multigil.Pool(2, name="out")
        for k in range(20):
            p.submit(h.say_lines, f"s{k}", 50)
        p.shutdown(wait=True)
    lines = tagged(buf.getvalue())
    assert len(lines) == 20 * 50
    for k in range(20):
        mine = [int(line.split()[1]) for _, line in lines
                if line.split()[0] == f"s{k}"]
        assert mine == list(range(50))


def test_unicode_and_surrogate_escaped_text(pool, capsys):
    buf = io.StringIO()
    text = "h\u00e9llo \u2713 \U0001f40d \udcff end"
    with contextlib.redirect_stdout(buf):
        pool.submit(h.say, text).result()
    assert [line for _, line in tagged(buf.getvalue())] == [text]
    # A strict UTF-8 stream (capsys) cannot take the lone surrogate: the
    # line still arrives, escaped.
    pool.submit(h.say, text).result()
    out = capsys.readouterr().out
    assert [line for _, line in tagged(out)] == [
        text.replace("\udcff", "\\udcff")]


def test_task_replacing_sys_stdout_still_works(pool):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert pool.submit(h.say_redirected).result() == "inside\n"
    assert [line for _, line in tagged(buf.getvalue())] == ["after"]


def test_worker_stdout_looks_like_a_text_stream(pool):
    assert pool.submit(h.stdout_info).result() == (
        "_OutputWriter", 1, True, False, "utf-8")


class FlushCounter(io.StringIO):
    flushes = 0

    def flush(self):
        self.flushes += 1


def test_flush_in_the_worker_flushes_the_owners_stream(pool):
    buf = FlushCounter()
    with contextlib.redirect_stdout(buf):
        pool.submit(h.say, "flushed", flush=True).result()
        assert buf.flushes >= 1
        before = buf.flushes
        pool.submit(h.say, "not flushed").result()
        assert buf.flushes == before
    assert [line for _, line in tagged(buf.getvalue())] == [
        "flushed", "not flushed"]


def test_a_line_longer_than_the_limit_without_newline_is_cut_not_held(pool):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        pool.submit(h.write_pieces, "z" * 1000, 200).result()
    lines = tagged(buf.getvalue())
    assert "".join(line for _, line in lines) == "z" * 200_000
    # Cut at 64 KiB (whole writes), not held until the task ends.
    assert [len(line) for _, line in lines] == [66000, 66000, 66000, 2000]


def test_output_none_writes_straight_to_fd_1():
    r = run_script("""
        import contextlib, io, multigil, helpers_output as h
        buf = io.StringIO()
        with multigil.Pool(1, output=None, name="out") as p:
            with contextlib.redirect_stdout(buf):
                p.submit(h.say, "direct").result()
        assert buf.getvalue() == "", buf.getvalue()
        print("main done", flush=True)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["direct", "main done"]
    with pytest.raises(ValueError):
        multigil.Pool(1, output="nowhere")


def test_nothing_lost_at_interpreter_exit():
    r = run_script("""
        import multigil, helpers_output as h
        p = multigil.Pool(2, name="out")
        ev = multigil.Event()
        for k in range(10):
            p.submit(h.say_lines, f"e{k}", 200)
        p.submit(h.say_from_late_thread, "late line", ev).result()
        ev.set()
        # no shutdown: the exit hook ends the pool
    """)
    assert r.returncode == 0, r.stderr
    lines = tagged(r.stdout)
    assert len(lines) == 10 * 200 + 1
    assert (0, "late line") in lines or (1, "late line") in lines


@pytest.mark.skipif(bool(os.environ.get("MULTIGIL_SANITIZER")),
                    reason="ASan keeps freed memory in quarantine (hundreds "
                           "of MB), so the process's peak RSS says nothing "
                           "about the bound")
def test_a_task_printing_a_lot_keeps_memory_bounded():
    """200 MB printed into a slow owner stream: the writer waits for the
    owner (backpressure), so the process grows by far less than that."""
    r = run_script("""
        import resource, sys, time, multigil, helpers_output as h

        class Slow:
            n = 0
            def write(self, s):
                self.n += len(s)
                time.sleep(0.002)
            def flush(self):
                pass

        def rss_mb():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024

        sink = Slow()
        with multigil.Pool(1, name="out") as p:
            p.submit(h.say, "warm").result()
            real, sys.stdout = sys.stdout, sink
            base = rss_mb()
            n = p.submit(h.flood, 200 * 1024 * 1024).result()
            sys.stdout = real
        tag = len("[mg-out-w0] ")
        print(n, sink.n - n * tag, rss_mb() - base)
    """, timeout=300)
    assert r.returncode == 0, r.stderr
    lines, chars, grew_mb = r.stdout.splitlines()[-1].split()
    assert int(chars) == int(lines) * 1000  # every line, whole
    assert float(grew_mb) < 64, grew_mb


# ---- logging ----

class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def owner_logger():
    log = logging.getLogger("mgtest")
    handler = ListHandler()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, handler
    log.removeHandler(handler)
    log.setLevel(logging.NOTSET)
    log.propagate = True


def test_logging_records_reach_the_owners_logger_filtered(owner_logger):
    log, handler = owner_logger
    with multigil.Pool(1, name="out") as p:  # after the level was set
        assert p.submit(h.log_levels, "mgtest.sub").result() == "logged"
        got = [(r.name, r.levelname, r.getMessage(), r.mg_worker)
               for r in handler.records]
        assert got == [("mgtest.sub", "INFO", "info 2", "mg-out-w0"),
                       ("mgtest.sub", "WARNING", "warning 3", "mg-out-w0"),
                       ("mgtest.sub", "ERROR", "error 4", "mg-out-w0")]
        rec = handler.records[0]
        assert rec.funcName == "log_levels"
        assert rec.pathname == h.__file__
        assert rec.threadName == "mg-out-w0"
        # The owner's configuration applies to what arrives: raise the
        # level, add a filter.
        handler.records.clear()
        log.setLevel(logging.ERROR)
        handler.addFilter(lambda r: "4" not in r.getMessage())
        p.submit(h.log_levels, "mgtest.sub").result()
        assert handler.records == []


def test_logging_exc_info_traceback_is_forwarded(owner_logger):
    _, handler = owner_logger
    with multigil.Pool(1, name="out") as p:
        p.submit(h.log_exception, "mgtest").result()
    (rec,) = handler.records
    assert rec.getMessage() == "failed here"
    assert "ZeroDivisionError: division by zero" in rec.exc_text
    assert "in log_exception" in rec.exc_text
    text = logging.Formatter().format(rec)
    assert "Traceback (most recent call last)" in text


def test_logging_however_imported_and_in_order_with_prints(owner_logger):
    _, handler = owner_logger
    buf = io.StringIO()
    order = []
    handler.emit = lambda r: order.append(("log", buf.getvalue().count(
        "\n"), r.getMessage()))
    with contextlib.redirect_stdout(buf):
        with multigil.Pool(1, name="out") as p:
            p.submit(h.log_via_importlib, "mgtest").result()
            p.submit(h.log_and_print, "mgtest").result()
    assert order == [("log", 0, "via importlib"), ("log", 1, "middle")]
    assert [line for _, line in tagged(buf.getvalue())] == ["before",
                                                            "after"]


def test_worker_level_follows_the_owners_lowest_level():
    r = run_script("""
        import logging, multigil, helpers_output as h
        got = []
        class L(logging.Handler):
            def emit(self, record):
                got.append(record.getMessage())
        logging.getLogger().addHandler(L())
        logging.getLogger("chatty").setLevel(logging.DEBUG)
        with multigil.Pool(1) as p:
            p.submit(h.log_levels, "chatty").result()
            p.submit(h.log_levels, "quiet").result()
        print(got)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(["debug 1", "info 2", "warning 3",
                                    "error 4", "warning 3", "error 4"])


def test_worker_that_asked_for_current_thread_ends_quietly():
    """Regression (3.13+): a worker thread that became a _DummyThread of
    its interpreter (logging asks current_thread() for every record)
    printed 'Exception ignored in _DeleteDummyThreadOnDel' when its
    interpreter ended; with output=None too, so it is not the forwarding."""
    for output in ("forward", None):
        r = run_script(f"""
            import multigil

            def name():
                import logging, threading
                logging.getLogger("quiet").debug("from a worker")
                return threading.current_thread().name

            with multigil.Pool(2, output={output!r}) as p:
                names = p.broadcast(name)
            print(len(names))
            """)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "2"
        assert "Exception ignored" not in r.stderr, r.stderr
