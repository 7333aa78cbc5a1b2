"""A channel between two interpreters: a producer interpreter streams
records to a consumer interpreter through an mg.Queue, and ends the stream
with close(); the consumer's `for record in q` ends when the queue is
closed and drained. Checked against the same work done serially.

    python examples/channel.py [--records N]
"""
import argparse
import os
import sys

import multigil as mg


def make_record(i):
    return {"id": i, "name": f"user{i % 97}", "score": (i * 7919) % 1000}


def produce(q, n):
    """Runs in one worker interpreter: n records, then close()."""
    for i in range(n):
        q.put(make_record(i))
    q.close()
    return n


def consume(q):
    """Runs in another: a summary of every record until the stream ends."""
    count = total = 0
    best = {}
    for rec in q:
        count += 1
        total += rec["score"]
        if rec["score"] > best.get(rec["name"], -1):
            best[rec["name"]] = rec["score"]
    return count, total, sorted(best.items())


def serial(n):
    count = total = 0
    best = {}
    for i in range(n):
        rec = make_record(i)
        count += 1
        total += rec["score"]
        if rec["score"] > best.get(rec["name"], -1):
            best[rec["name"]] = rec["score"]
    return count, total, sorted(best.items())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int,
                    default=int(os.environ.get("MULTIGIL_EXAMPLE_N", 100000)))
    args = ap.parse_args(argv)
    q = mg.Queue(maxsize=1000)  # bounded: the producer cannot run away
    with mg.Pool(2) as pool:
        consumer = pool.submit(consume, q)
        producer = pool.submit(produce, q, args.records)
        sent = producer.result()
        got = consumer.result()
    print(f"{sent} records sent, {got[0]} received, score total {got[1]}")
    ok = got == serial(args.records)
    print("verified" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
