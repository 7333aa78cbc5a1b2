"""multigil.frames - pandas_frame(): a pandas DataFrame over SharedArrays
(a Table, or a mapping of names to SharedArrays) without a copy.

For the process fallback (docs/fallback.md): a DataFrame argument is
pickled to a process worker, a SharedArray or a Table crosses as its
memfd; pandas_frame() in the task turns it into the DataFrame the task's
pandas code expects, through NumPy: numpy.asarray on each array's buffer
(a view of the mapped pages) and pandas.DataFrame(..., copy=False), which
keeps one block per column rather than copying them into one. int64,
float64 (a Table's nulls are NaN there already), bool and
timestamp[us] columns without nulls are views; string, date32 and
nullable int/bool columns are converted (a copy). Imports NumPy and
pandas when called, so it runs only where they load (a process worker,
the main interpreter).
"""
from . import _core

__all__ = ["pandas_frame"]

# Table column types whose values NumPy can view as pandas holds them.
_VIEW_DTYPE = {"int64": None, "float64": None, "bool": None,
               "timestamp[us]": "datetime64[us]"}


def pandas_frame(data, index=None):
    """A pandas DataFrame whose columns are views of data's SharedArrays
    (data: a multigil Table, or a mapping name -> SharedArray); writes to
    the arrays are seen by the frame. With pandas' copy-on-write, a write
    through the frame makes the frame a copy and is not seen by the
    arrays."""
    import pandas as pd
    from .table import Table
    if isinstance(data, Table):
        cols = {name: _table_column(data[name])
                for name in data.column_names}
    else:
        try:
            items = list(data.items())
        except AttributeError:
            raise TypeError(f"pandas_frame() needs a Table or a mapping of "
                            f"SharedArrays, not {type(data).__name__}"
                            ) from None
        cols = {name: _view(a, name) for name, a in items}
    return pd.DataFrame(cols, index=index, copy=False)


def _view(a, name):
    import numpy as np
    if type(a) is not _core.SharedArray:
        raise TypeError(f"pandas_frame(): column {name!r} is a "
                        f"{type(a).__name__}, not a SharedArray")
    return np.asarray(a)


def _table_column(col):
    import numpy as np
    if col.type in _VIEW_DTYPE and (col.null_count == 0
                                    or col.type == "float64"):
        v = np.asarray(col.values)
        dt = _VIEW_DTYPE[col.type]
        return v if dt is None else v.view(dt)
    import pandas as pd
    return pd.Series(col.to_pylist(), dtype=_COPY_DTYPE.get(col.type))


_COPY_DTYPE = {"int64": "Int64", "bool": "boolean"}
