"""Channels benchmark (issue #8): the four figures side by side in one run.

    python bench/bench_queue.py [--quick] [--only ping|items|array|pipeline]

1. Ping-pong: one item there and back between two interpreters, both
   sides blocking in get(): mg.Queue vs queue.SimpleQueue between two
   threads of one interpreter, idle and with a CPU-bound neighbour process;
   the stdlib's concurrent.interpreters.Queue (3.14) for reference.
2. Small ints from one interpreter to another, items/s: mg.Queue with
   put_many/get_many and item by item, vs multiprocessing.Queue (a process)
   and, on 3.13, the stdlib's private _interpqueues.
3. A 100 MB SharedArray through a queue (put + get): it moves as a handle.
4. A 3-stage pipeline of CPU-bound pure-Python stages vs a serial loop,
   with the peak memory (PSS of the process tree, multigil/_memory.py) for
   two input lengths: bounded queues keep it flat.

Timings are medians; the machine may be shared (the development machine
has 2 cores shared by several jobs): numbers are noisy, compare within one
run. Nothing here is asserted.
"""
import argparse
import multiprocessing
import os
import queue as stdqueue
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import multigil as mg  # noqa: E402


def us(s):
    return f"{s * 1e6:9.1f} us"


# ---- 1. ping-pong ----

def echo(qin, qout):
    """Worker side of the ping-pong: echo until qin is closed."""
    for x in qin:
        qout.put(x)
    return None


def round_trips(a, b, n):
    """n timed round trips: put on a, wait for the echo on b."""
    times = []
    for i in range(n):
        t = time.perf_counter()
        a.put(i)
        b.get()
        times.append(time.perf_counter() - t)
    return times


def pingpong_mg(n):
    a, b = mg.Queue(), mg.Queue()
    with mg.Pool(1) as pool:
        f = pool.submit(echo, a, b)
        times = round_trips(a, b, n)
        a.close()
        f.result()
    return statistics.median(times[n // 10:])


def pingpong_threads(n):
    a, b = stdqueue.SimpleQueue(), stdqueue.SimpleQueue()

    def run():
        while True:
            x = a.get()
            if x is None:
                return
            b.put(x)
    t = threading.Thread(target=run)
    t.start()
    times = round_trips(a, b, n)
    a.put(None)
    t.join()
    return statistics.median(times[n // 10:])


def pingpong_stdlib(n):
    try:
        import concurrent.interpreters as ci
    except ImportError:
        return None
    a, b = ci.create_queue(), ci.create_queue()
    interp = ci.create()
    interp.prepare_main(a=a, b=b)
    t = threading.Thread(target=interp.exec, args=(
        "while True:\n    x = a.get()\n    if x is None: break\n    b.put(x)\n",))
    t.start()
    times = round_trips(a, b, n)
    a.put(None)
    t.join()
    interp.close()
    return statistics.median(times)


def neighbour():
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.3)
    return p


def bench_ping(n):
    print(f"1. ping-pong round trip, median of {n} ({os.cpu_count()} CPUs)")
    for label, busy in (("idle", False), ("CPU-bound neighbour", True)):
        p = neighbour() if busy else None
        try:
            m = pingpong_mg(n)
            t = pingpong_threads(n)
        finally:
            if p is not None:
                p.kill()
                p.wait()
        print(f"   {label:22s} mg.Queue {us(m)}   SimpleQueue/threads {us(t)}")
    s = pingpong_stdlib(30)
    if s is not None:
        print(f"   {'idle':22s} concurrent.interpreters.Queue {us(s)} (30 trips)")


# ---- 2. small items ----

def produce_ints(q, n, batch):
    if batch > 1:
        for i in range(0, n, batch):
            q.put_many(range(i, min(i + batch, n)))
    else:
        for i in range(n):
            q.put(i)
    q.close()
    return n


def mg_rate(n, batch):
    q = mg.Queue(max(1024, 4 * batch))
    with mg.Pool(1) as pool:
        pool.submit(produce_ints, mg.Queue(), 1, 1).result()  # warm up
        t = time.perf_counter()
        f = pool.submit(produce_ints, q, n, batch)
        got = 0
        try:
            while True:
                got += len(q.get_many(batch)) if batch > 1 else (q.get(), 1)[1]
        except mg.QueueClosed:
            pass
        dt = time.perf_counter() - t
        f.result()
    assert got == n
    return n / dt


def _mp_produce(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)


def mp_rate(n):
    q = multiprocessing.Queue(1024)
    p = multiprocessing.Process(target=_mp_produce, args=(q, n))
    t = time.perf_counter()
    p.start()
    got = 0
    while q.get() is not None:
        got += 1
    dt = time.perf_counter() - t
    p.join()
    return n / dt


def interpqueues_rate(n):
    try:
        import _interpqueues as iq
        import _interpreters as ii
    except ImportError:
        return None
    try:
        qid = iq.create(1024, 0, 1)
    except TypeError:
        return None
    iid = ii.create()
    code = (f"import _interpqueues as iq\nfor i in range({n}):\n"
            f"    while True:\n        try:\n"
            f"            iq.put({qid}, i, 0, 1); break\n"
            f"        except Exception as e:\n"
            f"            if 'Full' not in type(e).__name__: raise\n")
    try:
        t = threading.Thread(target=ii.run_string, args=(iid, code))
        start = time.perf_counter()
        t.start()
        got = 0
        while got < n and (t.is_alive() or iq.get_count(qid)):
            try:
                iq.get(qid)
                got += 1
            except Exception as e:
                if "Empty" not in type(e).__name__:
                    raise
        dt = time.perf_counter() - start
        t.join()
    finally:
        ii.destroy(iid)
        iq.destroy(qid)
    return n / dt


def bench_items(n):
    print(f"2. ints from one interpreter to another ({n} items), items/s")
    batched = mg_rate(n, 256)
    single = mg_rate(n // 4, 1)
    mp = mp_rate(n // 4)
    print(f"   mg.Queue put_many/get_many(256) {batched:12,.0f}")
    print(f"   mg.Queue item by item           {single:12,.0f}")
    print(f"   multiprocessing.Queue           {mp:12,.0f}   "
          f"(mg item by item: {single / mp:.1f}x)")
    ip = interpqueues_rate(n // 4) if sys.version_info[:2] == (3, 13) else None
    if ip is not None:
        print(f"   _interpqueues (3.13, polling)   {ip:12,.0f}   "
              f"(mg item by item: {single / ip:.1f}x)")


# ---- 3. a 100 MB SharedArray ----

def bench_array():
    a = mg.SharedArray(100 * 1024 * 1024 // 8, "f8")
    q = mg.Queue()
    times = []
    for _ in range(200):
        t = time.perf_counter()
        q.put(a)
        b = q.get()
        times.append(time.perf_counter() - t)
        del b
    print(f"3. 100 MB SharedArray put+get: median {us(statistics.median(times))}")


# ---- 4. a 3-stage CPU-bound pipeline ----

def stage_work(x, rounds=3000):
    h = x
    for _ in range(rounds):
        h = (h * 1103515245 + 12345) & 0x7FFFFFFF
    return h


def stage_a(x):
    return stage_work(x)


def stage_b(x):
    return stage_work(x + 1)


def stage_c(x):
    return stage_work(x + 2) % 1000


def _stage_alone(args):
    fn, n = args
    return sum(fn(i) for i in range(n))


def pipeline_child(kind, n):
    t = time.perf_counter()
    if kind == "serial":
        total = sum(stage_c(stage_b(stage_a(i))) for i in range(n))
    elif kind == "ceiling":
        # The machine's own limit: the three stages' work in three
        # processes that never talk to each other (not the same result).
        import multiprocessing as mp
        with mp.get_context("fork").Pool(3) as p:
            total = sum(p.map(_stage_alone, [(stage_a, n), (stage_b, n),
                                             (stage_c, n)]))
    else:
        total = sum(mg.Pipeline(range(n), maxsize=8)
                    .map(stage_a).map(stage_b).map(stage_c))
    print(f"{time.perf_counter() - t} {total}")


def run_child(kind, n):
    from multigil import _memory
    p = subprocess.Popen([sys.executable, __file__, "--child", kind, str(n)],
                         stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    with _memory.PeakSampler(p.pid) as s:
        out, _ = p.communicate()
    secs, total = out.split()
    return float(secs), int(total), s.peak


def bench_pipeline(n):
    print(f"4. 3-stage CPU-bound pipeline vs serial ({n} items)")
    mb = (lambda b: f"{b / 2**20:6.1f} MB" if b else "   n/a")
    # The pipeline's time includes starting its pool (one worker per
    # stage); the larger input shows the speed-up once that is amortised
    # and that peak memory does not grow with the input.
    for k in (n, 4 * n):
        ser = run_child("serial", k)
        pip = run_child("pipeline", k)
        cap = run_child("ceiling", k)
        print(f"   {k:>6} items: serial {ser[0]:6.2f} s  peak {mb(ser[2])}"
              f"   pipeline {pip[0]:6.2f} s  peak {mb(pip[2])}  speed-up "
              f"{ser[0] / pip[0]:.2f}x  same result: {ser[1] == pip[1]}"
              f"   (3 independent processes: {ser[0] / cap[0]:.2f}x)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only")
    ap.add_argument("--child", nargs=2)
    args = ap.parse_args()
    if args.child:
        return pipeline_child(args.child[0], int(args.child[1]))
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          "noisy on a shared machine")
    q = args.quick
    steps = {"ping": lambda: bench_ping(500 if q else 3000),
             "items": lambda: bench_items(200_000 if q else 1_000_000),
             "array": bench_array,
             "pipeline": lambda: bench_pipeline(300 if q else 1000)}
    for name, fn in steps.items():
        if args.only in (None, name):
            fn()


if __name__ == "__main__":
    main()
