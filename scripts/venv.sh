#!/usr/bin/env bash
# venv.sh PYTHON VENV [bench] - make VENV for PYTHON with what tests need
# (pytest, hypothesis, mypy for the stubs' check; with "bench" also the
# reference packages NumPy, pyarrow, pandas, polars, DuckDB, joblib, dask[distributed] and the
# examples' optional openpyxl and PySide6, where the Python has wheels).
set -eu
py=$1 venv=$2 extra=${3:-}
stamp="$venv/.multigil-4-$extra-ok"   # bump when the lists change
[ -f "$stamp" ] && exit 0
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
pip() { "$venv/bin/python" -m pip -q --disable-pip-version-check "$@"; }
pip install 'pytest>=7' 'hypothesis>=6' >/dev/null
# The type check of the stubs (tests/test_typing.py skips, saying so,
# where mypy has no wheel for this Python).
pip install --only-binary=:all: 'mypy>=1.10' >/dev/null 2>&1 || echo "note: mypy not available for $py"
# Optional: zero-copy hand-off tests and benchmark references. A Python
# without wheels for one of them simply skips those tests (and says so).
for pkg in numpy pyarrow polars; do
    pip install --only-binary=:all: "$pkg" >/dev/null 2>&1 || echo "note: $pkg not available for $py"
done
if [ "$extra" = bench ]; then
    for pkg in pandas joblib duckdb backports.interpreters openpyxl PySide6-Essentials 'dask[distributed]'; do
        pip install --only-binary=:all: "$pkg" >/dev/null 2>&1 || echo "note: $pkg not available for $py"
    done
fi
touch "$stamp"
