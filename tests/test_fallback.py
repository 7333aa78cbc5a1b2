"""Process fallback: memfd-backed blocks that a child process maps, tasks
that worker interpreters refuse re-run in process workers, the re-run
safety rule, explicit process tasks, lifetime and clean-up."""
import importlib.util
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool

import pytest

import multigil
import multigil._core as _core

import helpers_fallback as hf

HAVE_SINGLEPHASE = importlib.util.find_spec("_testsinglephase") is not None
needs_singlephase = pytest.mark.skipif(
    not HAVE_SINGLEPHASE, reason="needs the _testsinglephase test module "
    "(a single-phase extension) of this CPython build")
needs_numpy = pytest.mark.skipif(
    importlib.util.find_spec("numpy") is None, reason="needs NumPy")
needs_pandas = pytest.mark.skipif(
    importlib.util.find_spec("pandas") is None,
    reason="needs pandas (not installed for this Python)")

BIG = 1 << 18  # float64 items: 2 MiB, above MG_BLOCK_SHARED_MIN (1 MiB)


def dev_shm():
    try:
        return set(os.listdir("/dev/shm"))
    except FileNotFoundError:
        return set()


def gone(pid):
    """True once pid is no process: it ended and was reaped (a zombie
    still has its /proc entry)."""
    return not os.path.exists(f"/proc/{pid}")


@pytest.fixture
def fpool():
    p = multigil.Pool(2, process_workers=2)
    yield p
    p.shutdown()


# ---- step 1: blocks a child can map ----

def test_large_blocks_are_memfds_small_ones_heap():
    big = multigil.SharedArray(BIG, "f8")
    fd = _core._shared_export(big)[0]
    assert fd >= 0
    assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:")
    assert _core._shared_export(multigil.SharedArray(10, "f8"))[0] == -1


def test_import_maps_the_same_memory_and_checks_bounds():
    a = multigil.SharedArray(BIG, "f8")
    fd, nbytes, off, n, stride, code, frozen, _ = _core._shared_export(a)
    b = _core._shared_import(fd, nbytes, 8 * 5, 10, 16, code, False)
    b[0] = 4.5
    assert a[5] == 4.5
    with pytest.raises(ValueError, match="does not fit"):
        _core._shared_import(fd, nbytes, 0, BIG + 1, 8, code, False)
    with pytest.raises(ValueError, match="does not fit"):
        _core._shared_import(fd, nbytes, -8, 1, 8, code, False)
    with pytest.raises(ValueError, match="not a shared memory block"):
        _core._shared_import(fd, nbytes * 4, 0, 1, 8, code, False)
    with pytest.raises(ValueError, match="dtype"):
        _core._shared_import(fd, nbytes, 0, 1, 8, "x", False)
    with pytest.raises(ValueError, match="outside"):
        _core._shared_read(a, 0, nbytes + 1)


# ---- step 2: explicit process tasks, zero copy ----

def test_submit_process_runs_in_another_process(fpool):
    pid, x = fpool.submit_process(hf.where, 3).result()
    assert pid != os.getpid() and x == 3
    assert fpool.fallback_stats()["process_tasks"] == 1


def test_processes_start_only_when_needed(fpool):
    for i in range(3):  # one after another: one process serves them all
        fpool.submit_process(hf.where, i).result()
    assert fpool.fallback_stats()["processes_started"] == 1


def test_process_task_decorator_routes_submit_and_map(fpool):
    fn = multigil.process_task(hf.where)
    try:
        pids = {fpool.submit(fn, 1).result()[0]}
        pids |= {pid for pid, _ in fpool.map(fn, range(6))}
        assert os.getpid() not in pids
    finally:
        del hf.where._mg_process


def test_process_sees_callers_cwd_env_and_path(fpool, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MULTIGIL_FALLBACK_PROBE", "seen")
    cwd, value, path = fpool.submit_process(
        hf.env_view, "MULTIGIL_FALLBACK_PROBE").result()
    assert cwd == str(tmp_path) and value == "seen"
    assert os.path.dirname(hf.__file__) in path


def test_big_shared_array_crosses_without_copy(fpool):
    a = multigil.SharedArray(BIG, "i8")
    assert fpool.submit_process(hf.fill, a[::2], 7).result() == BIG // 2
    assert a[0] == 7 and a[1] == 0 and a[BIG - 2] == 7


def test_returned_argument_is_the_callers_block(fpool):
    a = multigil.SharedArray(BIG, "i8")
    back = fpool.submit_process(hf.same, a[10:20]).result()
    back[0] = 99
    assert a[10] == 99


def test_small_array_is_copied_in_and_out(fpool):
    a = multigil.SharedArray(8, "i8")
    assert _core._shared_export(a)[0] == -1
    fpool.submit_process(hf.fill, a[2:5], 3).result()
    assert list(a) == [0, 0, 3, 3, 3, 0, 0, 0]


@pytest.mark.parametrize("n", [BIG, 10], ids=["memfd", "heap"])
def test_array_made_in_the_process_comes_back(fpool, n):
    a = fpool.submit_process(hf.make, n, 5).result()
    assert isinstance(a, multigil.SharedArray)
    assert len(a) == n and a[0] == 5 and a[n - 1] == 5
    a[0] = 6  # ours now: the process worker may have dropped its view
    assert a[0] == 6


def inode(a):
    return os.fstat(_core._shared_export(a)[0]).st_ino


def test_process_worker_keeps_a_mapping_until_the_block_is_freed():
    """The mapping cache: a block stays mapped in the process worker
    between tasks, and is dropped before the next message once the caller
    freed it, or, with no next message, when the worker is idle."""
    p = multigil.Pool(1, process_workers=1)
    try:
        a = multigil.SharedArray(BIG, "f8")
        b = multigil.SharedArray(BIG, "f8")
        ia, ib = inode(a), inode(b)
        assert ia in p.submit_process(hf.mapped, a).result()
        assert ia in p.submit_process(hf.mapped).result()  # still mapped
        assert p.submit_process(hf.fill, a[:3], 2).result() == 3
        assert a[2] == 2.0  # the cached mapping is the caller's memory
        del a
        now = p.submit_process(hf.mapped, b).result()
        assert ia not in now and ib in now
        pid = p._procs.pids[0]
        del b
        deadline = time.monotonic() + 60
        while ib in hf.memfd_inodes(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ib not in hf.memfd_inodes(pid)  # dropped while idle
    finally:
        p.shutdown()


def test_block_mapped_by_two_process_workers_is_dropped_once_freed(tmp_path):
    """Regression: each worker's record of its mappings held a private
    view of its own, so a block that two process workers had mapped was
    never seen freed and stayed mapped in both."""
    p = multigil.Pool(1, process_workers=2)
    flag = tmp_path / "go"
    try:
        a = multigil.SharedArray(BIG, "f8")
        ia = inode(a)
        fs = [p.submit_process(hf.hold_until, str(flag), a) for _ in range(2)]
        while not all(f.running() for f in fs):  # one on each worker
            time.sleep(0.01)
        flag.write_text("")
        pids = {f.result() for f in fs}
        assert len(pids) == 2
        del a, fs
        deadline = time.monotonic() + 60
        while any(ia in hf.memfd_inodes(pid) for pid in pids) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(ia in hf.memfd_inodes(pid) for pid in pids)
    finally:
        flag.write_text("")
        p.shutdown()


def test_task_queued_while_a_worker_takes_one_gets_a_new_process(
        monkeypatch, tmp_path):
    """Regression: a serving thread that had just taken a task still
    counted as idle until it got back from the queue, so a task submitted
    in that moment started no process and waited behind the first one
    (which, waiting for the second, hung the two-worker test under ASan).
    The moment is widened here: the taking thread pauses after get()."""
    from multigil import _fallback
    orig = _fallback._Tasks.get

    def slow_get(self, worker, timeout=None):
        item = orig(self, worker, timeout)
        if isinstance(item, tuple):
            time.sleep(1.0)
        return item

    monkeypatch.setattr(_fallback._Tasks, "get", slow_get)
    p = multigil.Pool(1, process_workers=2)
    flag = tmp_path / "go"
    try:
        first = p.submit_process(hf.hold_until, str(flag), None)
        deadline = time.monotonic() + 30
        while p._procs._queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.001)  # until the first serving thread took it
        second = p.submit_process(hf.hold_until, str(flag), None)
        deadline = time.monotonic() + 20
        while not (first.running() and second.running()) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.running() and second.running(), \
            "the second task waited behind the first: no second process"
        flag.write_text("")
        assert first.result(60) != second.result(60)
    finally:
        flag.write_text("")
        p.shutdown()


def test_mapping_cache_is_bounded(monkeypatch):
    from multigil import _mapcache
    monkeypatch.setattr(_mapcache, "MAX_ENTRIES", 2)
    p = multigil.Pool(1, process_workers=1)
    try:
        arrays = [multigil.SharedArray(BIG, "i8") for _ in range(5)]
        for a in arrays:
            p.submit_process(hf.mapped, a).result()
        mine = {inode(a) for a in arrays}
        # the 2 kept, and the one the last message brought
        assert len(p.submit_process(hf.mapped).result() & mine) <= 3
        assert inode(arrays[-1]) in p.submit_process(hf.mapped).result()
    finally:
        p.shutdown()


def test_cached_writable_mapping_is_not_used_after_freeze(fpool):
    a = multigil.SharedArray(BIG, "i8")
    assert fpool.submit_process(hf.fill, a[:4], 1).result() == 4
    a.freeze()
    with pytest.raises(TypeError, match="read-only"):
        fpool.submit_process(hf.fill, a[:4], 2).result()
    assert a[0] == 1


def test_cancel_and_shutdown_cancel_futures_of_process_tasks(tmp_path):
    p = multigil.Pool(1, process_workers=1)
    flag = tmp_path / "go"
    try:
        first = p.submit_process(hf.wait_file, str(flag))
        while not first.running():  # taken by the process worker
            time.sleep(0.01)
        queued = [p.submit_process(hf.where, i) for i in range(3)]
        assert queued[0].cancel()
        p.shutdown(wait=False, cancel_futures=True)
        flag.write_text("")
        assert first.result() != os.getpid()
        assert all(f.cancelled() for f in queued)
    finally:
        flag.write_text("")
        p.shutdown()


def test_pool_dropped_without_shutdown_ends_its_processes():
    import gc
    p = multigil.Pool(1)
    p.submit_process(hf.where).result()
    procs = p._procs
    pids = list(procs.pids)
    del p
    gc.collect()
    deadline = time.monotonic() + 30
    while procs.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    for w in list(procs._threads):
        w.thread.join(30)
    assert all(gone(pid) for pid in pids)


def test_frozen_array_is_read_only_in_the_process(fpool):
    a = multigil.SharedArray(BIG, "i8")
    a.freeze()
    with pytest.raises(TypeError, match="read-only"):
        fpool.submit_process(hf.fill, a, 1).result()


def test_exception_keeps_type_and_remote_traceback(fpool):
    with pytest.raises(ValueError, match="boom") as info:
        fpool.submit_process(hf.fail, "boom").result()
    cause = info.value.__cause__
    assert isinstance(cause, multigil.RemoteTraceback)
    assert "in fail" in str(cause) and "helpers_fallback.py" in str(cause)


def test_map_chunk_failure_in_a_process(fpool):
    fn = multigil.process_task(hf.fail)
    try:
        with pytest.raises(ValueError, match="x"):
            list(fpool.map(fn, ["x"]))
    finally:
        del hf.fail._mg_process


def test_unpicklable_argument_raises_at_submit(fpool):
    """As on the interpreter route: NotShareableError from submit, naming
    the value, before anything is queued or a process started."""
    import threading
    with pytest.raises(multigil.NotShareableError,
                       match=r"argument 1 .*_thread\.lock.*process"):
        fpool.submit_process(hf.where, threading.Lock())
    with pytest.raises(multigil.NotShareableError, match="keyword 'x'"):
        fpool.submit_process(hf.where, x=threading.Lock())
    assert fpool._procs is None or not fpool._procs.pids
    assert fpool.submit_process(hf.where, 1).result()[1] == 1


def test_unpicklable_item_raises_at_map_on_the_process_route(fpool):
    import threading
    fn = multigil.process_task(hf.where)
    try:
        with pytest.raises(multigil.NotShareableError, match="_thread.lock"):
            fpool.map(fn, [1, threading.Lock()])
        with pytest.raises(multigil.NotShareableError, match="_thread.lock"):
            fpool.submit(fn, threading.Lock())
    finally:
        del hf.where._mg_process


def test_lambda_crosses_as_code(fpool):
    assert fpool.submit_process(lambda x: x * 2, 21).result() == 42


def test_killed_worker_fails_its_task_and_is_replaced(fpool):
    before = dev_shm()
    a = multigil.SharedArray(BIG, "f8")
    with pytest.raises(BrokenProcessPool, match="died"):
        fpool.submit_process(hf.die, a).result()
    pid, _ = fpool.submit_process(hf.where).result()
    assert pid != os.getpid()
    del a
    assert dev_shm() == before  # memfds have no name: nothing to leak


def test_shutdown_ends_process_workers():
    p = multigil.Pool(1)
    p.submit_process(hf.where).result()
    pids = p._procs.pids
    p.shutdown()
    assert pids and all(gone(pid) for pid in pids)
    assert p.fallback_stats()["process_workers"] == 0
    with pytest.raises(RuntimeError, match="after shutdown"):
        p.submit_process(hf.where)


def test_exit_hook_ends_process_workers(tmp_path):
    """A pool never shut down: the exit hook finishes the queued process
    task and ends the worker processes."""
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{os.path.dirname(hf.__file__)!r},
                        {os.path.dirname(os.path.dirname(multigil.__file__))!r}]
        import multigil, helpers_fallback as hf
        if __name__ == "__main__":
            p = multigil.Pool(1)
            pid, _ = p.submit_process(hf.where).result()
            p.submit_process(hf.touch, {str(tmp_path / "late")!r})  # queued
            print(pid, flush=True)
    """))
    before = dev_shm()
    out = subprocess.run([sys.executable, str(script)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "late").exists()  # queued work ran before the end
    assert gone(int(out.stdout.split()[0]))
    assert dev_shm() == before


# ---- step 2: interpreters refuse, processes re-run ----

@needs_singlephase
def test_refused_module_reruns_in_a_process_and_is_learned(fpool, caplog):
    import helpers_fallback_refused as hr
    with caplog.at_level(logging.WARNING, logger="multigil"):
        pid, y = fpool.submit(hr.pid_plus, 1).result()
        assert pid != os.getpid() and y == 2
        assert [r for _, r in fpool.map(hr.pid_plus, range(5))] == \
            [1, 2, 3, 4, 5]
    stats = fpool.fallback_stats()
    assert stats["reruns"] == 1  # later calls went straight to processes
    (name, why), = stats["process_functions"].items()
    assert name == "helpers_fallback_refused.pid_plus"
    assert "_testsinglephase does not support loading in subinterpreters" \
        in why
    records = [r for r in caplog.records if "pid_plus" in r.getMessage()]
    assert len(records) == 1


@needs_singlephase
def test_refused_map_reruns_chunks():
    import helpers_fallback_refused as hr
    p = multigil.Pool(2)
    try:
        assert [r for _, r in p.map(hr.pid_plus, range(8), chunksize=2)] \
            == list(range(1, 9))
        assert p.fallback_stats()["reruns"] >= 1
    finally:
        p.shutdown()


@needs_singlephase
def test_rerun_passes_shared_arrays(fpool):
    import helpers_fallback_refused as hr
    a = multigil.SharedArray.from_iterable(range(BIG), "i8")
    fpool.submit(hr.twice, a).result()
    assert a[3] == 6 and a[BIG - 1] == 2 * (BIG - 1)


@needs_singlephase
def test_fallback_none_keeps_the_import_error():
    import helpers_fallback_refused as hr
    p = multigil.Pool(1, fallback=None)
    try:
        with pytest.raises(ValueError, match="cannot decode") as info:
            p.submit(hr.pid_plus, 1).result()
        assert "does not support loading in subinterpreters" in \
            str(info.value)
        assert p._procs is None  # no process was started
    finally:
        p.shutdown()


@needs_singlephase
def test_refusal_after_an_effect_is_not_rerun(fpool, tmp_path):
    """The rule: re-run only when the interpreter refused while decoding
    the task (the function never ran). imports_late writes a line, then
    imports: the error stands (with a note), the line is written once,
    and the next call goes to a process directly."""
    log = tmp_path / "effects"
    with pytest.raises(ImportError, match="subinterpreters") as info:
        fpool.submit(hf.imports_late, str(log)).result()
    assert "was not re-run in a process" in "".join(info.value.__notes__)
    assert log.read_text() == "ran\n"
    assert fpool.fallback_stats()["reruns"] == 0
    assert fpool.submit(hf.imports_late, str(log)).result() != os.getpid()
    assert log.read_text() == "ran\nran\n"


def test_broadcast_of_a_process_function_runs_once_per_process_worker():
    p = multigil.Pool(1, process_workers=2)
    fn = multigil.process_task(hf.where)
    try:
        out = p.broadcast(fn, 5)
        assert len(out) == 2 and all(x == 5 for _, x in out)
        pids = {pid for pid, _ in out}
        assert len(pids) == 2 and os.getpid() not in pids
        assert pids == set(p._procs.pids)  # every process worker started
        assert {pid for pid, _ in p.broadcast(fn)} == pids  # the same ones
    finally:
        del hf.where._mg_process
        p.shutdown()


def test_broadcast_to_processes_after_shutdown_raises():
    p = multigil.Pool(1)
    p.shutdown()
    fn = multigil.process_task(hf.where)
    try:
        with pytest.raises(RuntimeError, match="after shutdown"):
            p.broadcast(fn)
    finally:
        del hf.where._mg_process


@needs_singlephase
def test_broadcast_refused_by_every_interpreter_goes_to_processes():
    """Refused while decoding in every interpreter (nothing ran): the
    pool learns the route and runs it once on every process worker."""
    import helpers_fallback_refused as hr
    p = multigil.Pool(2, process_workers=2)
    try:
        out = p.broadcast(hr.pid_plus, 1)
        assert [y for _, y in out] == [2, 2]
        assert len({pid for pid, _ in out} - {os.getpid()}) == 2
        assert "helpers_fallback_refused.pid_plus" in \
            p.fallback_stats()["process_functions"]
    finally:
        p.shutdown()


@needs_singlephase
def test_broadcast_refused_while_running_is_not_rerun(tmp_path):
    log = tmp_path / "effects"
    p = multigil.Pool(1, process_workers=1)
    try:
        with pytest.raises(ImportError, match="subinterpreters"):
            p.broadcast(hf.imports_late, str(log))
        assert log.read_text() == "ran\n"  # ran once, in the interpreter
        assert p.broadcast(hf.imports_late, str(log))[0] != os.getpid()
    finally:
        p.shutdown()


def test_fallback_argument_is_checked():
    with pytest.raises(ValueError, match="fallback"):
        multigil.Pool(1, fallback="thread")
    with pytest.raises(ValueError, match="process_workers"):
        multigil.Pool(1, process_workers=0)


def test_no_process_starts_for_interpreter_work(fpool):
    assert fpool.submit(hf.where, 1).result()[0] == os.getpid()
    assert fpool._procs is None


# ---- step 3: the seed article's examples, written the naive way ----

@needs_numpy
def test_example_b_numpy_normalisation_on_a_shared_array(fpool):
    import numpy as np
    import helpers_fallback_np as hn
    a = multigil.SharedArray.from_iterable(
        (float(i % 97) for i in range(BIG)), "f8")
    want = (np.asarray(a) - np.asarray(a).mean()) / np.asarray(a).std()
    got = fpool.submit(hn.normalize, a).result()
    np.testing.assert_allclose(got, want)
    parts = a.split(2)
    fpool.map(hn.normalize_in_place, parts)  # eager: all run
    list(fpool.map(hn.total, parts))
    assert fpool.fallback_stats()["process_functions"]


@needs_numpy
def test_numpy_writes_are_the_callers(fpool):
    import numpy as np
    import helpers_fallback_np as hn
    a = multigil.SharedArray(BIG, "f8")
    back = fpool.submit(hn.add_one, a).result()
    assert np.asarray(a).sum() == BIG
    back[0] = 5.0
    assert a[0] == 5.0


@needs_pandas
def test_example_a_pandas_chunk_mean(fpool):
    import pandas as pd
    import helpers_fallback_np as hn
    df = pd.DataFrame({"value": [float(i) for i in range(1000)]})
    chunks = [df.iloc[i:i + 250] for i in range(0, 1000, 250)]
    want = [c["value"].mean() for c in chunks]
    assert list(fpool.map(hn.chunk_mean, chunks)) == want


@needs_pandas
def test_example_a_without_a_copy_through_a_table(fpool):
    import helpers_fallback_np as hn
    t = multigil.Table.from_pydict({"value": [float(i) for i in range(BIG)],
                                    "k": list(range(BIG))})
    chunks = t.split(4)
    want = [sum(c["value"].to_pylist()) / len(c) for c in chunks]
    assert list(fpool.map(hn.chunk_mean_shared, chunks)) == want
    assert fpool.fallback_stats()["process_functions"]


@needs_pandas
def test_pandas_frame_in_a_process_is_the_callers_memory(fpool):
    import helpers_fallback_np as hn
    a = multigil.SharedArray(BIG, "f8")
    seen, shared, pid = fpool.submit(hn.frame_sees, {"v": a}, "v",
                                     42.0).result()
    assert pid != os.getpid() and shared and seen == 42.0
    assert a[0] == 42.0  # the worker's write is the caller's
    t = multigil.Table.from_pydict({"value": [0.0] * BIG})
    chunk = t.split(2)[1]  # a view at an offset into the block
    seen, shared, _ = fpool.submit(hn.frame_sees, chunk, "value",
                                   7.0).result()
    assert shared and seen == 7.0
    assert t["value"][BIG // 2] == 7.0 and t["value"][0] == 0.0


@needs_pandas
def test_pandas_frame_views_and_copies_by_column_type():
    import numpy as np
    t = multigil.Table.from_pydict({
        "f": [1.5, None], "i": [1, 2], "b": [True, False],
        "n": [1, None], "s": ["x", None]})
    df = multigil.pandas_frame(t)
    for name in ("f", "i", "b"):
        assert np.shares_memory(df[name].to_numpy(),
                                np.asarray(t[name].values)), name
    assert np.isnan(df["f"][1]) and df["i"].tolist() == [1, 2]
    assert df["n"].isna().tolist() == [False, True]
    assert df["s"].tolist()[0] == "x" and df["s"].isna().tolist()[1]
    with pytest.raises(TypeError, match="not a SharedArray"):
        multigil.pandas_frame({"x": [1, 2]})
    with pytest.raises(TypeError, match="Table or a mapping"):
        multigil.pandas_frame(3)


def test_block_refs_counts_the_views_of_a_block():
    a = multigil.SharedArray(BIG, "f8")
    n = _core._shared_block_refs(a)
    v = a[1:3]
    assert _core._shared_block_refs(a) == n + 1
    del v
    assert _core._shared_block_refs(a) == n


def test_imported_block_fd_is_close_on_exec():
    import fcntl
    a = multigil.SharedArray(BIG, "f8")
    fd, nbytes, _, n, stride, code, _, _ = _core._shared_export(a)
    b = _core._shared_import(fd, nbytes, 0, n, stride, code, False)
    mine = _core._shared_export(b)[0]
    assert mine != fd
    assert fcntl.fcntl(mine, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_tasks_submitted_while_shutting_down_all_finish():
    """Regression: a process task queued just as shutdown() queued its stop
    marks could land behind them and never finish (its Future pending
    forever). Every Future that submit returned must end."""
    for _ in range(10):
        p = multigil.Pool(1, process_workers=2)
        p.submit_process(hf.where).result()  # the workers are up
        got, go = [], threading.Event()

        def submitter():
            go.set()
            while True:
                try:
                    got.append(p.submit_process(hf.where))
                except RuntimeError:  # shut down: no more submits
                    return

        t = threading.Thread(target=submitter)
        t.start()
        go.wait()
        p.shutdown(wait=True)
        t.join(30)
        assert not t.is_alive()
        done, pending = cf.wait(got, timeout=30)
        assert not pending


GC_IN_REGISTER = textwrap.dedent("""
    import gc, sys
    sys.path.insert(0, sys.argv[1])
    import multigil
    from multigil import _fallback

    class CollectingSet(set):
        def add(self, x):  # a collection inside _register's lock
            gc.collect()
            super().add(x)

    def main():
        _fallback._live = CollectingSet(_fallback._live)
        p = multigil.Pool(1, process_workers=1)
        assert p.submit_process(abs, -1).result() == 1
        p.shutdown()
        cycle = [p]
        cycle.append(cycle)  # ended by the collector, its finalizer then
        del p, cycle
        q = multigil.Pool(1, process_workers=1)
        print(q.submit_process(abs, -2).result())
        q.shutdown()

    if __name__ == "__main__":
        main()
""")


def test_a_pool_collected_while_another_registers_does_not_deadlock(
        tmp_path):
    """A dropped Pool's finalizer (its process workers' shutdown) run by
    a garbage collection while this thread held the registry's lock, as
    3.12+ can at any bytecode: the lock was not reentrant and the test
    run hung (CI, test_broadcast_of_a_process_function_runs_once_...)."""
    script = tmp_path / "gc_in_register.py"
    script.write_text(GC_IN_REGISTER)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, str(script), root],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2"]
