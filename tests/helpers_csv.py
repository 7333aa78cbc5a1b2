"""Task functions for test_table.py, importable by worker interpreters."""
import multigil
from multigil import kernels


def table_summary(t):
    """What a worker sees of a Table: its interpreter, a sum computed in C
    and the strings; it negates its first "n" value in place, which the
    caller sees only if the memory is shared (ctypes, for addresses, does
    not load in a 3.12 subinterpreter)."""
    v = t["n"].values
    total = kernels.sum(v)
    v[0] = -v[0]
    return (multigil._core.interpreter_id(), total, t["s"].to_pylist(),
            t.num_rows)


def group_sums(t):
    out = {}
    for k, v in zip(t["k"].to_pylist(), t["v"].to_pylist()):
        if v is not None:
            out[k] = out.get(k, 0) + v
    return out
