"""The seed article's examples A and B written the naive way, with NumPy
and pandas imported at the top as users do."""
import numpy as np

try:
    import pandas as pd
except ImportError:  # pandas absent: example A's tests skip
    pd = None


def chunk_mean(df_chunk):
    """Example A."""
    return df_chunk["value"].mean()


def normalize(arr):
    """Example B, on a SharedArray: numpy.asarray sees its memory."""
    arr = np.asarray(arr)
    return (arr - arr.mean()) / arr.std()


def normalize_in_place(arr):
    a = np.asarray(arr)
    a -= a.mean()
    a /= a.std()
    return float(a.sum())


def add_one(arr):
    np.asarray(arr)[:] += 1
    return arr


def total(arr):
    return float(np.asarray(arr).sum())
