"""Tests of the C codec (src/codec.c, src/codefn.c): values, functions,
limits, malformed input, and trips through a multigil.Pool worker."""
import collections
import fractions
import functools
import math
import os
import random
import struct
import subprocess
import sys
import textwrap
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import multigil as mg
from multigil import _core

import helpers_codec as H

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- exact comparison ----

def same(a, b):
    """True if a and b have the same exact types and values all the way
    down; floats compare by their bits (so -0.0 and NaN payloads count)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return struct.pack("<d", a) == struct.pack("<d", b)
    if type(a) is complex:
        return same(a.real, b.real) and same(a.imag, b.imag)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if type(a) is dict:
        return (list(a) == list(b)
                and all(same(k1, k2) for k1, k2 in zip(a, b))
                and all(same(a[k], b[k]) for k in a))
    return a == b


def roundtrip(v):
    return _core.loads(_core.dumps(v))


# ---- hypothesis: arbitrary nested values ----

scalars = (st.none() | st.booleans() | st.integers()
           | st.integers(min_value=-2**200, max_value=2**200)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.complex_numbers(allow_nan=True)
           | st.text() | st.binary() | st.binary().map(bytearray))
hashables = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.binary()
    | st.floats(allow_nan=False),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4),
    max_leaves=8)
values = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=6)
                   | st.lists(inner, max_size=6).map(tuple)
                   | st.dictionaries(hashables, inner, max_size=6)
                   | st.sets(hashables, max_size=6)
                   | st.frozensets(hashables, max_size=6)),
    max_leaves=30)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_hypothesis_roundtrip(v):
    assert same(roundtrip(v), v)
    assert same(_core._roundtrip(v), v)


# ---- per type ----

SAMPLES = [
    None, True, False, 0, 1, -1, 127, 128, -128, -129, 2**31 - 1, 2**31,
    -2**31, -2**31 - 1, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64,
    10**100, -10**100, 0.0, -0.0, 1.5, -2.25e-310, math.inf, -math.inf,
    math.nan, struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\x7f")[0],
    1e308, 5e-324, 0j, -0.0j, complex(math.nan, -0.0), 1 + 2j,
    "", "a", "ascii text", "latin-1 \xe9\xff", "\u0100\u20ac ucs2",
    "\U0001f600 astral", "\ud800 lone surrogate", "\x00nul", "x" * 10000,
    b"", b"\x00\xff" * 100, bytearray(), bytearray(b"abc"),
    (), (1,), (1, "a", None), [], [1, [2, [3, []]]],
    {}, {"a": 1, 2: "b", (3, 4): [5], None: None, b"k": 1.0},
    set(), {1, "a", (2, 3)}, frozenset(), frozenset({1, frozenset({2})}),
    [{"id": i, "name": f"n{i}", "v": i / 7, "ok": i % 2 == 0, "t": None}
     for i in range(50)],
]


@pytest.mark.parametrize("v", SAMPLES, ids=lambda v: type(v).__name__)
def test_sample_roundtrip(v):
    assert same(roundtrip(v), v)


def test_dict_order_kept():
    d = {k: k for k in ["z", "a", "m", 3, 1, 2]}
    assert list(roundtrip(d)) == list(d)


def test_big_ints():
    for sign in (1, -1):
        for digits in (19, 20, 40, 300, 10_000):
            v = sign * (10**digits // 9 * 7)
            assert same(roundtrip(v), v)
        for bits in (63, 64, 65, 127, 128, 129, 1000):
            for v in (2**bits - 1, 2**bits, 2**bits + 1):
                assert same(roundtrip(sign * v), sign * v)


def test_nan_payload_and_negative_zero():
    weird = struct.unpack("<d", b"\x05\x00\x00\x00\x00\x00\xf8\xff")[0]
    for v in (weird, -0.0, complex(-0.0, weird)):
        assert same(roundtrip(v), v)


def test_header_is_version_tagged():
    data = _core.dumps(1)
    assert data[:4] == b"MGC\x02"
    with pytest.raises(ValueError, match="format version 3"):
        _core.loads(b"MGC\x03" + data[4:])
    with pytest.raises(ValueError, match="bad magic"):
        _core.loads(b"XXXX" + data[4:])


def test_lazy_exports():
    assert mg.dumps is _core.dumps and mg.loads is _core.loads
    assert "not for long-term storage" in _core.dumps.__doc__.replace(
        "\n", " ").replace("NOT", "not")


# ---- subclasses keep their type ----

SUBCLASSED = [
    H.MyStr("abc"), H.MyInt(5), H.MyList([1, 2]), H.MyDict(a=1),
    collections.OrderedDict(a=1, b=2), collections.defaultdict(list, a=[1]),
    collections.Counter("aab"), H.Color.RED, fractions.Fraction(1, 3),
    H.Point(1, 2), range(5), slice(1, 2, 3),
]


@pytest.mark.parametrize("v", SUBCLASSED, ids=lambda v: type(v).__name__)
def test_subclasses_keep_their_type(v):
    r = roundtrip(v)
    assert type(r) is type(v)
    assert r == v


def test_bool_is_not_int():
    r = roundtrip([True, 1, False, 0])
    assert [type(x) for x in r] == [bool, int, bool, int]


def test_pickle_fallback_is_per_object():
    data = _core.dumps([1] * 1000 + [H.Point(1, 2)] + ["s"] * 10)
    assert data.count(b"\x80\x05") == 1   # one pickle, for the one Point
    assert len(data) < 3000
    r = _core.loads(data)
    assert r[:1000] == [1] * 1000 and r[1000] == H.Point(1, 2)


# ---- limits ----

def test_self_references_are_rebuilt():
    # Defect 12: a list that contains itself used to be refused; it is
    # rebuilt, as pickle does.
    a = []
    a.append(a)
    r = roundtrip(a)
    assert type(r) is list and len(r) == 1 and r[0] is r
    d = {}
    d["self"] = [1, (d,)]
    r = _core._roundtrip(d)
    assert r["self"][1][0] is r and r["self"][0] == 1


def test_cycle_through_a_tuple_is_refused():
    t = ([],)
    t[0].append(t)
    with pytest.raises(ValueError, match="cannot encode a tuple that "
                                         "contains itself"):
        _core.dumps(t)


def test_shared_references_keep_their_identity():
    x = [1, 2]
    s = {3}
    ba = bytearray(b"q")
    p = H.Point(1, 2)
    t = (4, "five")
    r = roundtrip([x, x, (x,), s, s, ba, ba, p, p, t, t, {"k": x}])
    assert r[0] == [1, 2] and r[0] is r[1] is r[2][0] is r[11]["k"]
    assert r[3] is r[4] and r[5] is r[6] and r[7] is r[8]
    assert r[9] is r[10] and r[9] == (4, "five")
    r = roundtrip([x, [1, 2]])
    assert r[0] == r[1] and r[0] is not r[1]


def test_doubly_shared_nesting_stays_small():
    # Defect 12: a = [a, a] nested 22 deep encoded to 16 MB, and 40 deep
    # never finished (with the GIL held).
    for wrap in (list, tuple):
        a = wrap()
        for _ in range(40):
            a = wrap((a, a))
        data = _core.dumps(a)
        assert len(data) < 40 * 8
        r = _core.loads(data)
        for _ in range(40):
            assert r[0] is r[1]
            r = r[0]
        assert r == wrap()


def varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7f) | (0x80 if n > 0x7f else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_malformed_back_references_are_refused():
    head = _core.dumps(None)[:4]
    for body, match in [
        (b"G\x00", "back-reference to value 0, but only 0"),
        (b"l\x02NG\x05", "back-reference to value 5, but only 1"),
        (b"t\x01G\x00", "a tuple, frozenset or pickle not decoded yet"),
        (b"Z\x01G\x00", "not decoded yet"),
        (b"l\x01G\x80", "truncated"),
        (b"S\x01G\x00", "dict key or set item is a set"),
    ]:
        with pytest.raises(ValueError, match=match):
            _core.loads(head + body)


def test_keys_too_costly_to_hash_are_refused():
    # 61 tuples, each holding the previous one twice: hashing the last
    # would visit 2**61 nodes. It may be built, not used as a key.
    head = _core.dumps(None)[:4]
    chain = b"t\x00" + b"".join(b"t\x02" + (b"G" + varint(k)) * 2
                                for k in range(1, 61))
    data = head + b"l" + varint(62) + chain
    built = _core.loads(data + b"N")
    assert built[60][0] is built[60][1] is built[59]
    with pytest.raises(ValueError, match="steps to hash"):
        _core.loads(data + b"d\x01G" + varint(61) + b"N")
    with pytest.raises(ValueError, match="steps to hash"):
        _core.loads(data + b"S\x01G" + varint(61))
    t = ()
    for _ in range(18):          # legitimately shared keys still load
        t = (t, t)
    assert roundtrip({t: 1, (t, 2): 3}) == {t: 1, (t, 2): 3}


def nest(depth):
    v = 0
    for _ in range(depth):
        v = [v]
    return v


def test_depth_limit():
    assert roundtrip(nest(1000)) == nest(1000)
    with pytest.raises(ValueError, match="deeper than 1000"):
        _core.dumps(nest(1001))
    with pytest.raises(ValueError, match="deeper than 1000"):
        _core.dumps(nest(100_000))


def test_deep_input_refused_by_decoder():
    data = b"MGC\x02" + b"l\x01" * 5000 + b"N"
    with pytest.raises(ValueError, match="nested deeper"):
        _core.loads(data)


# ---- malformed input ----

ENCODINGS = [
    [1, -200, 2**40, 2**100, 1.5, 1j, "a", "\xe9", "\u20ac", "\U0001f600"],
    {"a": b"xyz", "b": bytearray(b"q"), "c": (None, True, False)},
    {1, 2, 3}, frozenset({"x"}), H.Point(3, 4), [H.identity, len],
    lambda x: x + 1, H.make_closure(3), H.partial_add,
]


@pytest.mark.parametrize("v", ENCODINGS, ids=lambda v: type(v).__name__)
def test_every_truncation_is_a_value_error(v):
    data = _core.dumps(v)
    for n in range(len(data)):
        with pytest.raises(ValueError):
            _core.loads(data[:n])


def test_trailing_bytes_refused():
    with pytest.raises(ValueError, match="left over"):
        _core.loads(_core.dumps(1) + b"N")


@pytest.mark.parametrize("v", ENCODINGS, ids=lambda v: type(v).__name__)
def test_random_byte_flips_never_crash(v):
    data = _core.dumps(v)
    rng = random.Random(1234)
    for _ in range(300):
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(4, len(b))] = rng.randrange(256)
        try:
            _core.loads(bytes(b))
        except ValueError:
            pass


@pytest.mark.parametrize("data, match", [
    (b"", "shorter than the header"),
    (b"MGC\x02", "value is missing"),
    (b"MGC\x02?", "unknown tag"),
    (b"MGC\x02l\xff\xff\xff\xff\x0f", "claims 4294967295 elements"),
    (b"MGC\x02a\x05ab", "claims 5 elements"),
    (b"MGC\x02W\x01\x00\x00\x11\x00", "code point"),
    (b"MGC\x02d\x01l\x00N", "dict key or set item is a list"),
    (b"MGC\x02\x42\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
     "overflows 64 bits"),
    (b"MGC\x02H\x01\x00\x1a" + bytes(26),
     "block handle 0, but the message carries 0 handles"),
    (b"MGC\x02H\x09\x00\x00", "handle of unknown kind 9"),
    (b"MGC\x02H\x01\x00\x1a" + bytes(3), "claims 26 elements"),
    (b"MGC\x02r\x00", "unknown function"),
])
def test_corrupt_messages(data, match):
    with pytest.raises(ValueError, match=match):
        _core.loads(data)


def test_signed_records_from_another_process_are_refused():
    code = ("import sys; sys.path[:0] = [%r, %r]; "
            "from multigil import _core; import helpers_codec as H; "
            "print(_core.dumps(lambda: 1).hex()); "
            "print(_core.dumps(H.Point(1, 2)).hex()); "
            "print(_core.dumps([1, 'a']).hex()); import os; "
            "print(_core.dumps(os.path.join).hex()); "
            "print(_core.dumps(os).hex())"
            % (ROOT, os.path.join(ROOT, "tests")))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    fn, point, plain, fnref, module = (bytes.fromhex(x) for x in out)
    for data, what in [(fn, "function code"), (point, "pickled value"),
                       (fnref, "function reference"),
                       (module, "module reference")]:
        with pytest.raises(ValueError, match=what + " fails its integrity "
                                                    "check"):
            _core.loads(data)
    assert _core.loads(_core.dumps(os.path.join)) is os.path.join
    assert _core.loads(plain) == [1, "a"]   # plain values carry no MAC


def test_loads_of_foreign_bytes_never_imports_or_fetches():
    # Defect 11: function references and module records carried no MAC,
    # so a 20-byte message imported any module or returned os.system.
    head = _core.dumps(None)[:4]
    name = lambda s: bytes([len(s)]) + s.encode()   # noqa: E731
    names = name("os") + name("system")
    # As format 1 had them (no MAC), and as format 2 has them with a
    # forged MAC.
    signed = bytes([len(names)]) + names + bytes(8)
    fnref1 = head + b"R" + struct.pack("<I", len(names)) + names
    fnref2 = head + b"R" + struct.pack("<I", len(signed)) + signed
    module1 = head + b"M" + b"a" + name("this")
    module2 = head + b"M" + bytes([5]) + name("this") + bytes(8)
    code = ("import sys; sys.path[:0] = [%r]; from multigil import _core\n"
            "for data in %r:\n"
            "    try:\n"
            "        print('LOADED', _core.loads(data))\n"
            "    except ValueError as e:\n"
            "        print('REFUSED', e)\n"
            "print('this' in sys.modules)\n"
            % (ROOT, [fnref1, fnref2, module1, module2]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=60).stdout
    assert "LOADED" not in out and "Zen of Python" not in out, out
    assert out.count("REFUSED corrupt multigil message") == 4, out
    assert "function reference fails its integrity check" in out, out
    assert "module reference fails its integrity check" in out, out
    assert out.rstrip().endswith("False"), out


def test_signed_payloads_do_not_verify_across_kinds():
    # A pickle's signed bytes spliced in as a module record must not pass.
    data = _core.dumps(H.Point(1, 2))
    assert data[4:5] == b"P"
    with pytest.raises(ValueError, match="integrity check"):
        _core.loads(data[:4] + b"M" + data[5:])


def test_loads_accepts_buffers():
    data = _core.dumps([1, "a"])
    assert _core.loads(memoryview(data)) == [1, "a"]
    assert _core.loads(bytearray(data)) == [1, "a"]


@pytest.mark.skipif(bool(os.environ.get("MULTIGIL_SANITIZER")),
                    reason="ASan's quarantine makes RSS grow")
def test_no_leaks_in_a_loop():
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    v = {"a": [1, 2.5, "x" * 50, b"y" * 50, 2**70, (None,)],
         "p": H.Point(1, 2), "f": H.identity}
    bad = _core.dumps(v)[:-3]
    for _ in range(2000):
        roundtrip(v)
    before = rss()
    for _ in range(20_000):
        roundtrip(v)
        try:
            _core.loads(bad)
        except ValueError:
            pass
    assert rss() - before < 8 * 1024 * 1024


# ---- functions ----

def test_module_function_by_reference():
    assert roundtrip(H.identity) is H.identity
    assert roundtrip(len) is len
    assert roundtrip(math.sqrt) is math.sqrt
    assert roundtrip(os.path.join) is os.path.join
    assert roundtrip(H.Point.norm1) is H.Point.norm1
    assert roundtrip(math) is math


def test_lambda_closure_nested_recursive():
    f = roundtrip(lambda x, y=2, *, z=3: x + y + z)
    assert f(1) == 6 and f(1, z=0) == 3
    assert roundtrip(H.make_closure(4))(2) == 8

    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)
    assert roundtrip(fact)(6) == 720

    def outer():
        def inner(n):
            return 0 if n == 0 else 1 + inner(n - 1)
        return inner
    assert roundtrip(outer())(5) == 5


def test_function_globals_and_modules():
    k = 7

    def uses_module(x):
        return math.floor(x) + k + len("ab")
    g = roundtrip(uses_module)
    assert g(2.5) == 11
    assert g.__name__ == "uses_module"
    assert g.__qualname__ == uses_module.__qualname__


def test_code_is_cached_but_each_function_is_new():
    k = 1

    def f(x):
        return x + k
    first, second = roundtrip(f), roundtrip(f)
    assert first is not second              # globals/cells are per message
    assert first.__code__ is second.__code__    # the code object is cached
    k = 2
    assert roundtrip(f)(1) == 3 and first(1) == 2


def fresh_main_function(src, name, **globals_):
    """A function defined in a namespace named __main__ (so it crosses as
    code) with the given globals."""
    ns = {"__name__": "__main__", **globals_}
    exec(textwrap.dedent(src), ns)
    return ns[name]


def test_tasks_do_not_see_state_left_by_earlier_tasks():
    # Defect 6: the worker cached the rebuilt function with its globals
    # and cells, so a task saw what an earlier task on that worker had
    # appended (1, 2, 3 instead of 1, 1, 1).
    add = fresh_main_function("""
        def add(x):
            seen.append(x)
            return len(seen)
    """, "add", seen=[])

    def make_counter():
        cell = []

        def count(x):
            cell.append(x)
            return len(cell)
        return count
    count = make_counter()
    with mg.Pool(1) as p:
        assert [p.submit(add, i).result(60) for i in range(3)] == [1, 1, 1]
        assert [p.submit(count, i).result(60) for i in range(3)] == [1, 1, 1]
        # one copy per task; a map chunk is one task
        assert list(p.map(count, range(5), chunksize=1)) == [1] * 5
        add.__globals__["seen"].extend([7, 8])   # each task: its snapshot
        assert p.submit(add, 0).result(60) == 3
    assert add.__globals__["seen"] == [7, 8]     # the caller's list


def test_functions_sharing_globals_share_a_namespace():
    def a():
        return b()

    def b():
        return "b"
    assert roundtrip([a, b])[0]() == "b"


def test_partial_and_bound_method():
    p = roundtrip(functools.partial(H.add, 1, c=5))
    assert type(p) is functools.partial and p(2) == 8
    assert roundtrip(H.partial_add)(1) == 2
    m = roundtrip(H.Point(3, -4).norm1)
    assert m() == 7 and m(scale=2) == 14


def test_not_shareable():
    lock = threading.Lock()

    def f():
        return lock
    with pytest.raises(mg.NotShareableError,
                       match="cannot send function .*f'?: its closure "
                             "variable 'lock' holds a _thread.lock, which "
                             "cannot cross interpreters"):
        _core.dumps(f)
    with pytest.raises(mg.NotShareableError, match="generator"):
        _core.dumps(x for x in [])

    class Local:
        pass
    Local.__module__ = "__main__"

    def g():
        return Local
    with pytest.raises(mg.NotShareableError,
                       match="its closure variable 'Local' holds a class "
                             ".*Local, which cannot cross"):
        _core.dumps(g)
    with pytest.raises(mg.NotShareableError,
                       match="cannot send class .*Local to another "
                             "interpreter: it is defined in __main__"):
        _core.dumps(Local)
    assert issubclass(mg.NotShareableError, TypeError)


# ---- through a pool ----

@pytest.fixture(scope="module")
def pool():
    with mg.Pool(2) as p:
        yield p


POOL_VALUES = SAMPLES + SUBCLASSED + [[1, H.Point(0, 1), "x"] * 3]


def test_every_type_through_a_worker(pool):
    futs = [pool.submit(H.identity, v) for v in POOL_VALUES]
    for v, f in zip(POOL_VALUES, futs):
        r = f.result(timeout=60)
        if type(v) in (list, tuple, dict, float, complex):
            assert same(r, v)
        else:
            assert type(r) is type(v) and (r == v or v != v)


def test_functions_through_a_worker(pool):
    k = 3
    assert pool.submit(lambda x: x * k, 5).result(timeout=60) == 15
    assert pool.submit(H.make_closure(2), 21).result(timeout=60) == 42
    assert pool.submit(functools.partial(H.add, 1), 2).result(60) == 103
    assert pool.submit(H.Point(1, 2).norm1, 3).result(timeout=60) == 9

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)
    assert pool.submit(fib, 15).result(timeout=60) == 610
    assert list(pool.map(lambda x: x + 1, range(1000))) == \
        list(range(1, 1001))
    assert pool.submit(H.call, lambda: "inner", ).result(60) == "inner"


def test_lambda_initializer():
    with mg.Pool(1, initializer=lambda: None) as p:
        assert p.submit(lambda: 5).result(timeout=60) == 5


def test_not_shareable_at_submit(pool):
    lock = threading.Lock()
    with pytest.raises(mg.NotShareableError, match="closure variable 'lock'"):
        pool.submit(lambda: lock)
    with pytest.raises(mg.NotShareableError, match="generator"):
        pool.submit(H.identity, (x for x in []))


MAIN_SCRIPT = textwrap.dedent("""
    import functools, math, sys
    import multigil as mg

    SCALE = 10

    def helper(x):
        return x * SCALE

    def fn(x, y=1, *, z=2):
        return helper(x) + y + z + math.floor(0.5)

    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)

    def is_even(n):
        return True if n == 0 else is_odd(n - 1)

    def is_odd(n):
        return False if n == 0 else is_even(n - 1)

    def make(k):
        def inner(x):
            return x + k
        return inner

    seen = []

    def add(x):
        seen.append(x)
        return len(seen)

    if __name__ == "__main__":
        with mg.Pool(2) as pool:
            assert pool.submit(fn, 1).result(60) == 13
            assert pool.submit(fn, 1, 2, z=0).result(60) == 12
            assert pool.submit(fact, 10).result(60) == 3628800
            assert pool.submit(is_even, 10).result(60) is True
            assert pool.submit(make(5), 1).result(60) == 6
            assert pool.submit(lambda: helper(2)).result(60) == 20
            assert pool.submit(functools.partial(fn, 2), z=1).result(60) == 22
            assert list(pool.map(lambda x: helper(x), range(5))) == \\
                [0, 10, 20, 30, 40]
            assert sorted(pool.map(fact, range(6), ordered=False)) == \\
                [1, 1, 2, 6, 24, 120]
        with mg.Pool(1) as pool:
            # each task sees the caller's (empty) list, not the previous
            # task's appends on the same worker
            assert [pool.submit(add, i).result(60) for i in range(3)] == \\
                [1, 1, 1], "state leaked between tasks"
        assert seen == []
        print("MAIN OK")
""")


def test_functions_from_real_main(tmp_path):
    script = tmp_path / "main_script.py"
    script.write_text(MAIN_SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, str(script)], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "MAIN OK" in r.stdout


# ---- handles (the generic TAG_HANDLE record) ----

def handle_record(kind, index, meta):
    return (_core.dumps(None)[:4] + b"H" + varint(kind) + varint(index)
            + varint(len(meta)) + meta)


def shared_meta(dtype, offset, length, stride, readonly=0):
    return (dtype.encode() + struct.pack("<qqq", offset, length, stride)
            + bytes([readonly]))


def test_handle_record_wraps_the_same_memory():
    a = mg.SharedArray(4, "i4")
    r = _core._loads_with_handles(handle_record(1, 0, shared_meta(
        "i", 4, 3, 4)), [a])
    assert type(r) is mg.SharedArray and len(r) == 3
    a[1] = 7
    assert r[0] == 7          # a view of a's block, not a copy


@pytest.mark.parametrize("kind, index, meta, match", [
    (1, 1, shared_meta("i", 0, 1, 4), "block handle 1, but the message "
                                      "carries 1 handles"),
    (99, 0, shared_meta("i", 0, 1, 4), "handle of unknown kind 99"),
    (2, 0, b"", "handle 0 is a block, not a queue"),
    (1 << 40, 0, b"", "handle of unknown kind"),
    (1, 0, shared_meta("i", 0, 1, 4)[:-1], "25 bytes of view metadata"),
    (1, 0, bytes(65), "65 bytes of metadata"),
    (1, 0, shared_meta("i", 0, 5, 4), "do not fit a block of 16 bytes"),
    (1, 0, shared_meta("i", 2, 1, 4), "do not fit"),
    (1, 0, shared_meta("x", 0, 1, 4), "unknown dtype"),
])
def test_malformed_handle_records_are_refused(kind, index, meta, match):
    a = mg.SharedArray(4, "i4")
    with pytest.raises(ValueError, match=match):
        _core._loads_with_handles(handle_record(kind, index, meta), [a])


def test_handle_inside_a_pickled_object():
    a = mg.SharedArray(3, "i8")
    a[0] = 5
    r = _core._roundtrip(H.Point(a, [a]))
    assert type(r) is H.Point and type(r.x) is mg.SharedArray
    assert r.y[0] is not a and r.x[0] == 5
    a[0] = 6
    assert r.x[0] == 6 and r.y[0][0] == 6
    with pytest.raises(TypeError, match="SharedArray"):
        _core.dumps(H.Point(a, 1))
