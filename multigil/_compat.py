"""multigil._compat - ``python -m multigil compat``: which packages can run
in a subinterpreter, asked of each package in a child process of its own
(multigil._compat_probe), with a timeout, so that a crash or a hang is
contained and reported as such.

Answers per package: imports in the main interpreter; in an own-GIL
subinterpreter; in a legacy (shared-GIL) subinterpreter; the error in one
line where not; and what each extension module it loads declares
(Py_mod_multiple_interpreters, Py_mod_gil), which says whether it is
ready for free-threading without a free-threaded Python.

Results are cached per (Python, package, version) in
$MULTIGIL_CACHE_DIR, else $XDG_CACHE_HOME/multigil, else
~/.cache/multigil (compat-<python tag>.json).
"""
import concurrent.futures as cf
import importlib.util
import json
import os
import pkgutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time

DEFAULT_TIMEOUT = 60.0
STEPS = ("main", "own_gil", "legacy")
STEP_WORDS = {"main": "the main interpreter",
              "own_gil": "an own-GIL subinterpreter",
              "legacy": "a legacy subinterpreter"}
CACHE_FORMAT = 1


# ---- cache ----

def cache_dir():
    d = os.environ.get("MULTIGIL_CACHE_DIR")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "multigil")


def cache_path(python_tag=None):
    tag = python_tag or (sys.implementation.cache_tag
                         + ("t" if sysconfig.get_config_var(
                             "Py_GIL_DISABLED") else ""))
    return os.path.join(cache_dir(), f"compat-{tag}.json")


def load_cache():
    try:
        with open(cache_path(), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT \
            or data.get("python") != sys.executable:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def save_cache(entries):
    path = cache_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = {"format": CACHE_FORMAT, "python": sys.executable,
            "entries": entries}
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def cached(name):
    """The cached result for name at its current version, or None."""
    entry = load_cache().get(name)
    if entry and entry.get("version_key") == version_key(name):
        return entry
    return None


# ---- which version ----

def _distributions():
    from importlib import metadata
    try:
        return metadata.packages_distributions()
    except Exception:
        return {}


def version_key(name, dists=None):
    """What identifies this package's code without importing it: its
    distribution's version, Python's version for the standard library,
    else the file's modification time; None if it cannot be found."""
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return f"python {sys.version.split()[0]}"
    from importlib import metadata
    for dist in (dists if dists is not None else _distributions()).get(
            top, []):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    origin = spec.origin if spec.has_location else None
    if origin is None and spec.submodule_search_locations:
        origin = list(spec.submodule_search_locations)[0]
    try:
        return f"file {origin} {os.stat(origin).st_mtime_ns}"
    except (OSError, TypeError):
        return "unversioned"


def _is_stdlib_dir(path):
    rp = os.path.realpath(path)
    for key in ("stdlib", "platstdlib"):
        s = os.path.realpath(sysconfig.get_paths()[key])
        if rp == s or (rp.startswith(s + os.sep)
                       and "site-packages" not in rp
                       and "dist-packages" not in rp):
            return True
    return False


def installed_names():
    """Top-level importable modules outside the standard library: those
    of sys.path's folders other than the standard library's and the
    current directory (site-packages, the user's, PYTHONPATH's)."""
    cwd = os.path.realpath(os.getcwd())
    paths = [p for p in sys.path if p and os.path.isdir(p)
             and os.path.realpath(p) != cwd and not _is_stdlib_dir(p)]
    names = set()
    for m in pkgutil.iter_modules(paths):
        n = m.name
        if n.startswith("_") or n in sys.stdlib_module_names \
                or "-" in n or n == "multigil":
            continue
        names.add(n)
    return sorted(names)


# ---- one probe ----

def _env():
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [root, env.get("PYTHONPATH", "")] if p)
    env.pop("PYTHONSTARTUP", None)
    return env


def _signal_name(rc):
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def probe(name, timeout=DEFAULT_TIMEOUT, python=None):
    """Probe one module in a child process; returns the result dict:
    {"package", "main", "own_gil", "legacy" (True, False or None: not
    reached), "error" (one line or None), "extensions" [...],
    "seconds"}."""
    t = time.monotonic()
    proc = subprocess.Popen(
        [python or sys.executable, "-m", "multigil._compat_probe", name],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=_env(), start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    res = {"package": name, "main": None, "own_gil": None, "legacy": None,
           "error": None, "errors": {}, "extensions": [],
           "seconds": round(time.monotonic() - t, 3)}
    current, done = None, False
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "start" in msg:
            current = msg["start"]
        elif "step" in msg:
            res[msg["step"]] = msg["ok"]
            if msg.get("extensions") is not None:
                res["extensions"] = msg["extensions"]
            if not msg["ok"]:
                res["errors"][msg["step"]] = msg["error"]
                if res["error"] is None:
                    res["error"] = (f"{STEP_WORDS[msg['step']]}: "
                                    f"{msg['error']}")
            current = None
        elif msg.get("done"):
            done = True
    if done:
        return res
    where = STEP_WORDS.get(current, "start-up")
    if timed_out:
        why = f"timed out after {timeout:g} s"
    elif proc.returncode < 0:
        why = f"crashed ({_signal_name(proc.returncode)})"
    else:
        tail = err.decode("utf-8", "replace").strip().splitlines()
        why = f"exited with status {proc.returncode}" + (
            f": {tail[-1][:200]}" if tail else "")
    if current is not None:
        res[current] = False
        res["errors"][current] = why
    res["error"] = f"{why} while importing in {where}"
    res["crashed" if not timed_out else "timed_out"] = True
    return res


# ---- many ----

def check(names, timeout=DEFAULT_TIMEOUT, use_cache=True, jobs=1):
    """Results for names, in order, from the cache where it has the
    package's current version, else probed (jobs at a time)."""
    dists = _distributions()
    entries = load_cache() if use_cache else {}
    keys = {n: version_key(n, dists) for n in names}
    results, todo = {}, []
    for n in names:
        e = entries.get(n)
        if keys[n] is None:
            results[n] = {"package": n, "main": False, "own_gil": None,
                          "legacy": None, "extensions": [],
                          "error": "not found (no module of that name)",
                          "version_key": None}
        elif e and e.get("version_key") == keys[n]:
            results[n] = dict(e, cached=True)
        else:
            todo.append(n)
    with cf.ThreadPoolExecutor(max(1, jobs)) as ex:
        for n, r in zip(todo, ex.map(lambda n: probe(n, timeout), todo)):
            r["version_key"] = keys[n]
            results[n] = r
    if todo:
        fresh = load_cache()
        for n in todo:
            fresh[n] = results[n]
        try:
            save_cache(fresh)
        except OSError as e:
            print(f"compat: cannot write the cache {cache_path()}: {e}",
                  file=sys.stderr)
    return [results[n] for n in names]


# ---- report ----

def ext_summary(ext):
    """One extension module's declarations in words."""
    if ext["init"] != "multi-phase":
        return f"{ext['name']}: {ext['init']} init"
    mi = ext["multiple_interpreters"] or "supported (not declared)"
    gil = ext["gil"] or "used (not declared)"
    return (f"{ext['name']}: multi-phase, multiple interpreters {mi}, "
            f"GIL {gil}")


def free_threading_ready(res):
    """yes / no / None (unknown) from the extensions' Py_mod_gil."""
    if not res.get("main"):
        return None
    exts = res.get("extensions") or []
    return all(e.get("gil") == "not used" for e in exts)


def _yn(v):
    return {True: "yes", False: "no", None: "-"}[v]


def report(results, verbose=False):
    out = [f"  {'package':<24}{'version':<18}{'main':<6}{'own GIL':<9}"
           f"{'legacy':<8}{'free-threading':<15}"]
    for r in results:
        vk = r.get("version_key") or ""
        version = vk.split(" ", 1)[1] if vk.startswith(("python ",)) else (
            vk.rsplit(" ", 1)[-1] if not vk.startswith("file ") else "file")
        ft = free_threading_ready(r)
        ftw = "-" if ft is None else (
            ("yes" if ft else "no") + ("" if r.get("extensions")
                                       else " (pure)"))
        out.append(f"  {r['package']:<24}{version[:17]:<18}"
                   f"{_yn(r['main']):<6}{_yn(r['own_gil']):<9}"
                   f"{_yn(r['legacy']):<8}{ftw:<15}")
        if r.get("error"):
            out.append(f"      error: {r['error']}")
        exts = r.get("extensions") or []
        shown = exts if verbose else exts[:4]
        for e in shown:
            out.append(f"      {ext_summary(e)}")
        if len(exts) > len(shown):
            out.append(f"      ... and {len(exts) - len(shown)} more "
                       f"extension modules (-v lists them)")
    return "\n".join(out)


def main(args):
    names = list(args.packages)
    if args.installed:
        names += [n for n in installed_names() if n not in names]
    if not names:
        print("compat: name packages or pass --installed", file=sys.stderr)
        return 2
    results = check(names, timeout=args.timeout,
                    use_cache=not args.no_cache, jobs=args.jobs)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"CPython {sys.version.split()[0]}: does each package import "
              f"in the main interpreter, an own-GIL subinterpreter, a "
              f"legacy one; are its extensions free-threading ready "
              f"(Py_mod_gil)?")
        print(report(results, args.verbose))
        print(f"cache: {cache_path()}")
    return 0
