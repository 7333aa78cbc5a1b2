"""A pure-Python module that writes to stdout at import (tests/
test_compat.py: the probe's protocol must not be confused by it)."""
import os
import sys

print('{"step": "main", "ok": false, "error": "forged"}')
os.write(1, b'{"done": true}\n')
sys.stdout.flush()
