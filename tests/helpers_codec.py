"""Module-level helpers for test_codec.py: workers import them by name."""
import enum
import functools


def identity(x):
    return x


def add(a, b=10, *, c=100):
    return a + b + c


class Point:
    """A plain picklable class (crosses through the pickle fallback)."""

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __eq__(self, other):
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)

    def __hash__(self):
        return hash((self.x, self.y))

    def norm1(self, scale=1):
        return (abs(self.x) + abs(self.y)) * scale


class MyStr(str):
    pass


class MyInt(int):
    pass


class MyList(list):
    pass


class MyDict(dict):
    pass


def make_closure(k):
    def inner(x):
        return x * k
    return inner


partial_add = functools.partial(add, 1, c=0)


def call(fn, *args, **kwargs):
    return fn(*args, **kwargs)


class Color(enum.IntEnum):
    RED = 1
