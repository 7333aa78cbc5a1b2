"""A module whose import never ends (tests/test_compat.py: the probe's
timeout must contain it)."""
import time

while True:
    time.sleep(3600)
