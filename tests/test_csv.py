"""read_csv against Python's csv module, and its types, nulls and errors.

The differential tests read generated files with 1 to 5 threads and
chunk sizes down to one byte, so that chunk boundaries land inside quoted
fields, between CR and LF, on doubled quotes and on delimiters: every
split must give the csv module's cells exactly.
"""
import csv
import io
import math
import os

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import multigil as mg

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def csv_rows(text, **kw):
    return [r for r in csv.reader(io.StringIO(text, newline=""), **kw) if r]


def mg_rows(data, **kw):
    t = mg.read_csv(data, header=None, dtypes="str", null_values=(), **kw)
    cols = t.to_pydict().values()
    return [list(r) for r in zip(*cols)]


cell = st.text(alphabet=st.sampled_from(list('ab ,"\r\n\u00e9\u4e2d')),
               max_size=6)


@st.composite
def tables(draw):
    ncols = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(cell, min_size=ncols, max_size=ncols),
                         min_size=1, max_size=12))
    term = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator=term, quoting=quoting).writerows(rows)
    text = buf.getvalue()
    if draw(st.booleans()):
        text = text[:-len(term)]  # no final newline
    return text


# None: chunk boundaries found by sync (the automaton's states converge
# after the boundary); 1 or 3: the sync window is too short, so the split
# falls back to scanning every chunk and composing the states.
windows = st.sampled_from([None, None, 1, 3])


@SETTINGS
@given(tables(), st.integers(1, 5), st.integers(1, 40), windows)
def test_written_files_match_csv_module(text, workers, chunk, window):
    expected = csv_rows(text)
    # Before 3.13 csv.writer leaves a lone CR unquoted when the line
    # terminator is LF, so the file it wrote may be ragged: not a table.
    assume(len({len(r) for r in expected}) <= 1)
    got = mg_rows(text.encode(), workers=workers, chunk_size=chunk,
                  sync_window=window)
    assert got == expected


raw = st.text(alphabet=st.sampled_from(list('a,"\r\n')), max_size=40)


def _ends_in_quotes(text):
    """The csv module ends inside a quoted field (it keeps the field, we
    refuse it) exactly when one more LF would become part of a cell."""
    return csv_rows(text) != csv_rows(text + "\n")


@SETTINGS
@given(raw, st.integers(1, 5), st.integers(1, 7), windows)
def test_raw_text_matches_csv_module(text, workers, chunk, window):
    """Arbitrary quote placement (text after a closing quote, quotes inside
    unquoted fields) reads as the csv module reads it."""
    expected = csv_rows(text)
    if not expected or len({len(r) for r in expected}) != 1:
        return  # ragged: covered by the error tests
    try:
        got = mg_rows(text.encode(), workers=workers, chunk_size=chunk,
                      sync_window=window)
    except mg.CSVError as e:
        assert "unterminated" in str(e) and _ends_in_quotes(text)
        return
    assert not _ends_in_quotes(text)
    assert got == expected


long_cell = st.text(alphabet=st.sampled_from(list('abc ,"\r\n')), max_size=30)


@st.composite
def long_texts(draw):
    """Texts of several 64-byte blocks: well-formed rows written by the csv
    module, with now and then a stray quote, a text after a closing quote
    or a missing closing quote spliced in."""
    rows = draw(st.lists(st.lists(long_cell, min_size=3, max_size=3),
                         min_size=1, max_size=30))
    buf = io.StringIO(newline="")
    term = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    csv.writer(buf, lineterminator=term).writerows(rows)
    text = buf.getvalue()
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', 'x"', '"x', '""'])) \
            + text[at:]
    return text


@SETTINGS
@given(long_texts(), st.sampled_from([1, 2]), st.sampled_from([None, 64, 7]))
def test_long_text_across_blocks_matches_csv_module(text, workers, chunk):
    """The structural fast path cuts rows 64 bytes at a time and gives the
    rest of a chunk to the byte-wise parser at the first quote it cannot
    read like the csv module: quoted delimiters and line ends on block
    edges, doubled quotes split by an edge, and a stray quote after many
    good rows all read as the csv module reads them."""
    expected = csv_rows(text)
    if not expected or len({len(r) for r in expected}) != 1:
        return
    try:
        got = mg_rows(text.encode(), workers=workers, chunk_size=chunk)
    except mg.CSVError as e:
        assert "unterminated" in str(e) and _ends_in_quotes(text)
        return
    assert not _ends_in_quotes(text)
    assert got == expected


def test_stray_quote_after_many_good_rows():
    good = "".join(f'{i},"q,{i}\n""x""",z\n' for i in range(200))
    for bad in ('7,ab"c,z\n', '7,"ab"c,z\n', '7,"ab""c",z\n'):
        text = good + bad + good
        assert mg_rows(text.encode(), workers=1) == csv_rows(text)
    with pytest.raises(mg.CSVError, match="unterminated"):
        mg_rows((good + '7,"abc,z\n').encode(), workers=1)


def test_every_split_point_of_a_quoted_file():
    rows = [["1", 'a\r\nb', 'say ""hi""'], ["2", "", "x,y"],
            ["3", '\r', '\n\n']]
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    data = buf.getvalue().encode()
    for chunk in range(1, len(data) + 1):
        for workers, window in ((1, None), (3, None), (3, 2)):
            assert mg_rows(data, workers=workers, chunk_size=chunk,
                           sync_window=window) == \
                csv_rows(buf.getvalue()), chunk


def test_escapechar_and_no_doublequote():
    data = b'a,b\n"x\\"y",p\\,q\n'
    t = mg.read_csv(data, escapechar="\\", doublequote=False)
    exp = csv_rows(data.decode(), escapechar="\\", doublequote=False)
    assert [t["a"][0], t["b"][0]] == exp[1]


# ---- types ----

def test_types_inferred_over_whole_input():
    lines = ["i,f,s,b,d,ts"]
    for k in range(2000):
        lines.append(f"{k},{k}.5,s{k},{'true' if k % 2 else 'False'},"
                     f"2024-01-{k % 28 + 1:02d},2024-01-01T00:00:{k % 60:02d}")
    lines.append("2000,oops,x,true,2024-02-29,2024-01-01 10:11:12.5")
    data = ("\n".join(lines) + "\n").encode()
    t = mg.read_csv(data, chunk_size=1000, workers=3)
    assert t.schema == {"i": "int64", "f": "string", "s": "string",
                        "b": "bool", "d": "date32", "ts": "timestamp[us]"}
    assert t["i"].to_pylist() == list(range(2001))
    assert t["f"][0] == "0.5" and t["f"][2000] == "oops"
    assert t["b"][1] is True and t["b"][0] is False
    import datetime as dt
    assert t["d"][2000] == dt.date(2024, 2, 29)
    assert t["ts"][2000] == dt.datetime(2024, 1, 1, 10, 11, 12, 500000)


def test_int_widens_to_float_in_a_later_chunk():
    body = "".join(f"{k}\n" for k in range(5000)) + "1.25\n"
    t = mg.read_csv(("x\n" + body).encode(), chunk_size=512, workers=2)
    assert t.schema == {"x": "float64"}
    vals = t["x"].to_pylist()
    assert vals[:3] == [0.0, 1.0, 2.0] and vals[-1] == 1.25


@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_int_widens_to_float_with_nulls_in_one_chunk(chunk):
    """The values parsed while classifying (int64 first, converted to
    float64 in place when a float shows up) keep nulls as nulls/NaN."""
    t = mg.read_csv(b"x,y\n1,5\n,6\n3,\n2.5,7.5\n", chunk_size=chunk,
                    workers=2)
    assert t.schema == {"x": "float64", "y": "float64"}
    assert t.to_pydict() == {"x": [1.0, None, 3.0, 2.5],
                             "y": [5.0, 6.0, None, 7.5]}
    assert math.isnan(t["x"].values[1]) and math.isnan(t["y"].values[2])
    t = mg.read_csv(b"x\n1\n2\n", dtypes={"x": "f8"})
    assert t["x"].to_pylist() == [1.0, 2.0]


# Cells of every inferred type; a column mixes some of them, in any order,
# so a type changes inside a chunk or between chunks.
_KINDS = {
    "1": 1, "-7": -7, "2.5": 2.5, "true": True, "false": False,
    "2024-01-02": "d", "2024-01-02T03:04:05": "ts", "abc": "abc", "": None,
}


def _expected_column(cells):
    """The type read_csv must infer for the cells, and their values."""
    import datetime as dt
    vals = [c for c in cells if c != ""]

    def isint(c):
        return c.lstrip("-").isdigit()

    def isfloat(c):
        return isint(c) or c == "2.5"
    if not vals:
        return "string", [None if c == "" else c for c in cells]
    for name, test, conv in (
            ("int64", isint, int), ("float64", isfloat, float),
            ("bool", lambda c: c in ("true", "false"), lambda c: c == "true"),
            ("date32", lambda c: len(c) == 10 and c[4] == "-",
             dt.date.fromisoformat),
            ("timestamp[us]", lambda c: c[:4] == "2024",
             dt.datetime.fromisoformat),
            ("string", lambda c: True, str)):
        if all(test(c) for c in vals):
            return name, [None if c == "" else conv(c) for c in cells]


@SETTINGS
@given(st.lists(st.lists(st.sampled_from(sorted(_KINDS)), min_size=3,
                         max_size=3), min_size=1, max_size=30),
       st.integers(1, 4), st.sampled_from([1, 7, 40, 100000]))
def test_type_changes_inside_and_between_chunks(rows, workers, chunk):
    """A column's values follow its type as cells come (int64 widened to
    float64, dates to timestamps, else parsed again once the final type is
    known): every split gives the type and values the whole input has."""
    text = "a,b,c\n" + "".join(",".join(r) + "\n" for r in rows)
    t = mg.read_csv(text.encode(), workers=workers, chunk_size=chunk,
                    null_values=("",))
    for k, name in enumerate("abc"):
        typ, vals = _expected_column([r[k] for r in rows])
        assert t.schema[name] == typ
        assert t[name].to_pylist() == vals


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_n_rows_stops_reading_early(workers):
    """n_rows parses no further than the rows it keeps: a broken tail
    (an unterminated quote, a ragged row, a cell that would change the
    type) after them is never seen."""
    body = "".join(f"{k},{k * 2}\n" for k in range(200000))
    for tail in ('1,"never closed\n', "1,2,3\n", "x,y\n"):
        data = ("a,b\n" + body + tail).encode()
        t = mg.read_csv(data, n_rows=150000, workers=workers)
        assert t.num_rows == 150000
        assert t.schema == {"a": "int64", "b": "int64"}
        assert t["a"][149999] == 149999
        if tail == "x,y\n":
            assert mg.read_csv(data, workers=workers).schema["a"] == "string"
        else:
            with pytest.raises(mg.CSVError):
                mg.read_csv(data, workers=workers)


def test_n_rows_types_come_from_the_kept_rows():
    data = b"a\n1\n2\n3.5\nx\n"
    for chunk in (1, 3, 100):
        for workers in (1, 2):
            t = mg.read_csv(data, n_rows=2, chunk_size=chunk,
                            workers=workers)
            assert t.to_pydict() == {"a": [1, 2]}
            t = mg.read_csv(data, n_rows=3, chunk_size=chunk,
                            workers=workers)
            assert t.to_pydict() == {"a": [1.0, 2.0, 3.5]}


@pytest.mark.parametrize("workers", [1, 2])
def test_file_pages_dropped_after_parsing_are_read_again(tmp_path, workers):
    """A mapped file's parsed pages are dropped from the process; parsing
    a column again (its type changed late) and naming a bad line read
    them back from the file."""
    body = "".join(f"{k},{k % 7}\n" for k in range(100000))
    p = tmp_path / "late.csv"
    p.write_bytes(("a,b\n" + body + "x,1\n").encode())
    t = mg.read_csv(p, workers=workers, chunk_size=50000)
    assert t.schema == {"a": "string", "b": "int64"}
    assert t["a"][99999] == "99999" and t["a"][100000] == "x"
    assert t["b"].to_pylist()[:8] == [0, 1, 2, 3, 4, 5, 6, 0]
    p.write_bytes(("a,b\n" + body + "1,2,3\n").encode())
    e = _err(p, workers=workers, chunk_size=50000)
    assert (e.line, e.column) == (100002, 3)


def test_first_error_in_input_order_whatever_the_split():
    """A cell that misses its forced type before a ragged row is the error
    reported, for every chunk size (the split never decides which error a
    read reports)."""
    data = b"a,b\n1,2\n3,4\nx,5\n6,7\n8,9\n1,2,3\n"
    for chunk in range(1, len(data) + 1, 3):
        for workers in (1, 3):
            e = _err(data, dtypes={"a": "i8"}, chunk_size=chunk,
                     workers=workers)
            assert (e.line, e.column) == (4, 1), (chunk, workers)
            assert "forced type" in str(e)
    e = _err(data, chunk_size=4, workers=2)
    assert (e.line, e.column) == (7, 3)


def test_int64_overflow_becomes_float_not_wrapped():
    t = mg.read_csv(b"x\n9223372036854775807\n9223372036854775808\n")
    assert t.schema["x"] == "float64"
    t = mg.read_csv(b"x\n9223372036854775807\n-9223372036854775808\n")
    assert t["x"].to_pylist() == [2**63 - 1, -2**63]


@pytest.mark.parametrize("text", [
    "0.1", "1e23", "2.2250738585072011e-308", "4.9e-324", "1.7976931348623157e308",
    "123456789012345678901234567890", "0.30000000000000004", "-0.0", "1e400",
    "9007199254740993", "3.14159265358979323846264338327950288", ".5", "5.",
    "1E-5", "+7.25", "inf", "-Infinity", "nan"])
def test_floats_round_trip_exactly(text):
    t = mg.read_csv(f"x\n{text}\n1.5\n".encode())
    got = t["x"][0]
    want = float(text)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == want and math.copysign(1, got) == math.copysign(1, want)


@SETTINGS
@given(st.floats(allow_nan=False))
def test_random_floats_round_trip(x):
    t = mg.read_csv(f"x\n{x!r}\n{x:.17g}\n0.5\n".encode())
    assert t["x"][0] == x and t["x"][1] == x


def test_forced_dtypes():
    t = mg.read_csv(b"a,b,c\n1,2,3\n4,5,6\n", dtypes={"a": "f8", "b": "str"})
    assert t.schema == {"a": "float64", "b": "string", "c": "int64"}
    assert t["a"].to_pylist() == [1.0, 4.0] and t["b"].to_pylist() == ["2", "5"]


# ---- nulls ----

def test_nulls_and_validity():
    t = mg.read_csv(b"a,b,c\n1,,x\n,2.5,\nNA,3,y\n", null_values=("", "NA"))
    assert t.to_pydict() == {"a": [1, None, None], "b": [None, 2.5, 3.0],
                             "c": ["x", None, "y"]}
    assert t["a"].null_count == 2
    assert math.isnan(t["b"].values[0])
    t = mg.read_csv(b"a\n\"\"\nx\n", null_values=())
    assert t["a"].to_pylist() == ["", "x"]


def test_all_null_column_is_string():
    t = mg.read_csv(b"a,b\n1,\n2,\n")
    assert t.schema == {"a": "int64", "b": "string"}
    assert t["b"].to_pylist() == [None, None]


# ---- dialect ----

def test_bom_blank_lines_comments_cr_only():
    data = b"\xef\xbb\xbfa,b\r\r\n# note, \"x\n1,2\r\r3,4"
    t = mg.read_csv(data, comment="#")
    assert t.to_pydict() == {"a": [1, 3], "b": [2, 4]}


def test_header_names_skip_rows_footer_n_rows():
    data = b"junk\nh1,h2\n1,2\n3,4\n5,6\ntotal,x\n"
    t = mg.read_csv(data, skip_rows=1, skip_footer=1)
    assert t.column_names == ["h1", "h2"]
    assert t.to_pydict() == {"h1": [1, 3, 5], "h2": [2, 4, 6]}
    t = mg.read_csv(data, header=1, names=["x", "y"], n_rows=2)
    assert t.to_pydict() == {"x": [1, 3], "y": [2, 4]}
    t = mg.read_csv(b"1,2\n3,4\n", header=None)
    assert t.column_names == ["column_0", "column_1"]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk", [None, 3])
def test_invalid_utf8_in_a_dropped_footer_is_not_an_error(workers, chunk):
    # The UTF-8 check runs when a chunk is parsed; the chunk cut short to
    # drop the footer is checked again over the rows it keeps.
    data = b"a,b\nx,1\ny,2\n\xff,3\n"
    t = mg.read_csv(data, skip_footer=1, workers=workers, chunk_size=chunk)
    assert t.to_pydict() == {"a": ["x", "y"], "b": [1, 2]}
    with pytest.raises(mg.CSVError, match="invalid UTF-8") as e:
        mg.read_csv(data, workers=workers, chunk_size=chunk)
    assert e.value.line == 4
    t = mg.read_csv(data, n_rows=2, workers=workers, chunk_size=chunk)
    assert t.to_pydict() == {"a": ["x", "y"], "b": [1, 2]}


def test_columns_selection_by_name_and_index():
    t = mg.read_csv(b"a,b,c\n1,x,2.5\n", columns=["c", 0])
    assert t.column_names == ["c", "a"]
    assert t.to_pylist() == [{"c": 2.5, "a": 1}]


@pytest.mark.parametrize("enc", ["latin-1", "utf-16", "ascii", "utf-8-sig"])
def test_encodings(enc):
    text = "name,v\ncaf\u00e9,1\n" if enc != "ascii" else "name,v\ncafe,1\n"
    t = mg.read_csv(text.encode(enc), encoding=enc)
    assert t.to_pydict() == {"name": [text.split("\n")[1].split(",")[0]],
                             "v": [1]}


def test_sources_paths_list_glob_fileobj(tmp_path):
    for i in range(3):
        (tmp_path / f"p{i}.csv").write_bytes(
            f"k,v\n{i},a{i}\n{i},b{i}\n".encode())
    files = sorted(str(p) for p in tmp_path.glob("*.csv"))
    t = mg.read_csv(str(tmp_path / "p*.csv"), workers=2)
    assert t["v"].to_pylist() == ["a0", "b0", "a1", "b1", "a2", "b2"]
    assert mg.read_csv(files[::-1])["k"].to_pylist() == [2, 2, 1, 1, 0, 0]
    with open(files[0], "rb") as f:
        assert mg.read_csv(f).num_rows == 2
    (tmp_path / "empty.csv").write_bytes(b"")
    assert mg.read_csv(str(tmp_path / "empty.csv")).num_rows == 0


# ---- errors: file, line, column ----

def _err(data, **kw):
    with pytest.raises(mg.CSVError) as ei:
        mg.read_csv(data, **kw)
    return ei.value


def test_ragged_row_names_line_and_column():
    e = _err(b'a,b\n1,2\n"multi\nline",3\n4,5,6\n', chunk_size=3, workers=2)
    assert (e.file, e.line, e.column) == ("<bytes>", 5, 3)
    assert "3 fields, expected 2" in str(e)


def test_ragged_rows_skip_and_warn():
    data = b"a,b\n1,2\n3\n4,5\n6,7,8\n"
    assert mg.read_csv(data, on_bad_lines="skip")["a"].to_pylist() == [1, 4]
    with pytest.warns(UserWarning, match="<bytes>:3: skipped 2 rows"):
        mg.read_csv(data, on_bad_lines="warn")


def test_unterminated_quote():
    e = _err(b'a,b\n1,2\n3,"open\n4,5\n')
    assert (e.line, e.column) == (3, 2) and "unterminated" in str(e)


def test_invalid_utf8(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes(b"a,b\n1,ok\n2,\xff\xfe\n")
    e = _err(str(p))
    assert (e.file, e.line, e.column, e.column_name) == (str(p), 3, 2, "b")
    e = _err(b"a\n\xe9\n", encoding="ascii")
    assert e.line == 2


def test_forced_type_mismatch_names_cell():
    rows = "".join(f"{k},{k}\n" for k in range(3000))
    e = _err(f"a,b\n{rows}3000,x1\n".encode(), dtypes={"b": "i8"},
             chunk_size=997, workers=3)
    assert (e.line, e.column, e.column_name) == (3002, 2, "b")
    assert "'x1'" in str(e) and "int64" in str(e)


def test_bad_options():
    with pytest.raises(ValueError):
        mg.read_csv(b"a\n", delimiter='"')
    with pytest.raises(ValueError):
        mg.read_csv(b"a\n", dtypes="complex")
    with pytest.raises(KeyError):
        mg.read_csv(b"a\n1\n", columns=["zz"])
    with pytest.raises(FileNotFoundError):
        mg.read_csv("a\n1\n")  # a str is a path, never CSV text
    with pytest.raises(TypeError):
        mg.read_csv(io.StringIO("a\n1\n"))  # text files are refused


# ---- regressions found by tests/fuzz/fuzz_csv.c ----

def test_error_after_skipped_row_names_the_right_line():
    """A cell error's row is found again by index; rows skipped before it
    (on_bad_lines='skip') must not shift it (fuzz: regress_skipped_row_pos)."""
    data = b"a\n13\nb2,,\n4\xff\n"
    for chunk in (1, 3, 100):
        e = _err(data, on_bad_lines="skip", chunk_size=chunk)
        assert e.line == 4, chunk


def test_utf8_character_cut_between_cells_is_invalid():
    """Each cell must be valid UTF-8 on its own, even when the bytes of
    two cells together are (fuzz: regress_utf8_cut_between_cells)."""
    e = _err(b"a\n\xc3\n\xa9\n")
    assert (e.line, e.column) == (2, 1)


@pytest.mark.parametrize("prefix", [0, 63, 64, 65, 200])
def test_utf8_checked_past_long_ascii_runs(prefix):
    """The UTF-8 check skips ASCII 64 bytes at a time and skips the check
    for cut characters when a column is all ASCII: a bad byte or a cut
    character after any run of ASCII is still found, and good multi-byte
    text still reads."""
    pad = "x" * prefix
    e = _err(f"a\n{pad}\n".encode() + pad.encode() + b"\xff\n")
    assert (e.line, e.column) == (3, 1)
    e = _err(f"a\n{pad}\n".encode() + b"\xc3\n\xa9" + pad.encode() + b"\n")
    assert (e.line, e.column) == (3, 1)
    good = f"{pad}\u00e9{pad}"
    t = mg.read_csv(f"a\n{good}\n{pad}\n".encode())
    assert t["a"].to_pylist() == [good] + ([pad] if pad else [])


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_negative_zero_int_widened_to_float_keeps_its_sign(chunk):
    """An int column widened to float converts the parsed int64, which
    has no -0: "-0" must still become -0.0 like float("-0") (fuzz:
    regress_negative_zero_int_widened)."""
    t = mg.read_csv(b"x\n-0\n1.5\n-0\n", chunk_size=chunk, workers=2)
    vals = t["x"].to_pylist()
    assert vals == [0.0, 1.5, 0.0]
    assert [math.copysign(1, v) for v in vals] == [-1, 1, -1]


def test_given_names_replace_a_header_that_is_not_utf8():
    t = mg.read_csv(b"\xff,b\n1,2\n", names=["x", "y"])
    assert t.to_pydict() == {"x": [1], "y": [2]}
