"""Task functions for test_table.py, importable by worker interpreters."""
import multigil
from multigil import kernels


def table_summary(t):
    """What a worker sees of a Table: its interpreter, the addresses of the
    columns' blocks, a sum computed in C and the strings."""
    import ctypes
    v = t["n"].values
    addr = ctypes.addressof(ctypes.c_char.from_buffer(t["s"].data))
    return (multigil._core.interpreter_id(), kernels.sum(v),
            t["s"].to_pylist(), addr, t.num_rows)


def group_sums(t):
    out = {}
    for k, v in zip(t["k"].to_pylist(), t["v"].to_pylist()):
        if v is not None:
            out[k] = out.get(k, 0) + v
    return out
