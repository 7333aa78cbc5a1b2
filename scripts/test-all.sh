#!/usr/bin/env bash
# test-all.sh - build and test multigil on every CPython >= 3.12 found.
# Installs what it needs (compiler from Debian if missing, test packages
# from PyPI into one venv per Python under build/). Exit status: non-zero
# if any Python failed or none was found.
set -u
cd "$(dirname "$0")/.."
if ! command -v cc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq build-essential >/dev/null
    fi
fi
pythons=$(scripts/pythons.sh)
if [ -z "$pythons" ]; then
    echo "test-all: no CPython >= 3.12 found (install one with pyenv)" >&2
    exit 1
fi
failed=""
for py in $pythons; do
    ver=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
    echo "=== CPython $ver ($py)"
    if ! make -s PYTHON="$py" test PYTEST_ARGS="${PYTEST_ARGS:-}"; then
        failed="$failed $ver"
    fi
done
if [ -n "${MULTIGIL_ASAN:-}" ]; then
    py=$(echo "$pythons" | head -n 1)
    echo "=== sanitizers (ASan + UBSan) on $py"
    make -s PYTHON="$py" asan || failed="$failed asan"
fi
if [ -n "$failed" ]; then
    echo "test-all: FAILED on:$failed" >&2
    exit 1
fi
echo "test-all: every Python passed"
