"""Functions that the Dask tests run in multigil pools (importable by name
in worker interpreters and Dask worker processes)."""
import multigil._core as _core


def cpu(n):
    return sum(i * i for i in range(n))


def add(a, b):
    return a + b


def where(x):
    return _core.interpreter_id(), x


def boom(x):
    raise ValueError(f"boom {x}")
