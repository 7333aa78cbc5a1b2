"""multigil.kernels - C reductions and in-place arithmetic on SharedArrays.

The functions live in the C core (multigil._core: src/py/kernels.c wraps the
pure-C loops of src/base/kern_*.c) and release the GIL on large arrays; this
module only re-exports them under one name. They are safe to call in any worker interpreter, and they cross to workers
by reference (``pool.map(kernels.sum, a.split(pool.workers))``).
Semantics (overflow, division by zero, NaN, empty arrays): docs/shared.md.
"""
from ._core import (  # noqa: F401  (re-exports)
    Stats,
    add,
    argmax,
    argmin,
    combine_stats,
    count_nonzero,
    div,
    fill,
    max,
    mean,
    min,
    mul,
    sort,
    stats,
    std,
    sub,
    sum,
    var,
)

__all__ = [
    "Stats", "add", "argmax", "argmin", "combine_stats", "count_nonzero",
    "div", "fill", "max", "mean", "min", "mul", "sort", "stats", "std",
    "sub", "sum", "var",
]
