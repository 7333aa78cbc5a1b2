#!/usr/bin/env bash
# asan-run.sh CMD... - run CMD with the ASan/UBSan runtimes preloaded into an
# uninstrumented CPython (the extension itself is built instrumented).
set -eu
cc=${CC:-gcc}
export LD_PRELOAD="$($cc -print-file-name=libasan.so) $($cc -print-file-name=libubsan.so)"
export PYTHONMALLOC=malloc
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export MULTIGIL_SANITIZER=1
exec "$@"
