"""Work functions for the benchmarks. Kept in a module of their own that
imports nothing, so that a worker importing them measures the pool, not
the benchmark harness's imports."""


def noop(x=None):
    return x


def cpu_task(n):
    s = 0
    for i in range(n):
        s += i * i % 7
    return s
