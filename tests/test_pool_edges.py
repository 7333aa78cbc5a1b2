"""multigil.Pool at its edges: exit, shutdown from several threads, signals,
cancellation seen by wait(), callbacks on worker threads, broken-pool
messages, argument checks. Each test is the regression test of a defect
(issue #7); most run in a subprocess because the defect is a crash or a
hang at exit."""
import concurrent.futures as cf
import os
import signal
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


def script_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, os.path.join(ROOT, "tests"), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run_script(code, timeout=60, **extra_env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout,
                          env=script_env(**extra_env))


def interrupt_script(code, ready, delays, timeout=60):
    """Runs code in a fresh interpreter, waits for it to print the line
    `ready`, then sends SIGINT after each delay in turn; returns (stdout
    after `ready`, stderr, return code)."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=script_env())
    try:
        assert proc.stdout.readline().strip() == ready
        for delay in delays:
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Fatal Python error" not in err, err
    return out, err, proc.returncode


def assert_clean_exit(r):
    assert "Fatal Python error" not in r.stderr, r.stderr
    assert "remaining subinterpreters" not in r.stderr, r.stderr
    assert r.returncode == 0, (r.returncode, r.stderr)


# ---- exit ----

def test_pool_whose_last_reference_dies_on_its_worker_ends_before_exit():
    """The pool is orphaned in a done-callback on its own worker; the exit
    path must still find it and end its interpreters (3.12 aborted with
    'remaining subinterpreters', 3.13 segfaulted now and then)."""
    code = """
        import threading, multigil
        ev = threading.Event()
        p = multigil.Pool(4)
        fut = p.submit(abs, -1)
        fut.add_done_callback(lambda f: ev.set())
        del p, fut
        ev.wait()
    """
    for _ in range(6):
        assert_clean_exit(run_script(code))


def test_pool_left_open_inside_a_task_does_not_hang_shutdown():
    """A task leaves a pool open in a module global: the worker's
    interpreter end runs its atexit hooks, which end the inner pool. This
    used to deadlock on the process-global lock around Py_EndInterpreter."""
    r = run_script("""
        import multigil, helpers_pool as h
        with multigil.Pool(1) as p:
            print(p.submit(h.leave_inner_pool_open, 7).result())
        print("shut down")
    """, timeout=60)
    assert_clean_exit(r)
    assert r.stdout.split() == ["49", "shut", "down"]


def test_ctrl_c_at_exit_with_a_task_blocked_in_c_never_finalizes_early():
    """Second Ctrl-C at exit while a task sits in C code (time.sleep) for
    longer than the old 5 s give-up: the exit path keeps waiting, says so,
    and the process ends cleanly once the task returns (3.12 aborted)."""
    code = """
        import time, multigil
        p = multigil.Pool(1)
        f = p.submit(time.sleep, 7)
        time.sleep(0.3)
        print("exiting", flush=True)
    """
    _, err, rc = interrupt_script(code, "exiting", [0.5])
    assert "Ctrl-C at exit" in err
    assert "still waiting" in err
    assert rc == 0, (rc, err)


def test_third_ctrl_c_at_exit_leaves_at_once_without_finalizing():
    code = """
        import time, multigil
        p = multigil.Pool(1)
        f = p.submit(time.sleep, 30)
        time.sleep(0.3)
        print("exiting", flush=True)
    """
    _, err, rc = interrupt_script(code, "exiting", [0.5, 0.5], timeout=20)
    assert "exiting at once" in err
    assert rc == 130


def test_exit_hook_ends_every_pool_even_when_one_fails():
    """One pool's shutdown raising must not leave the others running."""
    r = run_script("""
        import multigil, multigil.pool as mp, helpers_pool as h
        good = multigil.Pool(1)
        assert good.submit(h.square, 2).result() == 4

        class Failing:
            name = "failing"
            closed = busy = 0
            done = True
            def close(self, cancel):
                raise OSError("cannot close")
            def join(self, timeout):
                raise OSError("cannot join")

        real = mp._core._live_pools
        mp._core._live_pools = lambda: [Failing()] + real()
        try:
            mp._end_pools_at_exit()
        finally:
            mp._core._live_pools = real
        print("done:", good._c.done)
    """)
    assert r.returncode == 0, r.stderr
    assert "done: True" in r.stdout
    assert r.stderr.count("cannot close") == 1
    assert "cannot join" in r.stderr


def test_no_pool_after_the_exit_hook_started():
    r = run_script("""
        import atexit, multigil
        def late():
            try:
                multigil.Pool(1)
            except RuntimeError as exc:
                print("refused:", exc)
        atexit.register(late)      # runs after multigil's hook (LIFO)
        with multigil.Pool(1) as p:
            pass
    """)
    assert r.returncode == 0, r.stderr
    assert "refused: cannot create a Pool after interpreter shutdown" \
        in r.stdout


# ---- shutdown, joins ----

def test_shutdown_wait_from_several_threads_at_once():
    p = multigil.Pool(2)
    f = p.submit(h.sleep_then, 0.3, "x")
    errors, started = [], threading.Barrier(4)

    def stop():
        started.wait()
        try:
            p.shutdown(wait=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=stop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "shutdown hung"
    assert errors == []
    assert f.result() == "x"
    assert p._c.done


def test_join_from_several_threads_leaves_no_worker_thread():
    before = set(h.mg_thread_names())
    for _ in range(5):
        p = multigil.Pool(2, name="joiners")
        p.submit(h.square, 3).result()
        ts = [threading.Thread(target=p.shutdown) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        assert not any(t.is_alive() for t in ts)
    leftover = [n for n in h.mg_thread_names() if "joiner" in n]
    assert leftover == [], leftover
    assert set(h.mg_thread_names()) <= before | set()


# ---- signals ----

def test_worker_threads_do_not_block_signals():
    with multigil.Pool(1) as p:
        assert p.submit(h.blocked_signals).result() == []
        assert p.submit(h.thread_blocked_signals).result() == []


def test_child_process_of_a_task_can_be_terminated():
    with multigil.Pool(1) as p:
        assert p.submit(h.terminate_child).result() == -signal.SIGTERM


def test_segfault_in_a_worker_reaches_faulthandler():
    # Under AddressSanitizer its own SIGSEGV handler would answer first.
    asan = os.environ.get("ASAN_OPTIONS")
    extra = {"ASAN_OPTIONS": asan + ":handle_segv=0"} if asan else {}
    r = run_script("""
        import faulthandler, multigil, helpers_pool as h
        faulthandler.enable()
        p = multigil.Pool(1)
        print(p.submit(h.segfault_this_thread).result())
    """, timeout=60, **extra)
    assert r.returncode == -signal.SIGSEGV, (r.returncode, r.stderr)
    assert "Fatal Python error: Segmentation fault" in r.stderr
    assert "no crash" not in r.stdout


# ---- cancellation seen by wait() and as_completed() ----

def test_wait_and_as_completed_return_a_cancelled_future():
    with multigil.Pool(1) as p:
        blocker = p.submit(h.sleep_then, 1.0, "b")
        queued = p.submit(h.square, 2)
        assert queued.cancel()
        done, not_done = cf.wait([queued], timeout=5)
        assert done == {queued} and not not_done
        assert list(cf.as_completed([queued], timeout=5)) == [queued]
        assert cf.wait([queued, blocker],
                       return_when=cf.FIRST_COMPLETED,
                       timeout=5).done == {queued}
        assert queued.cancel()       # again: still True, nothing breaks
        assert blocker.result() == "b"


def test_wait_returns_futures_cancelled_by_shutdown():
    p = multigil.Pool(1)
    blocker = p.submit(h.sleep_then, 0.5, "b")
    queued = [p.submit(h.square, i) for i in range(5)]
    p.shutdown(wait=False, cancel_futures=True)
    done, not_done = cf.wait(queued, timeout=5)
    assert not not_done and all(f.cancelled() for f in queued)
    assert blocker.result() == "b"
    p.shutdown()


def test_cancel_futures_on_a_fresh_pool_lets_some_run():
    """CPython's test_cancel_futures: 50 submits on a fresh 5-worker pool,
    then shutdown(cancel_futures=True): some ran, most were cancelled.
    Before, no worker had its interpreter yet, so all 50 were cancelled."""
    p = multigil.Pool(5)
    fs = [p.submit(time.sleep, 0.1) for _ in range(50)]
    p.shutdown(cancel_futures=True)
    cancelled = [f for f in fs if f.cancelled()]
    others = [f for f in fs if not f.cancelled()]
    assert len(cancelled) > 20
    assert others and all(f.done() and f.exception() is None
                          for f in others)


# ---- callbacks run on worker threads ----

def test_broadcast_in_a_done_callback_is_refused_not_a_deadlock():
    r = run_script("""
        import threading, multigil, helpers_pool as h
        p = multigil.Pool(2)
        out, ev = [], threading.Event()
        def cb(f):
            try:
                out.append(p.broadcast(h.square, 2))
            except RuntimeError as exc:
                out.append(str(exc))
            ev.set()
        p.submit(h.square, 1).add_done_callback(cb)
        assert ev.wait(20), "callback never finished"
        print(out[0])
        print(p.broadcast(h.square, 3))
        p.shutdown()
    """, timeout=60)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    assert "broadcast() cannot run on one of the pool's own workers" in first
    assert second == "[9, 9]"


def test_on_worker_thread_tells_callbacks_where_they_run():
    with multigil.Pool(1) as p:
        seen = []
        f = p.submit(h.sleep_then, 0.2, 1)
        f.add_done_callback(lambda f: seen.append(p._c.on_worker_thread()))
        f.result()
        p.shutdown()
        assert seen == [True]
        assert not p._c.on_worker_thread()


# ---- messages and argument checks ----

@pytest.mark.parametrize("n", [400, 401, 402])
def test_long_non_ascii_initializer_error_is_a_broken_pool(n):
    """Three lengths, so that a cut at a fixed byte count falls inside a
    three-byte character at least once."""
    p = multigil.Pool(1, initializer=h.init_fail_long, initargs=(n,))
    try:
        with pytest.raises(multigil.BrokenPool) as info:
            for _ in range(100):
                p.submit(h.square, 1).result()
                time.sleep(0.01)
        broken = p.broken
        assert isinstance(broken, str)
        assert "ValueError" in broken and "\u20ac" * 100 in broken
        assert "\u20ac" * 50 in str(info.value)
    finally:
        p.shutdown()


def test_core_submit_checks_kwargs():
    with multigil.Pool(1) as p:
        for bad in (["x"], ("a", 1), 3):
            with pytest.raises(TypeError, match="kwargs must be a dict"):
                p._c.submit(cf.Future(), h.identity, (1,), bad)
        with pytest.raises(TypeError, match="args must be a tuple"):
            p._c.submit(cf.Future(), h.identity, [1], None)
        assert p.submit(h.add, 1, b=2).result() == 3


@pytest.mark.parametrize("spin", [float("nan"), float("inf"), -1.0])
def test_core_pool_refuses_bad_spin(spin):
    with pytest.raises(ValueError, match="spin_us"):
        _core.Pool(1, list(sys.path), None, (), 0, spin, "bad-spin")


@pytest.mark.parametrize("value", ["nan", "1e300", "-5", "fast"])
def test_bad_spin_environment_is_ignored_with_a_warning(value):
    r = run_script("""
        import warnings, multigil, helpers_pool as h
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with multigil.Pool(1) as p:
                print(p.submit(h.square, 5).result())
        print(len([x for x in w if "MULTIGIL_SPIN_US" in str(x.message)]))
    """, MULTIGIL_SPIN_US=value)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == "25"
    assert lines[1] == ("0" if value == "1e300" else "1")


def test_ctrl_c_during_start_up_interrupts_the_constructor():
    code = """
        import multigil, time
        print("starting", flush=True)
        try:
            p = multigil.Pool(64)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        else:
            print("created", flush=True)
    """
    out, err, rc = interrupt_script(code, "starting", [0.15])
    assert out.strip() == "interrupted", (out, err)
    assert rc == 0, err


# ---- map's encoded window ----

def _wait_busy(pool, n):
    end = time.monotonic() + 30
    while pool._c.busy < n and time.monotonic() < end:
        time.sleep(0.005)
    assert pool._c.busy == n


def test_map_keeps_no_big_chunk_encoded_beyond_the_running_ones(tmp_path):
    """Issue 7, memory: with chunks above the byte budget, map keeps one
    encoded chunk per worker (the ones running), none waiting encoded."""
    gate = str(tmp_path / "go")
    big = ["x" * (2 << 20)] * 8
    with multigil.Pool(2) as p:
        it = p.map(h.hold_then_len, [gate] * 8, big, chunksize=1)
        try:
            _wait_busy(p, 2)
            assert p._c.queued_bytes == 0
        finally:
            open(gate, "w").close()
        assert list(it) == [2 << 20] * 8


def test_map_keeps_small_chunks_queued_ahead(tmp_path):
    gate = str(tmp_path / "go")
    with multigil.Pool(2) as p:
        it = p.map(h.hold_then_len, [gate] * 50, ["ab"] * 50, chunksize=1)
        try:
            _wait_busy(p, 2)
            assert p._c.queued_bytes > 0     # a backlog: no worker waits
        finally:
            open(gate, "w").close()
        assert list(it) == [2] * 50
