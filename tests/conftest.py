"""Test set-up: a per-test watchdog so that a hang fails loudly instead of
stalling CI, and a shared pool fixture."""
import faulthandler
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (HERE, ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

import multigil  # noqa: E402

WATCHDOG_SECONDS = float(os.environ.get("MULTIGIL_TEST_WATCHDOG", "180"))


def _watchdog_file():
    """Where a hang's tracebacks go: the descriptor MULTIGIL_WATCHDOG_FD
    names (the Makefile passes the terminal's stderr as fd 3), since
    pytest captures fd 2 during a test and the capture is lost when the
    watchdog ends the process."""
    fd = os.environ.get("MULTIGIL_WATCHDOG_FD")
    if fd:
        try:
            f = os.fdopen(int(fd), "w", closefd=False)
            os.fstat(f.fileno())
            return f
        except (OSError, ValueError):
            pass
    return sys.stderr


WATCHDOG_FILE = _watchdog_file()


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True,
                                      file=WATCHDOG_FILE)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def pool():
    p = multigil.Pool(2)
    yield p
    p.shutdown()


def pytest_report_header(config):
    return (f"multigil {multigil.__version__} on CPython "
            f"{sys.version.split()[0]}, {os.cpu_count()} CPUs")
