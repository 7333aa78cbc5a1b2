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
    from multigil import _bench
    _bench.run(args.workers, args.quick, args.json)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m multigil")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="pool benchmark against threads, "
                       "processes and the stdlib, side by side")
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--quick", action="store_true", help="fewer iterations")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=cmd_bench)
    i = sub.add_parser("info", help="versions, paths and CPU counts")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_info)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
