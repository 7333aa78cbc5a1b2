# Type stubs for multigil.csv.
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Literal, TypeAlias

from .pool import Pool
from .table import Table

_DType: TypeAlias = str | type
_Source: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | Sequence[str | os.PathLike[str]]

class CSVError(ValueError):
    file: str
    line: int
    column: int
    column_name: str | None

def read_csv(
    source: _Source,
    *,
    pool: Pool | None = None,
    delimiter: str = ",",
    quotechar: str | None = '"',
    escapechar: str | None = None,
    doublequote: bool = True,
    header: int | None = 0,
    names: Sequence[str] | None = None,
    skip_rows: int = 0,
    skip_footer: int = 0,
    comment: str | None = None,
    columns: Iterable[str | int] | None = None,
    dtypes: _DType | Mapping[str, _DType] | None = None,
    null_values: Iterable[str] = ("",),
    true_values: Iterable[str] = ("True", "TRUE", "true"),
    false_values: Iterable[str] = ("False", "FALSE", "false"),
    encoding: str = "utf-8",
    on_bad_lines: Literal["error", "skip", "warn"] = "error",
    n_rows: int | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
) -> Table: ...
