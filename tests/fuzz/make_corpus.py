"""make_corpus.py DIR - write the fuzzer's seed corpus: dumps() of varied
values, one file each (small: well under 200 files and 1 MB)."""
import functools
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from multigil import _core  # noqa: E402


def _outer(k):
    def inner(n):
        return n if n <= 0 else inner(n - 1) + k
    return inner


SEEDS = [
    None, True, False, 0, 1, -1, 127, -129, 2**31, -2**40, 2**63 - 1,
    2**64, -(10**40), 1.5, -0.0, math.inf, math.nan, 1 + 2j, "", "abc",
    "h\xe9llo", "\u65e5\u672c", "\U0001f600x", "\ud800", b"", b"\x00\xff",
    bytearray(b"ab"), (), (1, "a"), [1, [2, [3]]], {"a": 1, "b": [2.5]},
    {1, 2, 3}, frozenset({"x"}), [{"id": i, "name": "n%d" % i, "v": i / 3}
                                 for i in range(3)],
    {"k": (None, True, b"z")}, [[[[[]]]]], range(3), slice(1, 2),
    math.sqrt, len, functools.partial(max, 1), os.path.join,
    lambda x: x + 1, _outer(2), (lambda: math.pi), [1, range(2), "s"],
    {"a": (1, 2), 3: frozenset()}, ["\u0100" * 3, "\U00010000"],
    [2**100, -(2**100)], (1.0, -1.0, 1e300, 5e-324),
]


def _shared():
    x = [1, "s"]
    loop = [0]
    loop.append(loop)
    d = {}
    d["me"] = [d, (x, x)]
    t = ()
    for _ in range(6):
        t = (t, t)
    return [[x, x, {"k": x}], loop, d, t, {t: frozenset({t})},
            [bytearray(b"b")] * 2, [{3}, ] * 2]


SEEDS += _shared()


def main(out):
    os.makedirs(out, exist_ok=True)
    for i, v in enumerate(SEEDS):
        with open(os.path.join(out, "seed%03d" % i), "wb") as f:
            f.write(_core.dumps(v))


if __name__ == "__main__":
    main(sys.argv[1])
