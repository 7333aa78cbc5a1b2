"""python -m multigil {bench,compat,info}: the side-by-side benchmark,
which packages load in subinterpreters, and facts about this
installation (docs/tools.md)."""
import argparse
import json
import os
import sys


OPTIONAL_PACKAGES = ("numpy", "pyarrow", "pandas", "polars")


def _package_facts(name):
    """Installed version (from its metadata, without importing it) and
    whether it imports in an own-GIL subinterpreter (from compat's cache)."""
    from importlib import metadata
    from multigil import _compat
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return {"installed": False}
    entry = _compat.cached(name)
    if entry is None:
        sub = f"unknown: run python -m multigil compat {name}"
    elif entry.get("own_gil"):
        sub = "yes"
    else:
        sub = f"no ({entry.get('error') or 'not reached'})"
    return {"installed": True, "version": version,
            "own_gil_subinterpreter": sub}


def info_dict():
    import concurrent.futures as cf
    import sysconfig

    import multigil
    from multigil import _core
    from multigil.bench import executors
    ft = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    usable = len(os.sched_getaffinity(0))
    return {
        "multigil": multigil.__version__,
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "build": "free-threaded" if ft else "GIL",
        "gil_enabled_now": getattr(sys, "_is_gil_enabled", lambda: True)(),
        "executable": sys.executable,
        "extension": _core.__file__,
        "extension_build": _core._build_info(),
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "default_workers": usable,
        "stdlib_interpreter_pool": (
            "InterpreterPoolExecutor" if hasattr(cf, "InterpreterPoolExecutor")
            else "_interpreters (private)" if sys.version_info >= (3, 13)
            else None),
        "free_threaded_pythons": [p for p, _ in
                                  executors.find_free_threaded()],
        "packages": {n: _package_facts(n) for n in OPTIONAL_PACKAGES},
    }


def _print_info(info):
    for k, v in info.items():
        if isinstance(v, dict):
            print(f"{k:>24}:")
            for kk, vv in v.items():
                if isinstance(vv, dict):
                    vv = ", ".join(f"{a}: {b}" for a, b in vv.items()) \
                        if vv.get("installed", True) else "not installed"
                print(f"{kk:>28}  {vv}")
        else:
            if isinstance(v, list):
                v = ", ".join(v) or "none found"
            print(f"{k:>24}: {v}")


def cmd_info(args):
    info = info_dict()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return 0


def cmd_bench(args):
    if args.pool:
        from multigil.bench import pool
        pool.run(args.workers, args.quick, args.json)
        return 0
    from multigil.bench import svg, workloads
    rows = args.rows if args.rows is not None else (
        workloads.QUICK_ROWS if args.quick else workloads.DEFAULT_ROWS)
    if rows < 1 or args.workers < 1 or args.repeats < 1 or (
            args.cpu_seconds is not None and not args.cpu_seconds > 0):
        print("bench: --rows, --workers and --repeats must be >= 1, "
              "--cpu-seconds > 0", file=sys.stderr)
        return 2
    only = args.only.split(",") if args.only else None
    try:
        res = workloads.run(rows=rows, workers=args.workers,
                            repeats=args.repeats, quick=args.quick,
                            only=only, cpu_seconds=args.cpu_seconds)
    except ValueError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    if args.svg:
        svg.write(res, args.svg)
        res["svg"] = os.path.abspath(args.svg)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(workloads.report(res))
        if args.svg:
            print(f"chart: {res['svg']}")
    failed = [r for wl in res["workloads"].values() for r in wl["rows"]
              if "error" in r]
    return 1 if failed else 0


def cmd_compat(args):
    from multigil import _compat
    return _compat.main(args)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m multigil")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="a data and a CPU workload: serial, "
                       "threads, processes, the stdlib's interpreter pool "
                       "and multigil side by side (time, peak memory)")
    b.add_argument("--rows", type=int, default=None,
                   help="CSV rows of the data workload (default "
                   "10,000,000; 500,000 with --quick)")
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--repeats", type=int, default=1,
                   help="runs per candidate; the median is shown")
    b.add_argument("--quick", action="store_true",
                   help="small sizes: the whole run takes under 30 s")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.add_argument("--svg", metavar="PATH",
                   help="also write a bar chart of time and memory")
    b.add_argument("--cpu-seconds", type=float, default=None,
                   help="length of one CPU task (default 0.25; 0.06 with "
                   "--quick)")
    b.add_argument("--only", metavar="KIND,...",
                   help="run these candidates only (and serial): threads, "
                   "process-fork, process-spawn, process-forkserver, "
                   "stdlib-interpreters, _interpreters-minimal, "
                   "free-threaded, multigil, multigil-columns")
    b.add_argument("--pool", action="store_true",
                   help="the pool's own figures instead: round trip, map "
                   "throughput, start-up, memory per worker")
    b.set_defaults(fn=cmd_bench)
    c = sub.add_parser("compat", help="which packages import in an own-GIL "
                       "or legacy subinterpreter, and what their extension "
                       "modules declare (one child process per package)")
    c.add_argument("packages", nargs="*", metavar="PACKAGE")
    c.add_argument("--installed", action="store_true",
                   help="every top-level package outside the standard "
                   "library")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument("--timeout", type=float, default=60.0,
                   help="seconds per package (default 60)")
    c.add_argument("--jobs", type=int, default=1,
                   help="packages probed at once (default 1)")
    c.add_argument("--no-cache", action="store_true",
                   help="probe again even where the cache has an answer")
    c.add_argument("-v", "--verbose", action="store_true",
                   help="list every extension module")
    c.set_defaults(fn=cmd_compat)
    i = sub.add_parser("info", help="versions, build flags, CPUs, optional "
                       "packages and whether they load in subinterpreters")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_info)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
