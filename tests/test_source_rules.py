"""Source rules for the C core (STYLE.md 6.8): things that break
subinterpreters or hide errors, checked on every C file."""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = sorted(glob.glob(os.path.join(ROOT, "src", "*", "*.c")))


def read(path):
    with open(path) as f:
        return f.read()


def test_there_are_sources():
    assert len(SOURCES) >= 5


@pytest.mark.parametrize("path", SOURCES, ids=os.path.basename)
def test_no_gilstate_or_single_phase_apis(path):
    src = read(path)
    assert not re.search(r"PyGILState_(Ensure|Release|GetThisThreadState)",
                         src)
    assert "PyModule_Create(" not in src
    assert "PyState_FindModule(" not in src


@pytest.mark.parametrize("path", SOURCES, ids=os.path.basename)
def test_no_static_python_objects(path):
    src = read(path)
    assert not re.search(r"^static\s+PyObject\s*\*\s*\w+\s*(=|;)", src, re.M)
    assert not re.search(r"^static\s+PyTypeObject\s+\w+", src, re.M)


@pytest.mark.parametrize("path", SOURCES, ids=os.path.basename)
def test_file_starts_with_ownership_comment(path):
    src = read(path).lstrip()
    name = os.path.basename(path)
    assert src.startswith("/* " + name), f"{name}: no header comment"


@pytest.mark.parametrize("path", SOURCES, ids=os.path.basename)
def test_no_return_while_a_mutex_is_held(path):
    """Within one function body, no `return` between pthread_mutex_lock and
    the next pthread_mutex_unlock."""
    held = 0
    for n, line in enumerate(read(path).splitlines(), 1):
        if re.match(r"^\w.*\)\s*$|^{", line) and held:
            held = 0  # a new function starts
        if "pthread_mutex_lock(" in line:
            held += 1
        elif "pthread_mutex_unlock(" in line:
            held = max(0, held - 1)
        elif held and re.search(r"\breturn\b", line):
            pytest.fail(f"{os.path.basename(path)}:{n}: return while a "
                        f"mutex is held")


BASE_SOURCES = sorted(glob.glob(os.path.join(ROOT, "src", "base", "*.[ch]")))


@pytest.mark.parametrize("path", BASE_SOURCES, ids=os.path.basename)
def test_base_layer_is_pure_c(path):
    """src/base never includes Python.h, directly or through src/py."""
    src = read(path)
    includes = re.findall(r'^#include\s+[<"]([^>"]+)[>"]', src, re.M)
    for inc in includes:
        assert inc != "Python.h", f"{os.path.basename(path)} includes Python.h"
        assert not os.path.exists(os.path.join(ROOT, "src", "py", inc)), \
            f"{os.path.basename(path)} includes {inc} from src/py"


def header_comment(path):
    src = read(path).lstrip()
    end = src.find("*/")
    return src[:end] if end >= 0 else ""


@pytest.mark.parametrize("path", SOURCES, ids=os.path.basename)
def test_header_says_locks_and_what_never_to_do(path):
    """Every C file opens with what it owns, the locks it takes (or that it
    takes none) and what it must never do."""
    head = header_comment(path).lower()
    assert "lock" in head, f"{os.path.basename(path)}: header names no locks"
    assert "never" in head, f"{os.path.basename(path)}: header has no 'never'"
