"""python -m multigil compat: known answers from the standard library, two
test extensions built here (one deliberately single-phase), and imports
that hang, crash or print, each contained in its own child process."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from multigil import _compat

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODS = os.path.join(HERE, "compat_mods")
REFUSED = "does not support loading in subinterpreters"


def compat(*args, cache, path=(), timeout=120):
    env = dict(os.environ, MULTIGIL_CACHE_DIR=str(cache),
               PYTHONPATH=os.pathsep.join([ROOT, *map(str, path)]))
    r = subprocess.run([sys.executable, "-m", "multigil", "compat",
                        "--json", *args], capture_output=True, text=True,
                       env=env, timeout=timeout, cwd=str(cache))
    assert r.returncode == 0, r.stderr
    return {x["package"]: x for x in json.loads(r.stdout)}


def build_ext(outdir, name, defines=()):
    """Compile tests/ext/mg_testext.c as module `name` with this Python's
    compiler and headers."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    inc = sysconfig.get_paths()["include"]
    out = os.path.join(outdir, name + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = [*cc, "-shared", "-fPIC", "-O0", f"-I{inc}", *defines,
           "-o", out, os.path.join(HERE, "ext", "mg_testext.c")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot build the test extension: {' '.join(cmd)}\n"
                    f"{r.stderr}")
    return out


@pytest.fixture(scope="module")
def exts(tmp_path_factory):
    d = tmp_path_factory.mktemp("compat_ext")
    build_ext(str(d), "mg_singlephase")
    build_ext(str(d), "mg_multiphase", ["-DMG_MULTI"])
    return d


def test_stdlib_known_answers(tmp_path):
    res = compat("json", "_decimal", "readline", "_testsinglephase",
                 cache=tmp_path)
    j = res["json"]
    assert (j["main"], j["own_gil"], j["legacy"]) == (True, True, True)
    assert j["error"] is None
    # _json loads with json; pure Python plus a multi-phase extension.
    assert any(e["name"] == "_json" and e["init"] == "multi-phase"
               for e in j["extensions"])
    d = res["_decimal"]
    assert d["main"] is True and d["legacy"] is True
    dext = [e for e in d["extensions"] if e["name"] == "_decimal"]
    if sys.version_info >= (3, 13):
        assert d["own_gil"] is True, d["error"]
        assert dext[0]["multiple_interpreters"] == \
            "per-interpreter GIL supported"
    else:
        # CPython 3.12's _decimal is still single-phase: refused.
        assert d["own_gil"] is False and REFUSED in d["error"]
        assert dext[0]["init"] == "single-phase"
    for name in ("readline", "_testsinglephase"):
        r = res[name]
        assert (r["main"], r["own_gil"], r["legacy"]) == (True, False, True)
        assert r["error"] == (f"an own-GIL subinterpreter: ImportError: "
                              f"module {name} {REFUSED}")
        assert [e["init"] for e in r["extensions"]
                if e["name"] == name] == ["single-phase"]
        assert _compat.free_threading_ready(r) is False


def test_test_extensions_and_their_slots(tmp_path, exts):
    res = compat("mg_singlephase", "mg_multiphase", cache=tmp_path,
                 path=[exts])
    s = res["mg_singlephase"]
    assert (s["main"], s["own_gil"], s["legacy"]) == (True, False, True)
    assert REFUSED in s["error"]
    assert s["extensions"] == [{"name": "mg_singlephase",
                                "init": "single-phase",
                                "multiple_interpreters": None,
                                "gil": None}]
    m = res["mg_multiphase"]
    assert (m["main"], m["own_gil"], m["legacy"]) == (True, True, True)
    assert m["extensions"] == [{
        "name": "mg_multiphase", "init": "multi-phase",
        "multiple_interpreters": "per-interpreter GIL supported",
        "gil": "not used" if sys.version_info >= (3, 13) else None}]
    assert _compat.free_threading_ready(m) is (sys.version_info >= (3, 13))


def test_hang_crash_and_prints_are_contained(tmp_path):
    res = compat("--timeout", "2", "--jobs", "3", "mg_hang_at_import",
                 "mg_abort_at_import", "mg_prints_at_import", "json",
                 cache=tmp_path, path=[MODS])
    h = res["mg_hang_at_import"]
    assert h["main"] is False and h["timed_out"] is True
    assert h["error"] == ("timed out after 2 s while importing in the main "
                          "interpreter")
    a = res["mg_abort_at_import"]
    assert a["main"] is False and a["crashed"] is True
    assert a["error"] == ("crashed (SIGABRT) while importing in the main "
                          "interpreter")
    # The forged protocol lines the module prints go to stderr.
    p = res["mg_prints_at_import"]
    assert (p["main"], p["own_gil"], p["legacy"]) == (True, True, True)
    assert res["json"]["own_gil"] is True


def test_cache_per_version(tmp_path):
    mod = tmp_path / "mods"
    mod.mkdir()
    src = mod / "mg_cached_mod.py"
    shutil.copy(os.path.join(MODS, "mg_prints_at_import.py"), src)
    first = compat("mg_cached_mod", cache=tmp_path, path=[mod])
    assert "cached" not in first["mg_cached_mod"]
    files = os.listdir(tmp_path)
    assert any(f.startswith("compat-") and f.endswith(".json")
               for f in files), files
    again = compat("mg_cached_mod", cache=tmp_path, path=[mod])
    assert again["mg_cached_mod"]["cached"] is True
    # A new version of the module (here: its file changed) is probed anew.
    st = os.stat(src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = compat("mg_cached_mod", cache=tmp_path, path=[mod])
    assert "cached" not in third["mg_cached_mod"]


def test_installed_names_are_outside_the_stdlib():
    names = _compat.installed_names()
    assert "pytest" in names
    assert "json" not in names and "multigil" not in names
