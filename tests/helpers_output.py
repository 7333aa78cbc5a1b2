"""Task functions for tests/test_output.py (they run in worker
interpreters; this module imports no logging at the top on purpose)."""
import contextlib
import io
import sys
import threading


def say(*parts, stream="out", end="\n", flush=False):
    print(*parts, end=end, flush=flush,
          file=sys.stderr if stream == "err" else sys.stdout)
    return "said"


def say_lines(tag, n, width=0):
    """n numbered lines, each written in pieces (several write() calls)."""
    for i in range(n):
        print(tag, i, "x" * (width + i % 7), sep=" ")
    return n


def say_then_partial():
    print("first")
    sys.stdout.write("no newline")
    return "done"


def say_from_thread(text):
    t = threading.Thread(target=print, args=(text,))
    t.start()
    t.join()
    return "joined"


def say_from_late_thread(text, event):
    """A thread that prints after the task has returned (once event is
    set)."""
    def late():
        event.wait(60)
        print(text)
    threading.Thread(target=late).start()
    return "started"


def flood(nbytes, width=1000):
    line = "y" * (width - 1)
    for _ in range(nbytes // width):
        print(line)
    return nbytes // width


def say_redirected():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print("inside")
    print("after")
    return buf.getvalue()


def stdout_info():
    s = sys.stdout
    return (type(s).__name__, s.fileno(), s.writable(), s.isatty(),
            s.encoding)


def log_levels(name):
    import logging
    log = logging.getLogger(name)
    log.debug("debug %s", 1)
    log.info("info %s", 2)
    log.warning("warning %s", 3)
    log.error("error %s", 4)
    return "logged"


def log_exception(name):
    import logging
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger(name).exception("failed %s", "here")
    return "logged"


def log_via_importlib(name):
    import importlib
    importlib.import_module("logging").getLogger(name).warning("via %s",
                                                               "importlib")
    return "logged"


def log_and_print(name):
    import logging
    print("before")
    logging.getLogger(name).warning("middle")
    print("after")
    return "done"


def write_pieces(piece, n):
    for _ in range(n):
        sys.stdout.write(piece)
    return n
