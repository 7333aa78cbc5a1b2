"""SharedArray (src/py/sharedarray.c, items.c, shared.c): construction,
dtypes, views, item rules, freeze, buffer protocol, Arrow export, handles
and lifetime."""
import array
import hashlib
import copy
import gc
import os
import pickle
import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import multigil
import multigil as mg
from multigil import SharedArray, _core

# The test-only functions of src/py/sharedtest.c (_shared_describe,
# _shared_park, ...) exist only in a test build (make test / make asan,
# -DMG_TEST_HOOKS); a plain build or pip install leaves them out.
HOOKS = hasattr(_core, "_shared_park")
needs_hooks = pytest.mark.skipif(
    not HOOKS, reason="needs the test hooks of src/py/sharedtest.c: build "
                      "with `make test` (-DMG_TEST_HOOKS), not `make build`")

DTYPES = ["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"]
CODES = dict(zip(DTYPES, "?bhiqBHIQfd"))
LONG = dict(zip(DTYPES, ["bool", "int8", "int16", "int32", "int64", "uint8",
                         "uint16", "uint32", "uint64", "float32",
                         "float64"]))
SIZES = dict(zip(DTYPES, [1, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8]))


def sample(dtype, n=5):
    if dtype == "b1":
        return [i % 2 == 0 for i in range(n)]
    if dtype.startswith("f"):
        return [i * 1.5 - 2 for i in range(n)]
    if dtype.startswith("u"):
        return list(range(n))
    return [i - n // 2 for i in range(n)]


# ---- construction and dtypes ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_filled_and_attributes(dtype):
    a = SharedArray(7, dtype=dtype)
    assert len(a) == 7
    assert a.dtype == dtype
    assert a.itemsize == SIZES[dtype]
    assert a.nbytes == 7 * SIZES[dtype]
    assert a.readonly is False
    assert a.tolist() == [0] * 7
    assert all(type(x) is (bool if dtype == "b1" else
                           float if dtype[0] == "f" else int)
               for x in a)


def test_default_dtype_is_f8():
    a = SharedArray(3)
    assert a.dtype == "f8"
    assert a.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_spellings(dtype):
    assert SharedArray(1, CODES[dtype]).dtype == dtype
    assert SharedArray(1, LONG[dtype]).dtype == dtype


def test_l_codes_are_eight_bytes():
    assert SharedArray(1, "l").dtype == "i8"
    assert SharedArray(1, "L").dtype == "u8"


def test_bad_dtype_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown SharedArray dtype 'x9'.*"
                                         r"b1 i1 .* f8.*float64"):
        SharedArray(3, "x9")
    with pytest.raises(TypeError, match="dtype must be a str"):
        SharedArray(3, 8)


def test_bad_length():
    with pytest.raises(ValueError, match="length must be >= 0, not -1"):
        SharedArray(-1)
    with pytest.raises((OverflowError, MemoryError)):
        SharedArray(sys.maxsize // 2, "f8")
    assert len(SharedArray(0)) == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_iterable_roundtrip(dtype):
    values = sample(dtype, 9)
    a = SharedArray.from_iterable(iter(values), dtype)
    assert a.tolist() == values
    assert list(a) == values
    assert a == values


def test_from_buffer_infers_dtype():
    src = array.array("i", [1, -2, 3])
    a = SharedArray.from_buffer(src)
    assert a.dtype == "i4" and a.tolist() == [1, -2, 3]
    src[0] = 99  # a copy: the array does not follow
    assert a[0] == 1
    assert SharedArray.from_buffer(array.array("d", [0.5])).dtype == "f8"
    assert SharedArray.from_buffer(b"\x01\x02").tolist() == [1, 2]


def test_from_buffer_reinterprets_with_dtype():
    raw = struct.pack("<2d", 1.5, -2.0)
    assert SharedArray.from_buffer(raw, dtype="f8").tolist() == [1.5, -2.0]
    with pytest.raises(ValueError, match="not a whole number of 'f8' items"):
        SharedArray.from_buffer(b"abc", dtype="f8")


def test_from_buffer_strided_source():
    m = memoryview(array.array("h", range(10)))[::3]
    assert SharedArray.from_buffer(m).tolist() == [0, 3, 6, 9]


def test_from_buffer_unknown_format():
    with pytest.raises(ValueError, match="cannot infer a SharedArray dtype"):
        SharedArray.from_buffer(memoryview(b"abcd").cast("c"))


# ---- indexing, views, assignment ----

def test_index_and_negative_index():
    a = SharedArray.from_iterable(range(5), "i8")
    assert a[0] == 0 and a[-1] == 4 and a[-5] == 0
    with pytest.raises(IndexError, match="index 5 out of range for length 5"):
        a[5]
    with pytest.raises(IndexError, match="index -6 out of range"):
        a[-6]
    with pytest.raises(TypeError, match="indices must be integers or slices"):
        a["x"]


def test_slices_are_views():
    a = SharedArray.from_iterable(range(10), "i4")
    v = a[2:9:3]
    assert v.tolist() == [2, 5, 8]
    v[1] = 50
    assert a[5] == 50
    r = a[::-1]
    assert r.tolist() == list(reversed(a.tolist()))
    r[0] = -1
    assert a[9] == -1
    assert a[5:2].tolist() == []
    assert a[::-2][::-1].tolist() == a[1::2].tolist()


def test_view_keeps_block_alive():
    base = _core._live_blocks()
    a = SharedArray.from_iterable([1.0, 2.0, 3.0])
    v = a[1:]
    assert _core._live_blocks() == base + 1
    del a
    gc.collect()
    assert v.tolist() == [2.0, 3.0]
    del v
    assert _core._live_blocks() == base


@pytest.mark.parametrize("dtype,bad,exc", [
    ("i1", 128, OverflowError), ("i1", -129, OverflowError),
    ("u1", 256, OverflowError), ("u1", -1, OverflowError),
    ("i8", 2**63, OverflowError), ("u8", 2**64, OverflowError),
    ("b1", 2, OverflowError), ("f4", 1e300, OverflowError),
    ("i4", 1.5, TypeError), ("i4", "1", TypeError), ("f8", "1", TypeError),
    ("f8", 1j, TypeError), ("b1", 0.0, TypeError),
])
def test_item_assignment_checks(dtype, bad, exc):
    a = SharedArray(2, dtype)
    with pytest.raises(exc, match=f"dtype '{dtype}'"):
        a[0] = bad
    assert a[0] == 0


def test_item_assignment_limits():
    a = SharedArray(4, "i1")
    a[0], a[1] = 127, -128
    u = SharedArray(2, "u8")
    u[0] = 2**64 - 1
    assert a[:2].tolist() == [127, -128] and u[0] == 2**64 - 1
    f = SharedArray(1, "f4")
    f[0] = float("inf")
    assert f[0] == float("inf")
    with pytest.raises(IndexError):
        a[4] = 1
    with pytest.raises(TypeError, match="cannot delete"):
        del a[0]


def test_slice_assignment():
    a = SharedArray(6, "f8")
    a[::2] = [1, 2, 3]
    assert a.tolist() == [1, 0, 2, 0, 3, 0]
    a[1::2] = SharedArray.from_iterable([7, 8, 9], "f8")
    assert a.tolist() == [1, 7, 2, 8, 3, 9]
    a[:] = a[::-1]  # overlapping source
    assert a.tolist() == [9, 3, 8, 2, 7, 1]
    a[:3] = SharedArray.from_iterable([1, 1, 1], "i4")  # other dtype
    assert a[:3].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="cannot assign 2 values to a slice "
                                         "of length 3"):
        a[:3] = [1, 2]
    with pytest.raises(TypeError, match="cannot store str"):
        a[:2] = [1, "x"]
    assert a[:2].tolist() == [1, 1]  # unchanged after the failed assignment


def test_equality():
    a = SharedArray.from_iterable([1, 2, 3], "i4")
    assert a == [1, 2, 3] and a == (1, 2, 3)
    assert a != [1, 2] and a != [1, 2, 4]
    assert a == SharedArray.from_iterable([1, 2, 3], "i4")
    assert a == SharedArray.from_iterable([1, 2, 3], "f8")
    assert (a == "abc") is False
    nan = SharedArray.from_iterable([float("nan")])
    assert nan != nan  # NaN is never equal, as in IEEE
    with pytest.raises(TypeError, match="unhashable"):
        hash(a)


def test_split():
    a = SharedArray.from_iterable(range(10), "i8")
    parts = a.split(3)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sum((p.tolist() for p in parts), []) == a.tolist()
    parts[1][0] = -1
    assert a[4] == -1
    assert [len(p) for p in a.split(12)] == [1] * 10 + [0, 0]
    assert [p.tolist() for p in a[::-3].split(2)] == [[9, 6], [3, 0]]
    with pytest.raises(ValueError, match="k >= 1"):
        a.split(0)


def test_copy_is_independent():
    a = SharedArray.from_iterable([1.0, 2.0, 3.0])
    for b in (a.copy(), copy.copy(a), copy.deepcopy(a), a[::-1].copy()):
        b[0] = 42
        assert a.tolist() == [1.0, 2.0, 3.0]
    assert a[::-1].copy().tolist() == [3.0, 2.0, 1.0]


def test_pickle_is_refused_clearly():
    with pytest.raises(TypeError, match="cannot pickle a multigil.SharedArray"
                                        ".*handle"):
        pickle.dumps(SharedArray(3))


def test_repr():
    assert repr(SharedArray.from_iterable([1, 2], "i2")) == \
        "SharedArray([1, 2], dtype='i2')"
    long = repr(SharedArray(100))
    assert long == ("SharedArray([0.0, 0.0, 0.0, ..., 0.0, 0.0, 0.0], "
                    "dtype='f8', length=100)")
    a = SharedArray(1, "b1")
    a.freeze()
    assert repr(a) == "SharedArray([False], dtype='b1', readonly=True)"


# ---- freeze ----

def test_freeze_is_block_wide_and_final():
    a = SharedArray.from_iterable([1, 2, 3], "i4")
    v = a[1:]
    v.freeze()
    assert a.readonly and v.readonly and a[::2].readonly
    for write in (lambda: a.__setitem__(0, 5), lambda: a.__setitem__(
            slice(None), [0, 0, 0]), lambda: a.fill(0), lambda: a.sort(),
            lambda: mg.kernels.add(a, 1)):
        with pytest.raises(TypeError, match="SharedArray is read-only"):
            write()
    with pytest.raises(TypeError, match="read-only"):
        a += 1
    assert a.tolist() == [1, 2, 3]
    assert a.copy().readonly is False
    import io
    # readinto asks for PyBUF_WRITABLE; it turns our BufferError into a
    # TypeError
    with pytest.raises(TypeError, match="read-write"):
        io.BytesIO(b"x" * 12).readinto(a)
    assert memoryview(a).readonly


def test_freeze_refuses_while_a_memoryview_can_write():
    """Defect 8: a memoryview taken before freeze() kept writing into the
    frozen memory. Now freeze() raises BufferError (as bytearray refuses to
    resize) until the view is released."""
    a = SharedArray.from_iterable([1, 2, 3], "i4")
    m = memoryview(a)
    with pytest.raises(BufferError, match="cannot freeze a SharedArray while "
                                          "1 writable buffer export.*"
                                          "release them first"):
        a.freeze()
    assert not a.readonly
    m[0] = 5  # still allowed: the memory was not frozen
    m.release()
    a.freeze()
    assert a.readonly and a.tolist() == [5, 2, 3]
    later = memoryview(a)
    assert later.readonly  # exports taken after freeze are read-only
    with pytest.raises(TypeError, match="read-only"):
        later[0] = 9
    a.freeze()  # idempotent, and read-only exports do not block it
    assert a.tolist() == [5, 2, 3]


def test_freeze_counts_exports_of_every_view_of_the_block():
    a = SharedArray(8, "f8")
    with memoryview(a[::-2]) as m:  # an export of another view object
        for target in (a, a[1:], a.split(2)[1]):
            with pytest.raises(BufferError, match="writable buffer export"):
                target.freeze()
    with memoryview(a[:4]) as m1, memoryview(a[4:]) as m2:
        with pytest.raises(BufferError, match="2 writable buffer exports"):
            a.freeze()
        assert m1.nbytes == m2.nbytes == 32
    a[::3].freeze()  # all released: the block can be frozen from any view
    assert a.readonly


def test_export_count_stays_balanced():
    a = SharedArray(10, "i2")
    for _ in range(1000):
        bytes(a), memoryview(a[2:]).tolist(), array.array("h", a)
    with pytest.raises(BufferError, match="strided"):
        hashlib.sha1(a[::2])  # refused requests count nothing
    import io
    io.BytesIO(b"\x01" * 20).readinto(a)  # a PyBUF_WRITABLE request
    a.freeze()
    assert a.readonly and a[0] == 0x0101


def test_freeze_refuses_while_another_interpreter_holds_an_export():
    import helpers_shared as h
    a = SharedArray.from_iterable(range(10), "f8")
    with multigil.Pool(1) as pool:
        assert pool.submit(h.hold_export, a[2:5]).result(timeout=60) == 3
        with pytest.raises(BufferError, match="another interpreter"):
            a.freeze()
        assert pool.submit(h.write_through_export, 0, -1.0).result(
            timeout=60) is None
        assert a[2] == -1.0
        assert pool.submit(h.release_exports).result(timeout=60) == 1
        a.freeze()
        readonly, msg = pool.submit(h.hold_export_and_try_write, a).result(
            timeout=60)
    assert readonly is True and "read-only" in msg
    assert a[2] == -1.0


def test_arrow_export_does_not_block_freeze():
    """An exported ArrowArray's buffers are const (the C data interface
    forbids consumers to write), so it is not a writable export."""
    a = SharedArray.from_iterable([1.0, 2.0])
    schema, capsule = a.__arrow_c_array__()
    a.freeze()
    assert a.readonly
    del schema, capsule


@needs_hooks
def test_readonly_handle_refused_while_exports_exist():
    a = SharedArray(4)
    with memoryview(a):
        with pytest.raises(BufferError, match="writable buffer export"):
            _core._shared_from_desc(a, "d", 0, 4, 8, 1)
        assert not a.readonly


# ---- buffer protocol ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_memoryview_format_and_values(dtype):
    a = SharedArray.from_iterable(sample(dtype, 6), dtype)
    m = memoryview(a)
    assert m.format == CODES[dtype] and m.itemsize == SIZES[dtype]
    assert m.shape == (6,) and m.strides == (SIZES[dtype],)
    assert m.tolist() == a.tolist()
    assert not m.readonly


def test_memoryview_strided_and_negative():
    a = SharedArray.from_iterable(range(10), "i2")
    m = memoryview(a[8:1:-3])
    assert m.strides == (-6,) and m.tolist() == [8, 5, 2]
    m[0] = 100  # writes through to the shared memory
    assert a[8] == 100
    assert bytes(a[::5]) == struct.pack("=2h", 0, 5)


def test_memoryview_writes_and_array_copy():
    a = SharedArray(4, "f8")
    m = memoryview(a)
    m[2] = 2.5
    assert a[2] == 2.5
    assert array.array("d", a).tolist() == [0, 0, 2.5, 0]
    assert bytes(a) == struct.pack("=4d", 0, 0, 2.5, 0)


def test_contiguous_request_on_strided_view():
    v = SharedArray(10)[::2]
    with pytest.raises(BufferError, match="strided"):
        hashlib.sha1(v)  # a PyBUF_SIMPLE request needs contiguous memory
    assert len(bytes(v)) == 40  # bytes() copies through strides


def test_numpy_sees_the_same_memory():
    np = pytest.importorskip(
        "numpy", reason="numpy is optional; its zero-copy path is tested "
                        "where it is installed")
    a = SharedArray.from_iterable(range(6), "i8")
    x = np.asarray(a)
    assert x.dtype == np.int64 and x.tolist() == a.tolist()
    x[0] = 77
    assert a[0] == 77
    y = np.asarray(a[::-2])
    assert y.strides == (-16,) and y.tolist() == [5, 3, 1]
    assert np.shares_memory(x, y)
    with pytest.raises(BufferError, match="2 writable buffer exports"):
        a.freeze()  # x and y could still write to the frozen memory
    del x, y
    a.freeze()
    assert not np.asarray(a).flags.writeable
    for dtype in DTYPES:
        b = SharedArray.from_iterable(sample(dtype), dtype)
        assert np.asarray(b).tolist() == b.tolist()
    z = SharedArray.from_buffer(np.arange(6.0).reshape(2, 3))
    assert z.tolist() == [0, 1, 2, 3, 4, 5]


# ---- Arrow ----

def test_arrow_capsules_are_named():
    a = SharedArray(3)
    schema = a.__arrow_c_schema__()
    sc, ac = a.__arrow_c_array__()
    assert "arrow_schema" in repr(schema) and "arrow_schema" in repr(sc)
    assert "arrow_array" in repr(ac)
    base = _core._live_blocks()
    del sc, ac  # unconsumed capsules release their block reference
    assert _core._live_blocks() == base


@pytest.mark.parametrize("dtype", DTYPES)
def test_pyarrow_sees_the_data(dtype):
    pa = pytest.importorskip(
        "pyarrow", reason="pyarrow is optional; the Arrow export is tested "
                          "where it is installed")
    a = SharedArray.from_iterable(sample(dtype, 20), dtype)
    arr = pa.array(a)
    assert arr.to_pylist() == a.tolist()
    assert len(arr) == 20 and arr.null_count == 0
    schema, capsule = a.__arrow_c_array__()
    arr2 = pa.Array._import_from_c_capsule(schema, capsule)
    assert arr2.to_pylist() == a.tolist()
    assert pa.array(a[::-3]).to_pylist() == a[::-3].tolist()  # a copy


def test_pyarrow_zero_copy_and_lifetime():
    pa = pytest.importorskip("pyarrow", reason="pyarrow is optional")
    gc.collect()
    base = _core._live_blocks()
    a = SharedArray.from_iterable([1.0, 2.0, 3.0])
    arr = pa.array(a)
    a[1] = 20.0  # same memory: Arrow sees the write
    assert arr.to_pylist() == [1.0, 20.0, 3.0]
    del a
    gc.collect()
    assert _core._live_blocks() == base + 1  # Arrow keeps the block alive
    assert arr.to_pylist() == [1.0, 20.0, 3.0]
    del arr
    gc.collect()
    assert _core._live_blocks() == base


def test_polars_series():
    pl = pytest.importorskip(
        "polars", reason="polars is optional (and has no wheel for some "
                         "Pythons); it reads the Arrow PyCapsule interface")
    a = SharedArray.from_iterable([1, 2, 3], "i4")
    s = pl.Series(a)
    assert s.to_list() == [1, 2, 3]


# ---- handles (the codec's interface, shared.h) ----

def test_live_blocks_flat_after_many_arrays():
    base = _core._live_blocks()
    for _ in range(100_000):
        a = SharedArray(4)
        v = a[::2]
        del a, v
    assert _core._live_blocks() == base


def test_rss_flat_after_many_arrays():
    resource = pytest.importorskip("resource", reason="needs resource (unix)")
    for _ in range(2000):
        SharedArray(100_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(20_000):
        SharedArray(100_000)  # 800 kB each
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 50_000  # kB: far below the 16 GB allocated


def test_usable_inside_a_worker():
    import helpers_shared as h
    with multigil.Pool(2) as pool:
        total, mean, half, n, interp = pool.submit(h.sum_in_worker,
                                                   1000).result(timeout=60)
        assert interp != 0
        assert (total, mean, half, n) == (499500.0, 499.5, 249500.0, 500)
        values, stats, mv = pool.submit(h.kernels_in_worker).result(
            timeout=60)
        assert values == [-2, 1, 6, 8] == mv
        assert stats[0] == 4 and stats[3:] == (-2, 8)


def test_view_crosses_to_worker_without_copy():
    import helpers_shared as h
    a = SharedArray.from_iterable(range(100), "f8")
    with multigil.Pool(2) as pool:
        assert pool.submit(h.length_of, a[::3]).result(timeout=60) == 34
        st = pool.submit(h.stats_of, a[10:20]).result(timeout=60)
        assert st[0] == 10 and st[1] == 14.5


def test_lifetime_stress_across_interpreters():
    import helpers_shared as h
    base = _core._live_blocks()
    with multigil.Pool(2) as pool:
        for round_ in range(20):
            a = SharedArray(10_000)
            a.fill(1.0)
            futs = [pool.submit(h.hold_and_drop, v, 5) for v in a.split(4)]
            del a  # the main interpreter drops its reference first
            assert sum(f.result(timeout=60) for f in futs) == 5 * 10_000
    gc.collect()
    assert _core._live_blocks() == base


@needs_hooks
def test_handle_roundtrip_in_one_interpreter():
    a = SharedArray.from_iterable(range(20), "i2")
    v = a[17:2:-3]
    desc = _core._shared_describe(v)
    assert desc == ("h", 34, 5, -6, 0)
    w = _core._shared_from_desc(a, *desc)
    assert w.tolist() == v.tolist() == [17, 14, 11, 8, 5]
    w[0] = -1
    assert a[17] == -1
    assert _core._shared_from_desc(a, "h", 40, 0, 2, 0).tolist() == []


@needs_hooks
@pytest.mark.parametrize("desc", [
    ("x", 0, 1, 2, 0),            # unknown dtype
    ("h", 1, 1, 2, 0),            # misaligned offset
    ("h", 0, 2, 3, 0),            # stride not a multiple of the item
    ("h", 0, 21, 2, 0),           # one item too many
    ("h", 38, 2, 2, 0),           # runs off the end
    ("h", 0, 2, -2, 0),           # runs off the start
    ("h", 42, 0, 2, 0),           # offset past the end
    ("h", -2, 1, 2, 0),           # negative offset
    ("h", 0, -1, 2, 0),           # negative length
    ("h", 0, 3, 0, 0),            # zero stride
    ("q", 0, 2**62, 8, 0),        # overflow of length * stride
    ("q", 8, 2, -(2**62), 0),     # overflow with a negative stride
])
def test_handle_validation_rejects_bad_descriptions(desc):
    a = SharedArray(20, "i2")  # 40 bytes
    with pytest.raises(ValueError, match="invalid SharedArray handle"):
        _core._shared_from_desc(a, *desc)


@needs_hooks
def test_handle_readonly_flag_freezes():
    a = SharedArray(4)
    v = _core._shared_from_desc(a, "d", 0, 4, 8, 1)
    assert v.readonly and a.readonly
    with pytest.raises(TypeError, match="not a SharedArray"):
        _core._shared_describe([1])


# ---- across interpreters with parked handles (no codec needed) ----

def _baseline():
    gc.collect()
    return _core._live_blocks()


@needs_hooks
def test_parked_views_stress_lifetime():
    import helpers_shared as h
    base = _baseline()
    with multigil.Pool(2) as pool:
        for _ in range(20):
            a = SharedArray(10_000)
            a.fill(1.0)
            ids = [_core._shared_park(v) for v in a.split(4)]
            del a  # the main interpreter drops its references first
            futs = [pool.submit(h.unpark_hold_and_drop, i, 5) for i in ids]
            assert sum(f.result(timeout=60) for f in futs) == 5 * 10_000
    assert _core._shared_parked() == 0
    assert _baseline() == base


@needs_hooks
def test_worker_writes_are_seen_without_copy():
    import helpers_shared as h
    a = SharedArray(1000)
    with multigil.Pool(2) as pool:
        futs = [pool.submit(h.unpark_and_fill, _core._shared_park(v), k)
                for k, v in enumerate(a.split(4))]
        results = [f.result(timeout=60) for f in futs]
    assert [n for n, _ in results] == [250] * 4
    assert all(interp != 0 for _, interp in results)
    assert [a[i] for i in (0, 250, 500, 999)] == [0.0, 1.0, 2.0, 3.0]


@needs_hooks
def test_array_made_in_worker_outlives_the_worker():
    import helpers_shared as h
    base = _baseline()
    with multigil.Pool(1) as pool:
        pid = pool.submit(h.park_new_array, 101, 7.0).result(timeout=60)
    # The worker interpreter is gone; the memory is not.
    v = _core._shared_unpark(pid)
    assert len(v) == 51 and v.sum() == 7.0 * 51
    with pytest.raises(KeyError, match="no SharedArray parked"):
        _core._shared_unpark(pid)
    del v
    assert _baseline() == base


@needs_hooks
def test_freeze_is_seen_by_other_interpreters():
    import helpers_shared as h
    a = SharedArray(10)
    pid = _core._shared_park(a[2:])
    a.freeze()
    with multigil.Pool(1) as pool:
        readonly, msg = pool.submit(h.unpark_and_try_write, pid).result(
            timeout=60)
    assert readonly is True and "read-only" in msg


def test_large_blocks_are_zeroed_and_returned():
    resource = pytest.importorskip("resource", reason="needs resource (unix)")
    base = _baseline()
    a = SharedArray(3_000_000)  # 24 MB: mmap'd
    assert a.sum() == 0.0 and a.count_nonzero() == 0
    v = a[::-1000]
    del a
    v.fill(2.0)
    assert v.sum() == 2.0 * len(v)
    del v
    assert _baseline() == base
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(20):
        b = SharedArray(2_000_000)
        b.fill(1.0)  # touch every page
        del b
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 100_000  # kB, vs 320 MB touched in total


# ---- views behave like list slices (property test) ----

SLICES = st.slices(40)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40), SLICES, SLICES, st.integers(-50, 50))
def test_views_of_views_match_list_slicing(n, s1, s2, i):
    ref = list(range(n))
    a = SharedArray.from_iterable(ref, "i4")
    v, r = a[s1][s2], ref[s1][s2]
    assert v.tolist() == r and len(v) == len(r)
    assert memoryview(v).tolist() == r
    assert bytes(v) == struct.pack(f"={len(r)}i", *r)
    if -len(r) <= i < len(r):
        assert v[i] == r[i]
        v[i] = -1  # writes land in the parent at the same place as in ref
        idx = list(range(n))[s1][s2][i]
        assert a[idx] == -1
    else:
        with pytest.raises(IndexError):
            v[i]


@needs_hooks
@settings(max_examples=100, deadline=None)
@given(st.integers(0, 40), SLICES, SLICES)
def test_handles_of_views_roundtrip(n, s1, s2):
    a = SharedArray.from_iterable(range(n), "i4")
    v = a[s1][s2]
    desc = _core._shared_describe(v)
    assert _core._shared_from_desc(a, *desc).tolist() == v.tolist()


def test_dumps_refuses_a_shared_array_clearly():
    a = mg.SharedArray(4)
    with pytest.raises(TypeError, match="SharedArray"):
        mg.dumps(a)
    with pytest.raises(TypeError, match="SharedArray"):
        mg.dumps([1, a])


# ---- the test hooks ship only in test builds ----

@pytest.mark.skipif(os.environ.get("MULTIGIL_TEST_HOOKS") != "1",
                    reason="only `make test` / `make asan` promise a build "
                           "with the hooks (they set MULTIGIL_TEST_HOOKS=1)")
def test_test_builds_have_the_hooks():
    assert HOOKS, "make test must build with -DMG_TEST_HOOKS: no test skips"


def _preprocess_sharedtest(*flags):
    import shutil
    import subprocess
    import sysconfig
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        pytest.skip(reason="needs a C compiler to preprocess "
                    "src/py/sharedtest.c")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [cc, "-E", *flags, "-I" + os.path.join(root, "src", "base"),
         "-I" + os.path.join(root, "src", "py"),
         "-I" + sysconfig.get_paths()["include"],
         os.path.join(root, "src", "py", "sharedtest.c")],
        capture_output=True, text=True, check=True)
    return out.stdout


def test_plain_builds_leave_the_hooks_out():
    """Defect 14: the test hooks shipped in every build. setup.py (pip
    install .) and the Makefile's default build do not define
    MG_TEST_HOOKS, and without it sharedtest.c registers nothing."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "setup.py")) as f:
        assert "MG_TEST_HOOKS" not in f.read()
    with open(os.path.join(root, "Makefile")) as f:
        assert "\nTEST_HOOKS ?= 0\n" in f.read()
    assert '"_shared_park"' not in _preprocess_sharedtest()
    assert '"_shared_park"' in _preprocess_sharedtest("-DMG_TEST_HOOKS")
