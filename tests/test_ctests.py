"""The C tests of the pure-C layer (tests/c, src/base) through `make
ctest`, so that the suite covers them: the wait primitive, the task queue,
blocks, buffers and handles, with the futex and the portable wait."""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = os.environ.get("CC", "cc")


@pytest.mark.skipif(shutil.which(CC) is None or shutil.which("make") is None,
                    reason="needs a C compiler and make")
def test_make_ctest():
    env = dict(os.environ)
    # Under `make asan` the sanitizer runtimes are preloaded into Python;
    # the compiler and the C tests need none of that.
    env.pop("LD_PRELOAD", None)
    r = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "ctest"],
                       capture_output=True, text=True, env=env, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    totals = dict((m[1], (int(m[2]), int(m[3]))) for m in re.finditer(
        r"^(ctest\S*): (\d+) passed, (\d+) failed$", r.stdout, re.M))
    assert set(totals) == {"ctest", "ctest-nofutex"}, out[-4000:]
    for label, (passed, failed) in totals.items():
        assert failed == 0, out[-4000:]
        assert passed >= 20, (label, passed)
    assert not re.search(r"^FAIL ", r.stdout, re.M), out[-4000:]
