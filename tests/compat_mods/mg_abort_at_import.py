"""A module whose import kills its process (tests/test_compat.py: the
crash must be contained in the probe's child and reported)."""
import os

os.abort()
