"""multigil.Pool: the concurrent.futures.Executor over worker interpreters."""
import asyncio
import concurrent.futures as cf
import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import multigil
import multigil._core as _core
import helpers_pool as h

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(code, timeout=60, **kw):
    """Run code in a fresh interpreter with multigil and the helpers on
    sys.path; returns the CompletedProcess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, os.path.join(ROOT, "tests"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)


# ---- basics ----

def test_is_an_executor(pool):
    assert isinstance(pool, cf.Executor)
    assert pool.workers == 2


def test_submit_result(pool):
    assert pool.submit(h.square, 12).result(timeout=30) == 144


def test_submit_args_kwargs(pool):
    assert pool.submit(h.add, 1, 2, c=3).result(timeout=30) == 6
    assert pool.submit(h.add, a=5).result(timeout=30) == 5


def test_runs_in_other_interpreters(pool):
    ids = {pool.submit(h.interp_id).result(timeout=30) for _ in range(20)}
    assert _core.interpreter_id() == 0
    assert 0 not in ids
    assert ids <= set(pool.broadcast(h.interp_id))


def test_broadcast_runs_once_per_worker():
    with multigil.Pool(3) as p:
        ids = p.broadcast(h.interp_id)
    assert len(ids) == 3 and len(set(ids)) == 3


def test_max_workers_alias():
    with multigil.Pool(max_workers=1) as p:
        assert p.workers == 1
        assert p.submit(h.square, 3).result(timeout=30) == 9


def test_default_workers_is_cpu_count():
    with multigil.Pool() as p:
        assert p.workers == len(os.sched_getaffinity(0))


def test_many_futures_wait_and_as_completed(pool):
    futs = [pool.submit(h.square, i) for i in range(200)]
    done, not_done = cf.wait(futs, timeout=60)
    assert not not_done
    assert sorted(f.result() for f in cf.as_completed(futs)) == \
        sorted(i * i for i in range(200))


def test_add_done_callback(pool):
    seen = []
    ev = threading.Event()

    def cb(f):
        seen.append(f.result())
        ev.set()
    pool.submit(h.square, 4).add_done_callback(cb)
    assert ev.wait(30)
    assert seen == [16]


def test_asyncio_wrap_future_and_arun(pool):
    async def main():
        a = await asyncio.wrap_future(pool.submit(h.square, 5))
        b = await pool.arun(h.add, 1, b=2)
        c = await asyncio.gather(*(pool.arun(h.square, i) for i in range(5)))
        return a, b, c
    assert asyncio.run(main()) == (25, 3, [0, 1, 4, 9, 16])


def test_repr_and_context_manager():
    with multigil.Pool(1, name="demo") as p:
        assert "demo" in repr(p) and "running" in repr(p)
    assert "closed" in repr(p)


# ---- map / starmap ----

def test_map_ordered(pool):
    assert list(pool.map(h.square, range(1000))) == \
        [i * i for i in range(1000)]


def test_map_several_iterables_stops_at_shortest(pool):
    assert list(pool.map(h.add, [1, 2, 3], [10, 20])) == [11, 22]


def test_map_tuple_items_are_not_unpacked(pool):
    items = [(1, 2), (3, 4)]
    assert list(pool.map(h.identity, items)) == items


def test_map_empty(pool):
    assert list(pool.map(h.square, [])) == []


def test_map_generator_input_without_len(pool):
    gen = (i for i in range(5000))
    assert list(pool.map(h.square, gen)) == [i * i for i in range(5000)]


@pytest.mark.parametrize("chunksize", [1, 7, 256, 10_000])
def test_map_chunksizes(pool, chunksize):
    assert list(pool.map(h.square, range(300), chunksize=chunksize)) == \
        [i * i for i in range(300)]


def test_map_unordered(pool):
    out = list(pool.map(h.square, range(500), ordered=False))
    assert sorted(out) == [i * i for i in range(500)]


def test_map_exception_raised_at_its_position(pool):
    it = pool.map(h.fail_if, range(100), itertools.repeat(37),
                  chunksize=10)
    got = []
    with pytest.raises(KeyError) as ei:
        for v in it:
            got.append(v)
    assert got == list(range(37))
    assert isinstance(ei.value.__cause__, multigil.RemoteTraceback)


def test_map_timeout(pool):
    it = pool.map(h.sleep_then, [0.5, 0.5], [1, 2], timeout=0.05)
    with pytest.raises(TimeoutError):
        list(it)


def test_map_is_eager_like_executor_map(tmp_path, pool):
    path = str(tmp_path / "x")
    pool.map(h.write_file, [path], ["hi"])  # never iterated
    assert pool.submit(h.wait_for_file, path, 30).result(timeout=60)


def test_map_buffersize_bounds_read_ahead(pool):
    consumed = itertools.count()

    def source():
        for i in itertools.count():
            next(consumed)
            yield i
    it = pool.map(h.square, source(), chunksize=4, buffersize=3)
    first = list(itertools.islice(it, 10))
    assert first == [i * i for i in range(10)]
    pulled = next(consumed)
    # 10 items consumed -> at most 3 chunks of 4 in flight beyond them
    assert pulled <= 10 + 4 * 3 + 4
    it.close()


def test_map_argument_checks(pool):
    with pytest.raises(ValueError, match="chunksize"):
        pool.map(h.square, [1], chunksize=0)
    with pytest.raises(ValueError, match="buffersize"):
        pool.map(h.square, [1], buffersize=0)
    with pytest.raises(TypeError, match="buffersize"):
        pool.map(h.square, [1], buffersize=1.5)
    with pytest.raises(TypeError, match="callable"):
        pool.map(42, [1])


def test_starmap(pool):
    assert list(pool.starmap(h.add, [(1, 2), [3, 4], (5,)])) == [3, 7, 5]


def test_starmap_rejects_non_tuples(pool):
    with pytest.raises(TypeError):
        list(pool.starmap(h.add, [1, 2]))


# ---- failures ----

def test_exception_reraised_with_remote_traceback(pool):
    with pytest.raises(ValueError, match="bad value 7") as ei:
        pool.submit(h.fail, 7).result(timeout=30)
    cause = ei.value.__cause__
    assert isinstance(cause, multigil.RemoteTraceback)
    assert "helpers_pool.py" in str(cause) and "in fail" in str(cause)


@pytest.mark.parametrize("fn,exc", [(h.raise_system_exit, SystemExit),
                                    (h.raise_keyboard_interrupt,
                                     KeyboardInterrupt)])
def test_system_exit_fails_only_the_task(pool, fn, exc):
    with pytest.raises(exc):
        pool.submit(fn).result(timeout=30)
    assert pool.submit(h.square, 3).result(timeout=30) == 9
    assert len(pool.broadcast(h.interp_id)) == 2


def test_unsendable_result_fails_the_task_not_the_pool(pool):
    with pytest.raises(Exception) as ei:
        pool.submit(h.unpicklable_result).result(timeout=30)
    assert "lock" in str(ei.value).lower()
    assert pool.submit(h.square, 2).result(timeout=30) == 4


def test_not_callable_fails_at_submit(pool):
    with pytest.raises(TypeError, match="callable"):
        pool.submit(42)


def test_unsendable_argument_fails_at_submit(pool):
    with pytest.raises(multigil.NotShareableError, match="cannot send"):
        pool.submit(h.identity, threading.Lock())
    with pytest.raises(TypeError):
        pool.submit(h.identity, threading.Lock())


def test_single_phase_module_fails_with_import_error(pool):
    with pytest.raises(ImportError, match="_testsinglephase"):
        pool.submit(h.import_module, "_testsinglephase").result(timeout=30)
    assert pool.submit(h.square, 5).result(timeout=30) == 25


def test_bad_constructor_arguments():
    with pytest.raises(ValueError):
        multigil.Pool(0)
    with pytest.raises(TypeError):
        multigil.Pool("2")
    with pytest.raises(TypeError):
        multigil.Pool(2, max_workers=3)
    with pytest.raises(ValueError):
        multigil.Pool(1, max_tasks_per_worker=0)
    with pytest.raises(TypeError, match="initializer"):
        multigil.Pool(1, initializer=5)


# ---- initializer, environment, recycling ----

def test_initializer_runs_in_each_worker():
    with multigil.Pool(2, initializer=h.init_state, initargs=("ready",)) as p:
        assert p.broadcast(h.read_state) == ["ready", "ready"]


def test_failing_initializer_breaks_the_pool():
    p = multigil.Pool(2, initializer=h.init_fail)
    try:
        # Depending on timing the pool is already broken at the first
        # submit (which then raises) or breaks while the task is queued.
        try:
            f = p.submit(h.square, 2)
        except multigil.BrokenPool as e:
            assert "initializer says no" in str(e)
        else:
            with pytest.raises(multigil.BrokenPool,
                               match="initializer says no"):
                f.result(timeout=30)
            assert isinstance(f.exception(), cf.BrokenExecutor)
        with pytest.raises(cf.BrokenExecutor):
            p.submit(h.square, 3)
        assert "initializer says no" in p.broken
    finally:
        p.shutdown()


def test_workers_see_sys_path_cwd_and_environment(tmp_path, monkeypatch):
    mod = tmp_path / "user_mod_for_multigil.py"
    mod.write_text("def hello(x):\n    return 'hello ' + x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MULTIGIL_TEST_VAR", "42")
    import user_mod_for_multigil
    with multigil.Pool(1) as p:
        assert p.submit(user_mod_for_multigil.hello, "w").result(30) == \
            "hello w"
        assert p.submit(h.getcwd).result(30) == os.getcwd()
        assert p.submit(h.getenv, "MULTIGIL_TEST_VAR").result(30) == "42"
        assert str(tmp_path) in p.submit(h.sys_path).result(30)


def test_worker_threads_are_named():
    with multigil.Pool(2, name="named") as p:
        names = set(p.broadcast(h.thread_name))
    assert names == {"mg-named-w0", "mg-named-w1"}


def test_max_tasks_per_worker_replaces_interpreter():
    with multigil.Pool(1, max_tasks_per_worker=2) as p:
        ids = [p.submit(h.interp_id).result(30) for _ in range(6)]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[4] == ids[5]
    assert len(set(ids)) == 3


def test_max_tasks_keeps_initializer():
    with multigil.Pool(1, initializer=h.init_state, initargs=(7,),
                       max_tasks_per_worker=1) as p:
        assert [p.submit(h.read_state).result(30) for _ in range(3)] == \
            [7, 7, 7]


# ---- cancellation and shutdown ----

def test_cancel_queued_but_not_running(tmp_path):
    gate = str(tmp_path / "gate")
    with multigil.Pool(1) as p:
        running = p.submit(h.wait_for_file, gate, 30)
        queued = p.submit(h.square, 3)
        while not running.running():
            pass
        assert not running.cancel()
        assert queued.cancel()
        assert queued.cancelled()
        open(gate, "w").close()
        assert running.result(30) is True
        with pytest.raises(cf.CancelledError):
            queued.result()


def test_submit_after_shutdown_raises():
    p = multigil.Pool(1)
    p.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        p.submit(h.square, 1)
    p.shutdown()  # idempotent


def test_shutdown_waits_for_queued_work():
    p = multigil.Pool(2)
    futs = [p.submit(h.busy, 0.02) for _ in range(10)]
    p.shutdown(wait=True)
    assert all(f.done() and not f.cancelled() for f in futs)


def test_shutdown_cancel_futures(tmp_path):
    gate = str(tmp_path / "gate")
    p = multigil.Pool(1)
    first = p.submit(h.wait_for_file, gate, 30)
    while not first.running():
        pass
    rest = [p.submit(h.square, i) for i in range(5)]
    p.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in rest)
    open(gate, "w").close()
    p.shutdown(wait=True)
    assert first.result() is True


def test_dropped_pool_without_shutdown_does_not_hang():
    p = multigil.Pool(2)
    f = p.submit(h.square, 9)
    del p
    assert f.result(timeout=30) == 81


def test_repeated_create_destroy():
    before = _core._live_blocks()
    for _ in range(15):
        with multigil.Pool(2) as p:
            assert p.submit(h.square, 2).result(30) == 4
    assert _core._live_blocks() == before


# ---- process-level behaviour (subprocesses) ----

def test_exit_with_open_pool_finishes_pending_work(tmp_path):
    out = tmp_path / "out"
    r = run_script(f"""
        import multigil, helpers_pool as h
        p = multigil.Pool(2)
        for i in range(6):
            p.submit(h.write_file, {str(out)!r} + str(i), "x")
        p.submit(h.busy, 0.2)
        print("exiting")
    """)
    assert r.returncode == 0, r.stderr
    assert "exiting" in r.stdout
    assert sorted(os.listdir(tmp_path)) == [f"out{i}" for i in range(6)]
    assert "remaining subinterpreters" not in r.stderr
    assert "Fatal" not in r.stderr


def test_exit_with_idle_pool_is_clean():
    r = run_script("""
        import multigil, helpers_pool as h
        p = multigil.Pool(2)
        assert p.submit(h.square, 3).result() == 9
    """)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_ctrl_c_interrupts_the_wait_and_exit_is_clean():
    import signal
    code = """
        import atexit, multigil, helpers_pool as h, sys
        p = multigil.Pool(1)
        f = p.submit(h.busy, 60)
        # Registered after the pool: runs just before the pool's exit hook.
        atexit.register(print, "exit hook next", flush=True)
        print("waiting", flush=True)
        try:
            f.result()
        except KeyboardInterrupt:
            print("interrupted; task done:", f.done(), flush=True)
            raise
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        # The wait ended while the 60 s task was still running.
        assert proc.stdout.readline().strip() == \
            "interrupted; task done: False"
        # At exit the pool waits for the running task; a second Ctrl-C
        # makes it cancel and interrupt the task, and the process ends.
        assert proc.stdout.readline().strip() == "exit hook next"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in err
    assert "Fatal Python error" not in err and "Segmentation" not in err
    assert proc.returncode in (1, -signal.SIGINT, 130)


def test_fork_with_open_pool_warns():
    r = run_script("""
        import os, multigil, helpers_pool as h
        with multigil.Pool(1) as p:
            p.submit(h.square, 1).result()
        pid = os.fork()   # pool closed: no warning, child is fine
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr and "ok" in r.stdout


def test_import_on_old_python_is_refused():
    init = os.path.join(ROOT, "multigil", "__init__.py")
    src = open(init).read()
    assert "sys.version_info < (3, 12)" in src
    code = compile(src, init, "exec")
    fake_sys = type(sys)("sys")
    fake_sys.version_info = (3, 11, 9)
    with pytest.raises(ImportError, match="3.12 or newer"):
        exec(code, _globals_with_fake_sys(fake_sys))


def _globals_with_fake_sys(fake_sys):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "sys":
            return fake_sys
        return real_import(name, *a, **k)
    b = dict(vars(builtins))
    b["__import__"] = fake_import
    return {"__name__": "multigil_fake", "__builtins__": b}


def test_shutdown_wait_from_a_done_callback_raises_instead_of_hanging():
    p = multigil.Pool(1)
    errors = []
    ev = threading.Event()

    def cb(f):
        try:
            p.shutdown(wait=True)
        except RuntimeError as e:
            errors.append(str(e))
        ev.set()
    p.submit(h.square, 2).add_done_callback(cb)
    assert ev.wait(30)
    assert errors and "from one of them" in errors[0]
    p.shutdown()


def test_stdlib_modules_imported_first_in_a_worker_do_not_crash_main():
    # CPython 3.12.1 crashed here (double free) before multigil imported
    # these modules in the main interpreter first.
    r = run_script("""
        import multigil, helpers_pool as h
        with multigil.Pool(2) as p:
            for m in ("datetime", "hashlib", "decimal", "json", "re"):
                assert p.submit(h.import_module, m).result() == m
        import datetime, hashlib, decimal
        print(datetime.date(2020, 1, 2), hashlib.sha256(b"x").hexdigest()[:6],
              decimal.Decimal("1.5") * 2)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2020-01-02", "2d7116", "3.0"]


def test_stress_threads_submitting_and_cancelling():
    """Several threads submit and cancel at once: every future ends either
    cancelled or with its own correct result, and nothing is lost."""
    import random
    with multigil.Pool(2) as p:
        outcomes = []
        lock = threading.Lock()

        def client(seed):
            rng = random.Random(seed)
            futs = [(i, p.submit(h.square, i)) for i in range(400)]
            for _, f in futs:
                if rng.random() < 0.5:
                    f.cancel()
            for i, f in futs:
                ok = f.cancelled() or f.result(timeout=60) == i * i
                with lock:
                    outcomes.append(ok)
        threads = [threading.Thread(target=client, args=(s,))
                   for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(outcomes) == 1600 and all(outcomes)
        # the pool still serves after the storm
        assert p.submit(h.square, 11).result(timeout=30) == 121


def test_pending_tasks_fail_when_the_pool_breaks(tmp_path):
    """Tasks queued before the initializer fails get BrokenPool."""
    gate = str(tmp_path / "gate")
    p = multigil.Pool(1, initializer=h.wait_for_file, initargs=(gate, 30))
    try:
        futs = [p.submit(h.square, i) for i in range(3)]
        p2 = multigil.Pool(1, initializer=h.init_fail)
        futs2 = []
        for i in range(3):
            try:
                futs2.append(p2.submit(h.square, i))
            except multigil.BrokenPool:
                break
        for f in futs2:
            with pytest.raises(multigil.BrokenPool):
                f.result(timeout=30)
        p2.shutdown()
        open(gate, "w").close()
        assert [f.result(timeout=30) for f in futs] == [0, 1, 4]
    finally:
        p.shutdown()


def test_pool_kept_alive_only_by_a_future_ends_cleanly_at_exit():
    r = run_script("""
        import multigil, helpers_pool as h
        fut = multigil.Pool(2).submit(h.sleep_then, 0.1, "done")
        print(fut.result())
    """, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "done"
    assert "Fatal" not in r.stderr and "remaining" not in r.stderr


def test_pool_freed_by_its_own_worker_does_not_hang():
    """The last reference to a pool dies in the worker that completes its
    last future: the workers still end, and nothing waits for itself."""
    p = multigil.Pool(1, name="orphan")
    p.submit(h.sleep_then, 0.2, 1)
    del p
    deadline = time.monotonic() + 30
    while [n for n in h.mg_thread_names() if n.startswith("mg-orphan")]:
        assert time.monotonic() < deadline, "orphaned worker never exited"
        time.sleep(0.02)


def test_interrupt_does_not_wait_for_a_task_stuck_in_c():
    with multigil.Pool(1) as p:
        f = p.submit(h.c_bound, 60_000_000)
        # running() turns true a moment before the worker counts as busy
        while p._c.interrupt() == 0:
            assert not f.done()
        # interrupt() returned while the task is still inside sum()
        assert not f.done()
        with pytest.raises(SystemExit):
            f.result(timeout=120)
        assert p.submit(h.square, 4).result(timeout=30) == 16
