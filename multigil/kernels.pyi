# Type stubs for multigil.kernels (re-exports of the C core's kernels).
from ._core import Stats as Stats
from ._core import add as add
from ._core import argmax as argmax
from ._core import argmin as argmin
from ._core import combine_stats as combine_stats
from ._core import count_nonzero as count_nonzero
from ._core import div as div
from ._core import fill as fill
from ._core import max as max
from ._core import mean as mean
from ._core import min as min
from ._core import mul as mul
from ._core import sort as sort
from ._core import stats as stats
from ._core import std as std
from ._core import sub as sub
from ._core import sum as sum
from ._core import var as var

__all__ = [
    "Stats", "add", "argmax", "argmin", "combine_stats", "count_nonzero",
    "div", "fill", "max", "mean", "min", "mul", "sort", "stats", "std",
    "sub", "sum", "var",
]
