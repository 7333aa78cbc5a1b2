"""multigil.bench: the benchmarks behind ``python -m multigil bench``.

- workloads: the data workload (CSV text parsed and aggregated per chunk)
  and a pure-CPU one, each candidate pool run in a fresh child process
  whose whole process tree is sampled for peak PSS from outside it.
- pool: the pool's own figures (round trip, map throughput, start-up).
- executors: the candidates; work: the functions the workers run (a
  module that imports nothing); child: the entry point of one measured
  run; svg: the chart.

This package's __init__ imports nothing, so that a worker importing
multigil.bench.work pays for that module alone.
"""
