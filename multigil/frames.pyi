from typing import Any

__all__ = ["pandas_frame"]

# data: a multigil.Table, or a mapping of column names to SharedArrays;
# returns a pandas.DataFrame (pandas is not a dependency of the stubs).
def pandas_frame(data: object, index: Any = None) -> Any: ...
