"""The type stubs (multigil/*.pyi, py.typed): `mypy --strict` accepts a
typed use of the public API (tests/typing_usage.py) and rejects exactly
the wrong uses marked in tests/typing_misuse.py."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USAGE = os.path.join("tests", "typing_usage.py")
MISUSE = os.path.join("tests", "typing_misuse.py")

try:
    import mypy  # noqa: F401
except ImportError:
    mypy = None


def test_stubs_and_marker_are_package_data():
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        pyproject = f.read()
    for name in ("py.typed", "*.pyi"):
        assert f'"{name}"' in pyproject
    assert os.path.exists(os.path.join(ROOT, "multigil", "py.typed"))


@pytest.mark.skipif(mypy is None, reason="mypy is not installed for this "
                    "Python (scripts/venv.sh installs it where it can)")
def test_mypy_strict(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-color-output",
         "--cache-dir", str(tmp_path / "cache"), USAGE, MISUSE],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env=dict(os.environ, MYPYPATH=ROOT))
    errors = [ln for ln in r.stdout.splitlines() if ": error:" in ln]
    assert r.returncode in (0, 1), r.stdout + r.stderr
    elsewhere = [e for e in errors if not e.startswith(MISUSE + ":")]
    assert elsewhere == [], "\n".join(elsewhere)
    with open(os.path.join(ROOT, MISUSE)) as f:
        marked = {n for n, line in enumerate(f, 1) if line.rstrip()
                  .endswith("# error")}
    found = {int(re.match(re.escape(MISUSE) + r":(\d+):", e).group(1))
             for e in errors}
    assert marked and found == marked, r.stdout
