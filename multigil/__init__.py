"""multigil: parallel Python on subinterpreters that each own their GIL.

Every worker interpreter imports ``multigil._core``, which imports this
package first, so this module stays tiny: public names are loaded lazily.
"""
import sys as _sys

if _sys.version_info < (3, 12):
    raise ImportError(
        "multigil needs CPython 3.12 or newer: it runs workers in "
        "subinterpreters with their own GIL (PEP 684), which Python "
        f"{_sys.version_info[0]}.{_sys.version_info[1]} does not have")

__version__ = "0.1.0"

_LAZY = {
    "Pool": "multigil.pool",
    "process_task": "multigil.pool",
    "BrokenPool": "multigil.pool",
    "MultigilError": "multigil._core",
    "NotShareableError": "multigil._core",
    "RemoteTraceback": "multigil._core",
    "SharedArray": "multigil._core",
    "kernels": "multigil.kernels",
    "dumps": "multigil._core",
    "read_csv": "multigil.csv",
    "CSVError": "multigil.csv",
    "Table": "multigil.table",
    "Column": "multigil.table",
    "pandas_frame": "multigil.frames",
    "Queue": "multigil._core",
    "QueueEmpty": "multigil._core",
    "QueueFull": "multigil._core",
    "QueueClosed": "multigil._core",
    "Event": "multigil._core",
    "Lock": "multigil._core",
    "RLock": "multigil._core",
    "Semaphore": "multigil._core",
    "BoundedSemaphore": "multigil._core",
    "Barrier": "multigil._core",
    "Condition": "multigil._core",
    "BrokenBarrierError": "multigil._core",
    "Pipeline": "multigil.pipeline",
    "loads": "multigil._core",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    modname = _LAZY.get(name)
    if modname is None:
        raise AttributeError(f"module 'multigil' has no attribute {name!r}")
    import importlib
    module = importlib.import_module(modname)
    # A submodule (multigil.kernels) is its own value.
    if modname == f"{__name__}.{name}":
        value = module
    else:
        value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
