"""Pool.stats(): a snapshot of the engine's counters as small frozen
dataclasses. The counters live in C (engine.c: written by each worker's
own thread, read here relaxed); this module only shapes them, and adds
the counts that the process workers (multigil._fallback) keep."""
from dataclasses import dataclass
from typing import Any

__all__ = ["PoolStats", "WorkerStats", "ProcessStats"]


@dataclass(frozen=True)
class WorkerStats:
    """One worker interpreter (its thread), over the pool's whole life
    (a recycled interpreter's worker keeps counting)."""
    index: int      # the worker's index (as in broadcast's results)
    done: int       # tasks finished, failed ones included (a map chunk
                    # or one broadcast call is one task)
    failed: int     # ... that raised (a chunk: one of its items did)
    busy: float     # seconds spent running them (monotonic clock)
    running: bool   # running a task now


@dataclass(frozen=True)
class ProcessStats:
    """The pool's process workers (fallback="process"): counts only; the
    process workers do not time their tasks."""
    started: int    # processes started so far
    alive: int      # processes alive now
    done: int       # tasks finished in them, failed ones included
    failed: int     # ... that raised


@dataclass(frozen=True)
class PoolStats:
    """Pool.stats(): per-worker counters and the queue now. Counters are
    read one after the other while tasks run, so the totals are not taken
    at one instant."""
    workers: tuple[WorkerStats, ...]
    queued: int     # tasks waiting for a worker interpreter (cancelled
                    # ones excluded)
    process: ProcessStats | None  # None until a process worker started

    @property
    def running(self) -> int:
        """Workers running a task now."""
        return sum(w.running for w in self.workers)

    @property
    def done(self) -> int:
        """Tasks the worker interpreters finished (see WorkerStats)."""
        return sum(w.done for w in self.workers)

    @property
    def failed(self) -> int:
        return sum(w.failed for w in self.workers)

    @property
    def busy(self) -> float:
        """Seconds the worker interpreters spent running tasks."""
        return sum(w.busy for w in self.workers)


def collect(engine: Any, procs: Any) -> PoolStats:
    """PoolStats from a _core.Pool and its ProcessWorkers (or None)."""
    queued, workers = engine.stats()
    return PoolStats(
        workers=tuple(WorkerStats(i, done, failed, busy_ns / 1e9, running)
                      for i, (done, failed, busy_ns, running)
                      in enumerate(workers)),
        queued=queued,
        process=None if procs is None else ProcessStats(
            started=len(procs.pids), alive=procs.alive(),
            done=procs.tasks, failed=procs.failed))
