"""python -m multigil {bench,info}: the side-by-side benchmark table and
facts about this installation."""
import argparse
import json
import os
import sys


def cmd_info(args):
    import multigil
    from multigil import _core
    info = {
        "multigil": multigil.__version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "extension": _core.__file__,
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "default_workers": len(os.sched_getaffinity(0)),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>16}: {v}")
    return 0


def cmd_bench(args):
    if args.pool:
        from multigil.bench import pool
        pool.run(args.workers, args.quick, args.json)
        return 0
    from multigil.bench import svg, workloads
    rows = args.rows if args.rows is not None else (
        workloads.QUICK_ROWS if args.quick else workloads.DEFAULT_ROWS)
    if rows < 1 or args.workers < 1 or args.repeats < 1:
        print("bench: --rows, --workers and --repeats must be >= 1",
              file=sys.stderr)
        return 2
    res = workloads.run(rows=rows, workers=args.workers,
                        repeats=args.repeats, quick=args.quick)
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
    i = sub.add_parser("info", help="versions, paths and CPU counts")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_info)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
