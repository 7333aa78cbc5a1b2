"""Work functions for the benchmarks. Kept in a module of their own that
imports nothing, so that a worker importing them measures the pool, not
the benchmark harness's imports.

The data workload: CSV text with columns id,group,value,qty (GROUPS
distinct groups), parsed in pure Python per chunk into per-group
aggregates [count, sum(value), min(value), max(value), sum(qty)], then the
chunks' aggregates combined. aggregate_columns computes the same from a
row range of the columns multigil.read_csv parsed (a multigil.Table).
"""

GROUPS = 64
HEADER = "id,group,value,qty\n"


def noop(x=None):
    return x


def cpu_task(n):
    s = 0
    for i in range(n):
        s += i * i % 7
    return s


def csv_rows(start, count, seed=12345):
    """Rows start..start+count-1 of the deterministic data set, as CSV text
    (no header). Row i depends only on (seed, i), so any chunking of the
    rows yields the same data set."""
    out = []
    append = out.append
    for i in range(start, start + count):
        # An integer hash of (seed, i): reproducible on every Python.
        x = (i * 2654435761 + seed) & 0xFFFFFFFF
        x = ((x ^ (x >> 15)) * 2246822519) & 0xFFFFFFFF
        x ^= x >> 13
        append(f"{i},g{x % GROUPS:02d},{(x >> 8) % 100000 / 100:.2f},"
               f"{x % 97}\n")
    return "".join(out)


def aggregate(text):
    """Per-group aggregates of CSV rows (no header): {group: [count,
    sum_value, min_value, max_value, sum_qty]}."""
    acc = {}
    for line in text.splitlines():
        if not line:
            continue
        _, group, value, qty = line.split(",")
        v = float(value)
        a = acc.get(group)
        if a is None:
            acc[group] = [1, v, v, v, int(qty)]
        else:
            a[0] += 1
            a[1] += v
            if v < a[2]:
                a[2] = v
            if v > a[3]:
                a[3] = v
            a[4] += int(qty)
    return acc


def aggregate_columns(table):
    """aggregate() of a Table with the columns group (string), value
    (float64) and qty (int64): the same per-group aggregates, computed in
    pure Python over the columns' values, row by row in order (so the
    float sums are the same as aggregate()'s over the same rows)."""
    acc = {}
    for group, v, q in zip(table["group"].to_pylist(),
                           table["value"].to_pylist(),
                           table["qty"].to_pylist()):
        a = acc.get(group)
        if a is None:
            acc[group] = [1, v, v, v, q]
        else:
            a[0] += 1
            a[1] += v
            if v < a[2]:
                a[2] = v
            if v > a[3]:
                a[3] = v
            a[4] += q
    return acc


def combine(parts):
    """Combine aggregate() results, in the order given."""
    total = {}
    for part in parts:
        for group, (n, s, lo, hi, q) in part.items():
            a = total.get(group)
            if a is None:
                total[group] = [n, s, lo, hi, q]
            else:
                a[0] += n
                a[1] += s
                a[2] = min(a[2], lo)
                a[3] = max(a[3], hi)
                a[4] += q
    return {g: total[g] for g in sorted(total)}
