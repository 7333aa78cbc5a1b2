"""Shared by the examples: a deterministic column of n pseudo-random values
in a SharedArray, filled in chunks so memory stays small."""
import argparse
import os
import random

import multigil as mg

CHUNK = 100_000


def random_column(n, seed=42):
    rng = random.Random(seed)
    col = mg.SharedArray(n, dtype="f8")
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        col[start:stop] = [rng.random() * 200.0 - 50.0
                           for _ in range(stop - start)]
    return col



def parse_args(doc, argv):
    """--n (default 10,000,000, or $MULTIGIL_EXAMPLE_N) and --workers."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--n", type=int,
                   default=int(os.environ.get("MULTIGIL_EXAMPLE_N",
                                              10_000_000)))
    p.add_argument("--workers", type=int, default=2)
    return p.parse_args(argv)
