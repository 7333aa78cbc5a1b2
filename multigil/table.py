"""multigil.table - Table and Column: named columns in shared memory.

A Column is a view (offset, length) of shared blocks in Arrow's layout:
numeric, bool, date and timestamp values in a SharedArray; strings as
large-utf8 (int64 offsets + UTF-8 bytes); an optional validity bitmap
(bit i set: row i is valid). Slicing and splitting make new views, never
copies. Tables cross interpreters by pickling through the codec, whose
handles carry each SharedArray's block: O(1) per column, no copy of the
data. __arrow_c_stream__ exports the blocks through the Arrow C stream
interface (multigil._core._arrow_stream), so pyarrow, polars and pandas
take them without a copy (bool columns are bit-packed, a copy).
"""
import datetime as _dt

from . import _core, kernels

__all__ = ["Table", "Column"]

_VALUE_DTYPE = {"int64": "i8", "float64": "f8", "bool": "b1",
                "date32": "i4", "timestamp[us]": "i8", "string": "i8"}
_ARROW_FORMAT = {"int64": "l", "float64": "g", "bool": "b", "date32": "tdD",
                 "timestamp[us]": "tsu:", "string": "U"}
_EPOCH = _dt.date(1970, 1, 1)
_EPOCH_TS = _dt.datetime(1970, 1, 1)


class Column:
    """One column: type, len, values / offsets / data / validity."""

    __slots__ = ("type", "length", "offset", "_values", "_data",
                 "_validity", "_nulls")

    def __init__(self, type, length, values, data=None, validity=None,
                 null_count=None, offset=0):
        if type not in _VALUE_DTYPE:
            raise ValueError(f"unknown column type {type!r}")
        self.type = type
        self.length = length
        self.offset = offset
        self._values = values
        self._data = data
        self._validity = validity
        self._nulls = null_count

    def __getstate__(self):
        return (self.type, self.length, self.offset, self._values,
                self._data, self._validity, self._nulls)

    def __setstate__(self, s):
        (self.type, self.length, self.offset, self._values, self._data,
         self._validity, self._nulls) = s

    def __len__(self):
        return self.length

    def __repr__(self):
        return f"<multigil.Column {self.type} len={self.length}>"

    @property
    def values(self):
        """The values as a SharedArray view (string columns: the
        length + 1 offsets into data). Null rows hold 0 (NaN for float)."""
        n = self.length + (self.type == "string")
        return self._values[self.offset:self.offset + n]

    @property
    def data(self):
        """String columns: the UTF-8 bytes (SharedArray of u1), else None."""
        return self._data

    @property
    def validity(self):
        """The validity bitmap (SharedArray of u1, bit offset `offset`),
        or None when the column has no nulls."""
        return self._validity

    @property
    def null_count(self):
        if self._validity is None:
            return 0
        if self._nulls is None or self.offset or \
                self.length != len(self._values) - (self.type == "string"):
            self._nulls = self.length - sum(
                self.is_valid(i) for i in range(self.length))
        return self._nulls

    def is_valid(self, i):
        if self._validity is None:
            return True
        j = self.offset + i
        return bool(self._validity[j >> 3] >> (j & 7) & 1)

    def slice(self, start, stop):
        start, stop, _ = slice(start, stop).indices(self.length)
        stop = max(stop, start)
        return Column(self.type, stop - start, self._values, self._data,
                      self._validity, None if self._validity else 0,
                      self.offset + start)

    def _item(self, i, raw, mv):
        if not self.is_valid(i):
            return None
        j = self.offset + i
        t = self.type
        if t == "string":
            return str(mv[raw[j]:raw[j + 1]], "utf-8")
        v = raw[j]
        if t == "date32":
            return _EPOCH + _dt.timedelta(days=v)
        if t == "timestamp[us]":
            return _EPOCH_TS + _dt.timedelta(microseconds=v)
        return v

    def __getitem__(self, i):
        if isinstance(i, slice):
            if i.step not in (None, 1):
                raise ValueError("Column slices take no step")
            return self.slice(i.start, i.stop)
        n = self.length
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("column index out of range")
        mv = memoryview(self._data) if self._data is not None else None
        return self._item(i, self._values, mv)

    def to_pylist(self):
        """The values as Python objects (None for nulls)."""
        t = self.type
        if t in ("int64", "float64", "bool") and self._validity is None:
            return self.values.tolist()
        raw = self._values
        if t == "string":
            return _core._string_column_list(self._values, self._data,
                                             self._validity, self.offset,
                                             self.length)
        return [self._item(i, raw, None) for i in range(self.length)]

    def _arrow_spec(self, name):
        # A slice's null count is not known without a pass over its bits:
        # Arrow's -1 ("unknown") lets the consumer count if it cares.
        known = self._validity is None or (
            self._nulls is not None and self.offset == 0
            and self.length == len(self._values) - (self.type == "string"))
        nulls = self.null_count if known else -1
        return (name, _ARROW_FORMAT[self.type], self.length, self.offset,
                nulls, self._validity, self._values, self._data)


class Table:
    """Named columns of one length. Build with read_csv, Table(dict of
    Column) or Table.from_pydict."""

    __slots__ = ("_cols",)

    def __init__(self, columns):
        cols = dict(columns)
        lengths = {len(c) for c in cols.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths {sorted(lengths)}")
        for name, c in cols.items():
            if not isinstance(name, str) or not isinstance(c, Column):
                raise TypeError("Table takes a mapping of str to Column")
        self._cols = cols

    def __getstate__(self):
        return list(self._cols.items())

    def __setstate__(self, s):
        self._cols = dict(s)

    @classmethod
    def from_pydict(cls, data):
        """A Table from {name: list}; each list's type is inferred like
        read_csv (int, float, bool, str; None is null)."""
        return cls({k: _column_from_list(v) for k, v in data.items()})

    @property
    def num_rows(self):
        for c in self._cols.values():
            return len(c)
        return 0

    def __len__(self):
        return self.num_rows

    @property
    def column_names(self):
        return list(self._cols)

    @property
    def schema(self):
        """{name: type} with the types int64, float64, bool, date32,
        timestamp[us], string."""
        return {k: c.type for k, c in self._cols.items()}

    @property
    def columns(self):
        return list(self._cols.values())

    def __getitem__(self, name):
        try:
            return self._cols[name]
        except KeyError:
            raise KeyError(f"no column {name!r}; columns: "
                           f"{self.column_names}") from None

    def __contains__(self, name):
        return name in self._cols

    def __repr__(self):
        cols = ", ".join(f"{k}: {c.type}" for k, c in self._cols.items())
        return f"<multigil.Table {self.num_rows} rows [{cols}]>"

    def select(self, names):
        return Table({n: self[n] for n in names})

    def slice(self, start, stop=None):
        if stop is None:
            stop = self.num_rows
        return Table({k: c.slice(start, stop) for k, c in self._cols.items()})

    def split(self, k):
        """k contiguous row ranges (views) whose lengths differ by at most
        one, in order: for pool.map."""
        if k < 1:
            raise ValueError("split() needs k >= 1")
        n = self.num_rows
        q, r = divmod(n, k)
        out, start = [], 0
        for i in range(k):
            stop = start + q + (i < r)
            out.append(self.slice(start, stop))
            start = stop
        return out

    def to_pydict(self):
        return {k: c.to_pylist() for k, c in self._cols.items()}

    def to_pylist(self):
        cols = self.to_pydict()
        names = list(cols)
        return [dict(zip(names, row)) for row in zip(*cols.values())]

    @staticmethod
    def concat(tables):
        """One Table with the rows of tables in order. Columns must have the
        same names; int64 and float64 unify to float64, other mixes to
        string (by the Python text of each value)."""
        tables = list(tables)
        if not tables:
            return Table({})
        names = tables[0].column_names
        for t in tables[1:]:
            if t.column_names != names:
                raise ValueError(f"concat of tables with columns {names} "
                                 f"and {t.column_names}")
        return Table({n: _concat_columns([t[n] for t in tables])
                      for n in names})

    def __arrow_c_stream__(self, requested_schema=None):
        """Arrow PyCapsule stream of one record batch over the shared
        blocks (no copy except bit-packing of bool columns)."""
        return _core._arrow_stream(
            [c._arrow_spec(k) for k, c in self._cols.items()], self.num_rows)

    def to_arrow(self):
        import pyarrow as pa
        return pa.table(self)

    def to_pandas(self, **kw):
        """A pandas DataFrame through pyarrow (numeric columns without nulls
        are not copied; pass types_mapper=pandas.ArrowDtype to keep every
        column in the shared blocks)."""
        return self.to_arrow().to_pandas(**kw)


def _column_from_list(values):
    vals = list(values)
    present = [v for v in vals if v is not None]
    if all(isinstance(v, bool) for v in present) and present:
        t, dt = "bool", "b1"
    elif all(isinstance(v, int) and not isinstance(v, bool)
             for v in present) and present:
        t, dt = "int64", "i8"
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool)
             for v in present) and present:
        t, dt = "float64", "f8"
    else:
        return _string_column(vals)
    n = len(vals)
    fill = float("nan") if t == "float64" else 0
    arr = _core.SharedArray.from_iterable(
        [fill if v is None else v for v in vals], dtype=dt)
    return Column(t, n, arr, None, _validity_of(vals), n - len(present))


def _validity_of(vals):
    if all(v is not None for v in vals):
        return None
    bits = bytearray((len(vals) + 7) // 8)
    for i, v in enumerate(vals):
        if v is not None:
            bits[i >> 3] |= 1 << (i & 7)
    return _core.SharedArray.from_buffer(bytes(bits), dtype="u1")


def _string_column(vals):
    enc = [b"" if v is None else str(v).encode("utf-8") for v in vals]
    offs = [0]
    for b in enc:
        offs.append(offs[-1] + len(b))
    data = _core.SharedArray.from_buffer(b"".join(enc) or b"\0",
                                         dtype="u1")
    offsets = _core.SharedArray.from_iterable(offs, dtype="i8")
    nulls = sum(v is None for v in vals)
    return Column("string", len(vals), offsets, data, _validity_of(vals),
                  nulls)


def _concat_columns(cols):
    types = {c.type for c in cols}
    if len(types) == 1:
        t = types.pop()
    elif types == {"int64", "float64"}:
        t = "float64"
    else:
        t = "string"
    if t == "string" and any(c.type != "string" for c in cols):
        vals = []
        for c in cols:
            vals.extend(c.to_pylist())
        return _string_column(vals)
    n = sum(len(c) for c in cols)
    valid = _concat_validity(cols, n)
    nulls = sum(c.null_count for c in cols)
    if t == "string":
        return _concat_strings(cols, n, valid, nulls)
    arr = _core.SharedArray(n, dtype=_VALUE_DTYPE[t])
    pos = 0
    for c in cols:
        v = c.values
        if c.type != t:  # int64 into float64
            v = _core.SharedArray.from_iterable(v, dtype="f8")
        arr[pos:pos + len(c)] = v
        pos += len(c)
    return Column(t, n, arr, None, valid, nulls)


def _concat_validity(cols, n):
    if all(c.validity is None for c in cols):
        return None
    bits = bytearray((n + 7) // 8)
    pos = 0
    for c in cols:
        for i in range(len(c)):
            if c.is_valid(i):
                j = pos + i
                bits[j >> 3] |= 1 << (j & 7)
        pos += len(c)
    return _core.SharedArray.from_buffer(bytes(bits) or b"\0", dtype="u1")


def _concat_strings(cols, n, valid, nulls):
    nbytes = 0
    spans = []
    for c in cols:
        offs = c.values
        lo, hi = offs[0], offs[len(c)]
        spans.append((lo, hi))
        nbytes += hi - lo
    data = _core.SharedArray(max(nbytes, 1), dtype="u1")
    offsets = _core.SharedArray(n + 1, dtype="i8")
    pos = row = 0
    for c, (lo, hi) in zip(cols, spans):
        data[pos:pos + hi - lo] = c.data[lo:hi]
        part = offsets[row:row + len(c) + 1]
        part[:] = c.values
        kernels.add(part, pos - lo)
        pos += hi - lo
        row += len(c)
    return Column("string", n, offsets, data, valid, nulls)
