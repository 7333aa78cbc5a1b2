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


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
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
