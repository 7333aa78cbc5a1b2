"""C kernels (src/py/kernels.c, src/base/kern_*.c) against the stdlib (math.fsum, statistics) on
the same data, plus the documented overflow / zero-division / NaN / empty
rules."""
import math
import statistics
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multigil import SharedArray, _core, kernels

INT_DTYPES = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]
FLOATS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def f32(x):
    """x rounded to float32."""
    return struct.unpack("f", struct.pack("f", x))[0]


def arr(values, dtype="f8"):
    return SharedArray.from_iterable(values, dtype)


# ---- reductions vs the stdlib ----

@settings(max_examples=100, deadline=None)
@given(st.lists(FLOATS, max_size=200), st.integers(1, 4))
def test_sum_mean_var_match_stdlib(values, step):
    a = arr(values)[::step]
    xs = values[::step]
    assert math.isclose(kernels.sum(a), math.fsum(xs), rel_tol=1e-12,
                        abs_tol=1e-6)
    if xs:
        assert math.isclose(a.mean(), statistics.fmean(xs), rel_tol=1e-12,
                            abs_tol=1e-9)
        assert a.min() == min(xs) and a.max() == max(xs)
        assert a.argmin() == xs.index(min(xs))
        assert a.argmax() == xs.index(max(xs))
        assert math.isclose(a.var(), statistics.pvariance(xs), rel_tol=1e-9,
                            abs_tol=1e-6)
    if len(xs) > 1:
        assert math.isclose(a.std(ddof=1), statistics.stdev(xs),
                            rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-2**31, 2**31 - 1), max_size=100))
def test_int_reductions_are_exact(values):
    a = arr(values, "i8")
    assert kernels.sum(a) == sum(values)
    assert a.count_nonzero() == sum(1 for v in values if v)
    if values:
        assert a.mean() == sum(values) / len(values)  # correctly rounded
        assert (a.min(), a.max()) == (min(values), max(values))


@settings(max_examples=60, deadline=None)
@given(st.lists(FLOATS, min_size=1, max_size=300), st.integers(1, 7))
def test_combine_stats_equals_serial(values, k):
    a = arr(values)
    serial = kernels.stats(a)
    merged = kernels.combine_stats(kernels.stats(p) for p in a.split(k))
    assert merged.count == serial.count == len(values)
    assert math.isclose(merged.mean, serial.mean, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(merged.m2, serial.m2, rel_tol=1e-7, abs_tol=1e-6)
    assert (merged.min, merged.max) == (serial.min, serial.max)


def test_stats_fields_and_empty():
    s = kernels.stats(arr([1, 2, 3, 4], "i4"))
    assert s == (4, 2.5, 5.0, 1, 4)
    assert (s.count, s.mean, s.m2, s.min, s.max) == tuple(s)
    e = kernels.stats(arr([]))
    assert e.count == 0 and math.isnan(e.mean) and e.min is None
    assert kernels.combine_stats([e, s, e]) == s
    empty = kernels.combine_stats([])
    assert empty.count == 0 and math.isnan(empty.mean)
    with pytest.raises(TypeError, match="combine_stats"):
        kernels.combine_stats([(1, 2)])


def test_var_is_numerically_stable():
    # A large offset ruins the one-pass sum-of-squares formula.
    xs = [1e9 + v for v in (4.0, 7.0, 13.0, 16.0)]
    assert kernels.var(arr(xs), ddof=1) == pytest.approx(30.0, rel=1e-9)
    parts = [kernels.stats(p) for p in arr(xs * 1000).split(7)]
    m = kernels.combine_stats(parts)
    assert m.m2 / (m.count - 1) == pytest.approx(
        statistics.variance(xs * 1000), rel=1e-9)


def test_sum_of_large_f8_array_is_accurate():
    n = 1_000_003
    a = SharedArray(n)
    a.fill(0.1)
    assert kernels.sum(a) == pytest.approx(n * 0.1, rel=1e-10)
    assert kernels.sum(a[::7]) == pytest.approx(len(a[::7]) * 0.1, rel=1e-10)


@pytest.mark.parametrize("dtype", INT_DTYPES + ["f4", "b1"])
def test_reductions_every_dtype(dtype):
    vals = [1, 0, 1, 1] if dtype == "b1" else [3, 0, 7, 1]
    a = arr([bool(v) for v in vals] if dtype == "b1" else vals, dtype)
    assert kernels.sum(a) == sum(vals)
    assert kernels.count_nonzero(a) == 3
    assert kernels.argmax(a) == vals.index(max(vals))
    assert kernels.mean(a) == pytest.approx(statistics.fmean(vals))


# ---- documented edge rules ----

def test_empty_arrays():
    e = arr([])
    assert kernels.sum(e) == 0.0 and kernels.sum(arr([], "i4")) == 0
    for fn in (kernels.min, kernels.max, kernels.argmin, kernels.argmax,
               kernels.mean):
        with pytest.raises(ValueError, match="empty SharedArray"):
            fn(e)
    with pytest.raises(ValueError, match="ddof=1 needs more than 1 items"):
        kernels.var(arr([1.0]), ddof=1)
    with pytest.raises(ValueError, match="ddof must be >= 0"):
        kernels.std(arr([1.0]), ddof=-1)


def test_nan_rules():
    a = arr([3.0, float("nan"), 1.0, float("nan")])
    assert math.isnan(a.min()) and math.isnan(a.max())
    assert a.argmin() == 1 and a.argmax() == 1
    assert a.count_nonzero() == 4
    a.sort()
    assert a[:2].tolist() == [1.0, 3.0]
    assert all(math.isnan(x) for x in a[2:])


def test_int_sum_overflow_raises():
    a = arr([2**62, 2**62], "i8")
    with pytest.raises(OverflowError, match="sum\\(\\) of this 'i8' "
                                            "SharedArray does not fit"):
        kernels.sum(a)
    assert kernels.mean(a) == 2.0**62  # mean falls back to floats
    u = arr([2**63, 2**63 - 1], "u8")
    assert kernels.sum(u) == 2**64 - 1
    u[1] = 2**63
    with pytest.raises(OverflowError):
        u.sum()


def test_int_inplace_ops_wrap_around():
    a = arr([127, -128, 100], "i1")
    a += 1
    assert a.tolist() == [-128, -127, 101]
    a *= 3
    assert a.tolist() == [-128, -125, 47]  # -127 * 3 = -381 wraps
    u = arr([0, 255], "u1")
    u -= 1
    assert u.tolist() == [255, 254]
    with pytest.raises(OverflowError, match="does not fit in dtype 'i1'"):
        a += 1000  # the scalar itself must fit the dtype
    with pytest.raises(TypeError, match="cannot store float"):
        a += 1.5


@pytest.mark.parametrize("op", ["__iadd__", "__isub__", "__imul__",
                                "__itruediv__", "add", "sub", "mul", "div"])
@pytest.mark.parametrize("scalar", [1e300, -1e39, 2**200])
def test_f4_scalar_beyond_float32_raises_like_assignment(op, scalar):
    """Defect 13: `a += 1e300` on an f4 array cast the double to float
    (undefined in C) and stored inf, while `a[0] = 1e300` raised. The scalar
    now goes through the item rules: OverflowError, nothing changed."""
    a = arr([1.5, -2.0], "f4")
    with pytest.raises(OverflowError, match="does not fit in dtype 'f4'"):
        a[0] = scalar
    fn = getattr(a, op) if op.startswith("__") else getattr(kernels, op)
    with pytest.raises(OverflowError, match="does not fit in dtype 'f4'"):
        fn(scalar) if op.startswith("__") else fn(a, scalar)
    assert a.tolist() == [1.5, -2.0]
    with pytest.raises(OverflowError):
        a += 10**400  # too large even for a double


def test_f4_results_follow_ieee_float32():
    big = 3e38  # fits float32 (max about 3.4028e38)
    a = arr([big, -big, 1.0], "f4")
    a *= 2.0  # the products overflow float32: +-inf, as float32 math
    assert a.tolist() == [math.inf, -math.inf, 2.0]
    b = arr([1.0, 0.0], "f4")
    b /= 1e-45  # rounds to the smallest float32 subnormal, then divides
    assert b.tolist() == [math.inf, 0.0]
    c = arr([1.0], "f4")
    c += math.inf  # inf and nan are in range
    c -= math.inf
    assert math.isnan(c[0])
    d = arr([1.0], "f4")
    d += 0.1  # float32 math: the scalar rounds to float32 first
    assert d[0] == f32(1.0 + f32(0.1))


def test_int_inplace_scalars_out_of_range_raise():
    for dtype, bad in [("u1", -1), ("u1", 256), ("i2", 2**15), ("u8", 2**64),
                       ("i8", -2**63 - 1), ("u4", -2**70)]:
        a = arr([1, 2], dtype)
        for op in (kernels.add, kernels.sub, kernels.mul, kernels.div):
            with pytest.raises(OverflowError, match=f"dtype '{dtype}'"):
                op(a, bad)
        assert a.tolist() == [1, 2]


def test_int_division_is_floor_and_checks_zero():
    a = arr([7, -7, 6, -128], "i1")
    a //= 2
    assert a.tolist() == [3, -4, 3, -64]
    b = arr([-128], "i1")
    kernels.div(b, -1)
    assert b.tolist() == [-128]  # wraps, like the other integer ops
    with pytest.raises(ZeroDivisionError, match="nothing was changed"):
        kernels.div(a, 0)
    d = arr([1, 0, 1, 1], "i1")
    with pytest.raises(ZeroDivisionError):
        a //= d
    assert a.tolist() == [3, -4, 3, -64]
    with pytest.raises(TypeError, match="//="):
        a /= 2


def test_float_division_is_ieee():
    a = arr([1.0, -1.0, 0.0])
    a /= 0
    assert a[0] == math.inf and a[1] == -math.inf and math.isnan(a[2])
    with pytest.raises(TypeError, match="/="):
        arr([1.0]).__ifloordiv__(2)


def test_array_operands():
    a = arr([1.0, 2.0, 3.0])
    b = arr([10.0, 20.0, 30.0])
    kernels.add(a, b)
    assert a.tolist() == [11.0, 22.0, 33.0]
    a -= b
    a *= a
    assert a.tolist() == [1.0, 4.0, 9.0]
    a[1:] += a[:2]  # overlapping views behave as if the source was copied
    assert a.tolist() == [1.0, 5.0, 13.0]
    with pytest.raises(ValueError, match="lengths 3 and 2 differ"):
        a += a[:2]
    with pytest.raises(TypeError, match="dtypes 'f8' and 'i4' differ"):
        a += arr([1, 2, 3], "i4")
    with pytest.raises(TypeError, match="bool"):
        kernels.add(arr([True], "b1"), 1)


def test_fill_and_sort_on_views():
    a = SharedArray(9, "i4")
    a[::3].fill(5)
    assert a.tolist() == [5, 0, 0, 5, 0, 0, 5, 0, 0]
    a[:] = [9, 1, 8, 2, 7, 3, 6, 4, 5]
    v = a[::2]
    kernels.sort(v)
    assert v.tolist() == [5, 6, 7, 8, 9]
    assert a.tolist() == [5, 1, 6, 2, 7, 3, 8, 4, 9]
    a[::-1].sort()
    assert a.tolist() == sorted(a.tolist(), reverse=True)
    with pytest.raises(OverflowError):
        a.fill(2**40)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=True), max_size=50))
def test_sort_matches_sorted_with_nans_last(values):
    a = arr(values)
    a.sort()
    finite = sorted(v for v in values if not math.isnan(v))
    out = a.tolist()
    assert out[:len(finite)] == finite
    assert all(math.isnan(v) for v in out[len(finite):])


def test_kernels_reject_other_types():
    with pytest.raises(TypeError, match="sum\\(\\) argument must be a "
                                        "multigil.SharedArray, not list"):
        kernels.sum([1, 2])


def test_kernels_release_the_gil_and_stay_correct_under_threads():
    import threading
    a = SharedArray(1_000_000)
    a.fill(1.0)
    results = []
    threads = [threading.Thread(target=lambda: results.append(a.sum()))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1_000_000.0] * 4


def test_bench_helpers():
    from multigil import _core
    a = SharedArray(100_001)
    a.fill(2.0)
    b = SharedArray(100_001)
    _core._memcpy_bench(b, a)
    assert b == a
    assert _core._threads_sum_bench(a, 2) == 200_002.0
    _core._threads_normalize_bench(a, 2, 1.0, 0.5)
    assert a.min() == a.max() == 2.0
    with pytest.raises(ValueError, match="contiguous 'f8'"):
        _core._threads_sum_bench(a[::2], 2)


def test_stats_from_workers_combine():
    import helpers_shared as h
    import multigil
    chunks = [[1.0, 2.0], [], [3.0, 4.0, 5.0]]
    with multigil.Pool(2) as pool:
        parts = list(pool.map(h.stats_in_worker, chunks))
    assert all(isinstance(p, kernels.Stats) for p in parts)
    merged = kernels.combine_stats(parts)
    assert merged == (5, 3.0, 10.0, 1.0, 5.0)


def test_stats_with_nan_and_inf():
    nan, inf = float("nan"), float("inf")
    s = kernels.stats(arr([1.0, nan, 3.0, nan]))
    assert s.count == 4 and math.isnan(s.mean) and math.isnan(s.min)
    s = kernels.stats(arr([inf, 1.0, -inf]))
    assert math.isnan(s.mean) and (s.min, s.max) == (-inf, inf)
    s = kernels.stats(arr([2.0, 5.0, -1.0, 5.0, -1.0], "f4"))
    assert (s.min, s.max) == (-1.0, 5.0)
    assert s.mean == pytest.approx(2.0) and s.m2 == pytest.approx(36.0)


@pytest.mark.parametrize("dtype", ["i8", "u1", "f4", "f8", "b1"])
@pytest.mark.parametrize("pattern", ["ascending", "descending", "equal",
                                     "organ", "sawtooth"])
def test_sort_patterns(dtype, pattern):
    n = 5000
    values = {
        "ascending": list(range(n)),
        "descending": list(range(n, 0, -1)),
        "equal": [3] * n,
        "organ": list(range(n // 2)) + list(range(n // 2, 0, -1)),
        "sawtooth": [i % 7 for i in range(n)],
    }[pattern]
    if dtype == "b1":
        values = [v % 2 == 1 for v in values]
    elif dtype == "u1":
        values = [v % 256 for v in values]
    a = arr(values, dtype)
    a.sort()
    assert a.tolist() == sorted(arr(values, dtype).tolist())


# ---- a dtype the dispatch does not know ----

@pytest.mark.skipif(not hasattr(_core, "_shared_forge_dtype"),
                    reason="needs the test hooks of src/py/sharedtest.c "
                           "(make test builds with -DMG_TEST_HOOKS)")
def test_unknown_dtype_never_runs_another_dtypes_loop():
    """Defect 13: the dtype dispatch ran the f8 loops for any code it did
    not list. Every kernel and item conversion must refuse instead."""
    a = arr([1.0, 2.0, 3.0, 4.0])
    x = _core._shared_forge_dtype(a)
    calls = [kernels.sum, kernels.min, kernels.max, kernels.argmin,
             kernels.argmax, kernels.mean, kernels.var, kernels.std,
             kernels.count_nonzero, kernels.stats, kernels.sort,
             lambda v: kernels.fill(v, 1.0), lambda v: kernels.add(v, 1.0),
             lambda v: kernels.mul(v, v), lambda v: v.__iadd__(2.0),
             lambda v: v.tolist(), lambda v: v[0],
             lambda v: v.__setitem__(0, 5.0)]
    for call in calls:
        with pytest.raises(TypeError, match="unsupported SharedArray dtype "
                                            "code 'x'"):
            call(x)
    assert a.tolist() == [1.0, 2.0, 3.0, 4.0]  # nothing was written
