"""CPython's generic executor tests (test.test_concurrent_futures), run
against multigil.Pool; see stdlib_executor_support for what is adapted."""
import unittest

import pytest

import stdlib_executor_support as support

try:
    support.build(globals())
except unittest.SkipTest as e:
    pytest.skip(str(e), allow_module_level=True)
