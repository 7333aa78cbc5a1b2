"""The seed article's examples A and B written the naive way, with NumPy
and pandas imported at the top as users do."""
import os

import numpy as np

import multigil

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


def chunk_mean_shared(table_chunk):
    """Example A without a copy: a Table chunk crosses as its memfds."""
    df_chunk = multigil.pandas_frame(table_chunk)
    return df_chunk["value"].mean()


def frame_sees(data, name, value):
    """Makes a frame over data, then writes value into row 0 of column
    name through the array (not the frame): what the frame reads there,
    whether it shares the array's memory, and this process's id."""
    df = multigil.pandas_frame(data)
    col = data[name]
    arr = np.asarray(col.values if isinstance(col, multigil.Column)
                     else col)
    arr[0] = value
    return (float(df[name].iloc[0]),
            bool(np.shares_memory(df[name].to_numpy(), arr)), os.getpid())
