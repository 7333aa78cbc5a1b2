"""mg.Table: API, concat, Arrow stream export without copies, and
crossing to worker interpreters as handles."""
import ctypes
import datetime as dt

import pytest

import multigil as mg
from helpers_csv import table_summary

DATA = (b"n,f,s,b,d\n"
        b"1,0.5,x,true,2024-01-01\n"
        b"2,,\"y,1\",false,\n"
        b"3,2.5,,true,2024-03-01\n"
        b"4,3.5,zz\xc3\xa9,false,2024-04-01\n")


def addr(sa):
    return ctypes.addressof(ctypes.c_char.from_buffer(sa))


@pytest.fixture
def t():
    return mg.read_csv(DATA)


def test_basic_api(t):
    assert len(t) == t.num_rows == 4
    assert t.column_names == ["n", "f", "s", "b", "d"]
    assert t.schema == {"n": "int64", "f": "float64", "s": "string",
                        "b": "bool", "d": "date32"}
    assert t["s"].to_pylist() == ["x", "y,1", None, "zz\u00e9"]
    assert t["d"][1] is None and t["d"][0] == dt.date(2024, 1, 1)
    assert t["n"][-1] == 4
    with pytest.raises(KeyError):
        t["nope"]
    assert t.select(["s", "n"]).column_names == ["s", "n"]
    assert t.to_pylist()[1] == {"n": 2, "f": None, "s": "y,1", "b": False,
                                "d": None}


def test_slice_and_split_are_views(t):
    s = t.slice(1, 3)
    assert s.to_pydict()["s"] == ["y,1", None]
    assert s["f"].to_pylist() == [None, 2.5]
    assert addr(s["s"].data) == addr(t["s"].data)
    parts = t.split(3)
    assert [len(p) for p in parts] == [2, 1, 1]
    assert sum((p["n"].to_pylist() for p in parts), []) == [1, 2, 3, 4]
    assert mg.Table.concat(parts).to_pydict() == t.to_pydict()


def test_concat_unifies_types():
    a = mg.read_csv(b"x,y\n1,a\n")
    b = mg.read_csv(b"x,y\n2.5,\n")
    c = mg.read_csv(b"x,y\nfoo,c\n")
    assert mg.Table.concat([a, b]).to_pydict() == {"x": [1.0, 2.5],
                                                   "y": ["a", None]}
    assert mg.Table.concat([a, c])["x"].to_pylist() == ["1", "foo"]
    with pytest.raises(ValueError):
        mg.Table.concat([a, mg.read_csv(b"z\n1\n")])


def test_from_pydict_round_trip():
    d = {"a": [1, None, 3], "b": ["p", "q", None], "c": [0.5, 1.5, None]}
    assert mg.Table.from_pydict(d).to_pydict() == d


def test_pyarrow_takes_the_stream_without_copy(t):
    pa = pytest.importorskip("pyarrow", reason="needs pyarrow")
    at = pa.table(t)
    assert at.column("s").type == pa.large_string()
    assert at.to_pydict()["s"] == t["s"].to_pylist()
    assert at.to_pydict()["f"] == [0.5, None, 2.5, 3.5]
    assert at.column("d").to_pylist()[0] == dt.date(2024, 1, 1)
    n = at.column("n").chunks[0].buffers()
    assert n[1].address == addr(t["n"].values)
    s = at.column("s").chunks[0].buffers()
    assert s[1].address == addr(t["s"].values)
    assert s[2].address == addr(t["s"].data)
    assert s[0].address == addr(t["s"].validity)
    # The exported arrays keep the blocks alive after the Table is gone.
    del t
    assert at.column("s").to_pylist()[3] == "zz\u00e9"


def test_sliced_table_exports_offset(t):
    pa = pytest.importorskip("pyarrow", reason="needs pyarrow")
    at = pa.table(t.slice(1, 3))
    assert at.to_pydict()["s"] == ["y,1", None]
    assert at.to_pydict()["n"] == [2, 3]


def test_polars_and_pandas(t):
    pl = pytest.importorskip("polars", reason="needs polars")
    df = pl.DataFrame(t)
    assert df["s"].to_list() == t["s"].to_pylist()
    assert df["n"].to_list() == [1, 2, 3, 4]
    try:
        import pandas  # noqa: F401
    except ImportError:
        return  # pandas is optional (bench extra); polars checked above
    pdf = t.to_pandas()
    assert list(pdf["n"]) == [1, 2, 3, 4]


def test_table_crosses_to_a_worker_without_copy(t):
    with mg.Pool(2) as pool:
        futs = [pool.submit(table_summary, part) for part in t.split(2)]
        res = [f.result() for f in futs]
    assert all(r[0] != 0 for r in res)
    assert [r[1] for r in res] == [3, 7]
    assert res[0][2] + res[1][2] == t["s"].to_pylist()
    assert t["n"].to_pylist() == [-1, 2, -3, 4]  # written by the workers


def test_string_column_list_in_c_matches_items_and_checks_offsets():
    from multigil import _core
    t = mg.Table.from_pydict({"s": ["a", None, "ü€", "", "xyz"] * 3})
    col = t["s"]
    assert col.to_pylist() == ["a", None, "ü€", "", "xyz"] * 3
    part = col.slice(3, 12)            # an offset into offsets and bitmap
    assert part.to_pylist() == [part[i] for i in range(len(part))]
    bad = mg.SharedArray.from_iterable([0, 1, 99], dtype="i8")
    data = mg.SharedArray.from_iterable(b"ab", dtype="u1")
    with pytest.raises(ValueError, match="outside"):
        _core._string_column_list(bad, data, None, 0, 2)
    with pytest.raises(ValueError, match="out of range"):
        _core._string_column_list(bad, data, None, 1, 5)
    with pytest.raises(UnicodeDecodeError):
        _core._string_column_list(
            mg.SharedArray.from_iterable([0, 1], dtype="i8"),
            mg.SharedArray.from_iterable(b"\xff", dtype="u1"), None, 0, 1)
