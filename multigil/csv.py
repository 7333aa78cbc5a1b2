"""multigil.csv - read_csv: CSV files straight into a Table of shared columns.

The parsing is C (src/base/csv_*.c, through multigil._core._csv_read): the
input is split into chunks, the first row start after every chunk
boundary is found exactly (the row automaton run from every state until
the states converge, or else a scan of every chunk composed from the
start), each chunk's rows are parsed in one pass into typed per-chunk
columns, types are unified over the whole input, and the chunks' columns
are emitted into shared column blocks, all in parallel on C threads with
the GIL released. This module handles
sources, encodings, headers and the options, and names file, line and
column in errors. See docs/csv.md.
"""
import codecs
import glob as _glob
import mmap
import os
import warnings

from . import _core
from .table import Column, Table

__all__ = ["read_csv", "CSVError"]

# Type codes of the C reader (csv.h mg_csv_type) and their spellings.
_INT, _FLOAT, _BOOL, _DATE, _TS, _STR = range(6)
_TYPE_NAMES = {
    _INT: "int64", _FLOAT: "float64", _BOOL: "bool", _DATE: "date32",
    _TS: "timestamp[us]", _STR: "string",
}
_DTYPE_ALIASES = {
    "i8": _INT, "int64": _INT, "int": _INT, "q": _INT,
    "f8": _FLOAT, "float64": _FLOAT, "float": _FLOAT, "d": _FLOAT,
    "bool": _BOOL, "b1": _BOOL, "?": _BOOL,
    "date": _DATE, "date32": _DATE,
    "timestamp": _TS, "datetime": _TS, "timestamp[us]": _TS,
    "str": _STR, "string": _STR, "utf8": _STR,
}
_DTYPE_ALIASES.update({int: _INT, float: _FLOAT, bool: _BOOL, str: _STR})

_ERRORS = {
    2: "row has {nfields} fields, expected {expected}",
    3: "unterminated quoted field (end of input inside quotes)",
    4: "escape character at the end of the input",
    5: "invalid UTF-8 in a cell",
    6: "cell {cell!r} does not fit the forced type {type}",
}
_UTF8_BOM = b"\xef\xbb\xbf"
_MIN_CHUNK = 1 << 16
# At most 1 MiB a chunk: a chunk's column buffers (about its size) then
# stay in the cache between its parse and its emission, and the next
# round takes them over warm (100 MB file, read_csv with chunk_size 16 MiB
# against 1 MiB: 241 against 212 ms at 1 thread, 171 against 134 at 2).
# It also makes a read with n_rows stop soon after the rows are there.
_MAX_CHUNK = 1 << 20


class CSVError(ValueError):
    """Bad CSV input. Attributes: file (name or "<bytes>"), line (1-based
    physical line of the row), column (1-based field number) and
    column_name (None when unknown)."""

    def __init__(self, msg, file=None, line=None, column=None,
                 column_name=None):
        super().__init__(msg)
        self.file = file
        self.line = line
        self.column = column
        self.column_name = column_name


class _Source:
    """One input: its name, its UTF-8 bytes (a buffer) and, for
    transcoded inputs, the decoded text for error lines."""

    def __init__(self, name, data, keep=None):
        self.name = name
        self.data = data
        self.keep = keep  # objects that must outlive data (mmap, file)
        # data is a read-only mapping of the file: the C reader may drop
        # the pages it has parsed from this process.
        self.mapped = keep is not None and data is keep


def _is_glob(s):
    return any(c in s for c in "*?[")


def _paths(source):
    if isinstance(source, (str, os.PathLike)):
        s = os.fspath(source)
        if not os.path.exists(s) and _is_glob(s):
            found = sorted(_glob.glob(s))
            if not found:
                raise FileNotFoundError(f"no file matches {s!r}")
            return found
        return [s]
    return [os.fspath(p) for p in source]


def _map_file(path):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b"", None
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return m, m


def _line_in_text(text, index):
    """1-based physical line of text[index] (LF, CR and CRLF)."""
    head = text[:index]
    return head.count("\n") + head.count("\r") - head.count("\r\n") + 1


def _transcode(name, raw, encoding):
    """raw in encoding -> UTF-8 bytes; CSVError names the line."""
    try:
        text = bytes(raw).decode(encoding)
    except UnicodeDecodeError as e:
        text = bytes(raw[:e.start]).decode(encoding, errors="replace")
        raise CSVError(f"{name}:{_line_in_text(text, len(text))}: invalid "
                       f"{encoding} bytes at offset {e.start}",
                       file=name, line=_line_in_text(text, len(text))) \
            from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.encode("utf-8")


def _load(source, encoding):
    enc = codecs.lookup(encoding).name
    if isinstance(source, (bytes, bytearray, memoryview)):
        items = [("<bytes>", source, None)]
    elif hasattr(source, "read"):
        items = [(getattr(source, "name", "<file>"), source.read(), None)]
    else:
        items = [(p, *_map_file(p)) for p in _paths(source)]
    out = []
    for name, data, keep in items:
        if isinstance(data, str):
            raise TypeError("read_csv takes bytes or a binary file, not text")
        if enc in ("utf-8", "utf-8-sig"):
            out.append(_Source(name, data, keep))
        elif enc == "ascii":
            _transcode(name, data, "ascii")  # validates; ASCII is UTF-8
            out.append(_Source(name, data, keep))
        else:
            out.append(_Source(name, _transcode(name, data, enc)))
            if keep is not None:
                keep.close()
    return out


def _byte(ch, what, allow_none=True):
    if ch is None:
        if allow_none:
            return -1
        raise TypeError(f"{what} must be a one-character string")
    if not isinstance(ch, str) or len(ch) != 1 or ord(ch) > 127 \
            or ch in "\r\n":
        raise ValueError(f"{what} must be one ASCII character other than "
                         f"CR and LF, not {ch!r}")
    return ord(ch)


def _dialect(delimiter, quotechar, escapechar, doublequote, comment):
    d = (_byte(delimiter, "delimiter", False), _byte(quotechar, "quotechar"),
         _byte(escapechar, "escapechar"), _byte(comment, "comment"),
         bool(doublequote))
    used = [c for c in d[:4] if c >= 0]
    if len(used) != len(set(used)):
        raise ValueError("delimiter, quotechar, escapechar and comment must "
                         "differ")
    return d


class _Reader:
    """The state of one read_csv call."""

    def __init__(self, dialect, name_of):
        self.dialect = dialect
        self.name_of = name_of

    def fail(self, src, code, pos, field, nfields, names=None, expected=None,
             cell=None, type_=None):
        line = _core._csv_line_of(src.data, pos)
        col = field + 1
        cname = names[field] if names is not None and field < len(names) \
            else None
        what = _ERRORS.get(code, f"error {code}").format(
            nfields=nfields, expected=expected, cell=cell, type=type_)
        where = f"column {col}" + (f" ({cname!r})" if cname else "")
        raise CSVError(f"{src.name}:{line}: {where}: {what}", file=src.name,
                       line=line, column=col, column_name=cname)

    def row(self, src, pos):
        """(fields as bytes, next row start); [] at the end."""
        res = _core._csv_row(src.data, self.dialect, pos)
        if not res[0]:
            self.fail(src, *res[1:2], *res[3:5], 0)
        return res[1], res[2]


def _decode_name(b, src, i):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise CSVError(f"{src.name}: header field {i + 1} is not valid "
                       "UTF-8", file=src.name, line=1, column=i + 1) from None


def _header(reader, src, skip_rows, header, names):
    """(names of the fields or None, position of the first data row)."""
    pos = len(_UTF8_BOM) if bytes(src.data[:3]) == _UTF8_BOM else 0
    for _ in range(skip_rows + (header or 0)):
        fields, pos = reader.row(src, pos)
        if not fields:
            break
    if header is None:
        fields, _ = reader.row(src, pos)
        return (list(names) if names is not None else None,
                len(fields), pos)
    fields, pos = reader.row(src, pos)
    if names is not None:  # the given names replace the header row
        return list(names), len(fields), pos
    found = [_decode_name(b, src, i) for i, b in enumerate(fields)]
    return found, len(found), pos


def _unique(names):
    seen = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            n = f"{n}.{seen[n]}"
        seen.setdefault(n, 0)
        out.append(n)
    return out


def _keep_map(names, columns):
    if columns is None:
        return list(range(len(names))), list(names)
    keep = [-1] * len(names)
    out = []
    for k, c in enumerate(columns):
        if isinstance(c, int):
            if not 0 <= c < len(names):
                raise IndexError(f"column index {c} out of range "
                                 f"(0..{len(names) - 1})")
            i = c
        else:
            try:
                i = names.index(c)
            except ValueError:
                raise KeyError(f"no column {c!r}; columns: {names}") \
                    from None
        if keep[i] >= 0:
            raise ValueError(f"column {c!r} selected twice")
        keep[i] = k
        out.append(names[i])
    return keep, out


def _forced(out_names, dtypes):
    if dtypes is None:
        return [-1] * len(out_names)
    if not isinstance(dtypes, dict):
        return [_type_code(dtypes)] * len(out_names)
    unknown = set(dtypes) - set(out_names)
    if unknown:
        raise KeyError(f"dtypes for unknown columns {sorted(unknown)}")
    return [_type_code(dtypes[n]) if n in dtypes else -1 for n in out_names]


def _type_code(t):
    try:
        return _DTYPE_ALIASES[t]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dtype {t!r}; valid: i8, f8, bool, date, "
                         "timestamp, str") from None


def _bytes_list(values, what):
    out = []
    for v in values:
        if not isinstance(v, str):
            raise TypeError(f"{what} must be strings, not {type(v).__name__}")
        out.append(v.encode("utf-8"))
    return out


def _nthreads(pool, workers):
    if workers is not None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        return int(workers)
    if pool is not None:
        return int(pool.workers)
    return os.cpu_count() or 1


def read_csv(source, *, pool=None, delimiter=",", quotechar='"',
             escapechar=None, doublequote=True, header=0, names=None,
             skip_rows=0, skip_footer=0, comment=None, columns=None,
             dtypes=None, null_values=("",),
             true_values=("True", "TRUE", "true"),
             false_values=("False", "FALSE", "false"), encoding="utf-8",
             on_bad_lines="error", n_rows=None, workers=None,
             chunk_size=None, sync_window=None):
    """Read CSV into a Table. See docs/csv.md for every option.

    source: a path, a glob, a list of paths (one table, rows in order),
    bytes, or a binary file object. The parse runs on C threads: as many
    as pool.workers (or `workers`, or os.cpu_count()); chunk_size (bytes)
    forces the size of the chunks a file is split into; sync_window
    (bytes, testing) how far after a chunk boundary the row automaton must
    converge before the split falls back to scanning every chunk.
    """
    if on_bad_lines not in ("error", "skip", "warn"):
        raise ValueError("on_bad_lines must be 'error', 'skip' or 'warn'")
    if header is not None and (not isinstance(header, int) or header < 0):
        raise ValueError("header must be a row index >= 0 or None")
    if skip_rows < 0 or skip_footer < 0 or (n_rows is not None
                                            and n_rows < 0):
        raise ValueError("skip_rows, skip_footer and n_rows must be >= 0")
    dialect = _dialect(delimiter, quotechar, escapechar, doublequote,
                       comment)
    sources = _load(source, encoding)
    reader = _Reader(dialect, None)
    segs, given, names, nfields = [], names, None, None
    for src in sources:
        found, nf, pos = _header(reader, src, skip_rows, header, given)
        if nfields is None:
            names, nfields = found, nf
        elif nf != nfields or (header is not None and found != names):
            raise CSVError(f"{src.name}: columns {found} differ from "
                           f"{names} of {sources[0].name}", file=src.name,
                           line=1)
        segs.append((src.data, pos, len(src.data), src.mapped))
    if names is None:
        names = [f"column_{i}" for i in range(nfields or 0)]
    if nfields is not None and len(names) != nfields and nfields > 0:
        raise ValueError(f"{len(names)} names for {nfields} fields")
    nfields = len(names)
    names = _unique(names)
    keep, out_names = _keep_map(names, columns)
    forced = _forced(out_names, dtypes)
    nthreads = _nthreads(pool, workers)
    total = sum(seg[2] - seg[1] for seg in segs)
    if chunk_size is None:
        # A few chunks per thread so that uneven chunks even out, and no
        # chunk over _MAX_CHUNK: each chunk's columns are freed once
        # emitted, so the read needs about the result plus a few chunks.
        chunk_size = min(_MAX_CHUNK, max(_MIN_CHUNK,
                                         -(-total // (nthreads * 4))))
    if sync_window is not None and sync_window < 1:
        raise ValueError("sync_window must be >= 1")
    res = _core._csv_read(
        segs, dialect, nfields, keep, forced,
        _bytes_list(null_values, "null_values"),
        _bytes_list(true_values, "true_values"),
        _bytes_list(false_values, "false_values"),
        1 if on_bad_lines != "error" else 0,
        -1 if n_rows is None else n_rows, skip_footer, int(chunk_size),
        nthreads, int(sync_window or 0))
    if not res[0]:
        _, code, seg, pos, field, nf = res
        src = sources[seg]
        cell = type_ = None
        if code == 6:
            cell = _cell_text(reader, src, pos, field)
            k = keep[field]
            type_ = _TYPE_NAMES[forced[k]]
        reader.fail(src, code, pos, field, nf, names, nfields, cell, type_)
    _, nrows, nskipped, skseg, skpos, cols = res
    if nskipped and on_bad_lines == "warn":
        src = sources[skseg]
        warnings.warn(f"{src.name}:{_core._csv_line_of(src.data, skpos)}: "
                      f"skipped {nskipped} rows with a number of fields "
                      f"other than {nfields}", stacklevel=2)
    table = Table({
        name: Column(_TYPE_NAMES[t], nrows, vals, data, valid, nulls)
        for name, (t, nulls, vals, data, valid) in zip(out_names, cols)})
    for src in sources:
        if src.keep is not None:
            src.keep.close()
    return table


def _cell_text(reader, src, pos, field):
    fields, _ = reader.row(src, pos)
    if field < len(fields):
        return fields[field].decode("utf-8", "replace")
    return None
