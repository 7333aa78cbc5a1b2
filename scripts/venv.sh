#!/usr/bin/env bash
# venv.sh PYTHON VENV [bench] - make VENV for PYTHON with what tests need
# (pytest, hypothesis; with "bench" also the reference packages NumPy,
# pyarrow, pandas, polars, joblib, dask[distributed] where the Python has
# wheels for them).
set -eu
py=$1 venv=$2 extra=${3:-}
stamp="$venv/.multigil-$extra-ok"
[ -f "$stamp" ] && exit 0
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
pip() { "$venv/bin/python" -m pip -q --disable-pip-version-check "$@"; }
pip install 'pytest>=7' 'hypothesis>=6' >/dev/null
# Optional: zero-copy hand-off tests and benchmark references. A Python
# without wheels for one of them simply skips those tests (and says so).
for pkg in numpy pyarrow polars; do
    pip install --only-binary=:all: "$pkg" >/dev/null 2>&1 || echo "note: $pkg not available for $py"
done
if [ "$extra" = bench ]; then
    for pkg in pandas joblib backports.interpreters 'dask[distributed]'; do
        pip install --only-binary=:all: "$pkg" >/dev/null 2>&1 || echo "note: $pkg not available for $py"
    done
fi
touch "$stamp"
