"""A module whose import a worker interpreter refuses: it imports a
single-phase extension module at the top, as code using NumPy imports
numpy. Interpreters fail while decoding a task that names it."""
import os

import _testsinglephase  # noqa: F401


def pid_plus(x):
    return os.getpid(), x + 1


def twice(a):
    """Doubles a SharedArray in place, item by item (no NumPy needed)."""
    for i in range(len(a)):
        a[i] = a[i] * 2
    return os.getpid()
