"""The cache of freed large blocks (src/base/block_cache.c): a freed memfd
block's mapping serves the next large block, which still reads as zeros
(or, for read_csv's columns, as exactly what was read); a block another
process may map is never reused; the memory goes back to the system on
its own, at once on request, and not at all with the cache turned off."""
import os
import subprocess
import sys
import textwrap
import time

import pytest

import multigil as mg
from multigil import _core
from multigil import SharedArray

N = 1 << 18  # 2 MiB of int64: a memfd block


def stats():
    return _core._block_cache()


def test_a_freed_block_serves_the_next_and_reads_as_zeros():
    _core._release_cached_memory()
    a = SharedArray(N, dtype="i8")
    for i in range(0, N, 997):
        a[i] = -1
    a[N - 1] = -1
    del a
    s = stats()
    assert s["entries"] == 1 and s["held_bytes"] >= 8 * N // 1024
    b = SharedArray(N, dtype="i8")
    assert stats()["hits"] == s["hits"] + 1
    assert b[N - 1] == 0 and all(b[i] == 0 for i in range(0, N, 997))


def test_a_larger_block_grows_a_cached_one_and_reads_as_zeros():
    _core._release_cached_memory()
    a = SharedArray(N, dtype="i8")
    a[N - 1] = 7
    del a
    b = SharedArray(4 * N, dtype="i8")
    assert stats()["entries"] == 0
    assert b[N - 1] == 0 and b[4 * N - 1] == 0


def test_release_gives_the_memory_back_now():
    a = SharedArray(N, dtype="i8")
    a[0] = 1
    del a
    assert stats()["entries"] >= 1
    _core._release_cached_memory()
    s = stats()
    assert s["entries"] == 0 and s["held_bytes"] == 0


def test_cached_memory_goes_back_on_its_own():
    _core._release_cached_memory()
    a = SharedArray(N, dtype="i8")
    a[0] = 1
    del a
    assert stats()["entries"] == 1
    deadline = time.monotonic() + 30
    while stats()["entries"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stats()["entries"] == 0 and stats()["held_bytes"] == 0


def test_a_block_shared_with_a_process_is_not_reused():
    _core._release_cached_memory()
    a = SharedArray(N, dtype="i8")
    fd = _core._shared_export(a)[0]
    assert fd >= 0
    puts = stats()["puts"]
    del a
    assert stats()["puts"] == puts and stats()["entries"] == 0


def run_child(code, **env):
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
        text=True, timeout=120, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_turned_off_it_keeps_nothing():
    out = run_child("""
        from multigil import SharedArray, _core
        a = SharedArray(1 << 18, dtype="i8"); a[0] = 1; del a
        s = _core._block_cache()
        print(s["limit_bytes"], s["puts"], s["entries"])
    """, MULTIGIL_BLOCK_CACHE_MB="0")
    assert out.split() == ["0", "0", "0"]


def test_a_limit_in_mb_is_taken():
    out = run_child("""
        from multigil import _core
        print(_core._block_cache()["limit_bytes"])
    """, MULTIGIL_BLOCK_CACHE_MB="3")
    assert int(out) == 3 << 20


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_after_a_fork_nothing_made_before_it_is_reused():
    out = run_child("""
        import os
        from multigil import SharedArray, _core
        cached = SharedArray(1 << 18, dtype="i8"); cached[0] = 1; del cached
        kept = SharedArray(1 << 18, dtype="i8")  # alive at the fork
        kept[5] = 5
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its cache was emptied; kept is shared
            s = _core._block_cache()
            os.write(w, b"%d" % s["entries"])
            os._exit(0)
        os.waitpid(pid, 0)
        child_entries = os.read(r, 16).decode()
        puts = _core._block_cache()["puts"]
        del kept  # the child mapped it: never reused
        s = _core._block_cache()
        print(child_entries, s["puts"] - puts)
    """)
    assert out.split() == ["0", "0"]


def write(path, rows):
    with open(path, "w", newline="") as f:
        f.write("a,b,c,d,e,f\n")
        f.writelines(rows)


def leave_stale_mappings(tmp_path, n, cell="-1"):
    """Reads and drops a table of 16 columns of n rows of cell (-1: int
    columns, so mappings full of 0xff bytes; t: bool columns of 1s): the
    cache then holds 16 mappings full of them."""
    stale = tmp_path / "stale.csv"
    with open(stale, "w", newline="") as f:
        f.write(",".join(f"s{k}" for k in range(16)) + "\n")
        f.writelines([",".join([cell] * 16) + "\n"] * n)
    _core._release_cached_memory()
    t = mg.read_csv(str(stale), workers=1, true_values=("t",))
    assert t["s15"].values[n - 1] == (-1 if cell == "-1" else True)
    del t
    assert stats()["entries"] == 16


@pytest.mark.parametrize("workers", [1, 2])
def test_read_csv_columns_hold_only_what_was_read(tmp_path, workers):
    """Columns of a read that takes the mappings a former read left full
    of -1 bytes: null rows hold 0 (NaN for floats) wherever the nulls
    fall: a column null in its first chunks and typed later (b), one null
    throughout (d), scattered nulls (e, and f as float)."""
    n = 60_000
    rows = []
    for i in range(n):
        b = "" if i < n // 2 else str(i)
        e = "" if i % 7 == 0 else str(i)
        f = "" if i % 5 == 0 else f"{i}.5"
        rows.append(f"{i},{b},{i},,{e},{f}\n")
    path = tmp_path / "nulls.csv"
    write(path, rows)
    leave_stale_mappings(tmp_path, n)
    hits = stats()["hits"]
    t = mg.read_csv(str(path), workers=workers, chunk_size=4096)
    assert stats()["hits"] > hits
    cols = {k: t[k].values.tolist() for k in "abcdef"}
    assert cols["a"] == list(range(n)) == cols["c"]
    assert cols["b"] == [0] * (n // 2) + list(range(n // 2, n))
    assert t["d"].type == "string" and cols["d"] == [0] * (n + 1)
    assert cols["e"] == [0 if i % 7 == 0 else i for i in range(n)]
    f = cols["f"]
    assert all((f[i] != f[i]) if i % 5 == 0 else f[i] == i + 0.5
               for i in range(n))
    assert t.to_pydict()["b"][n // 2 - 1:n // 2 + 1] == [None, n // 2]


@pytest.mark.parametrize("workers", [1, 2])
def test_read_csv_bool_chunks_all_null_hold_false(tmp_path, workers):
    """A bool column whose middle third is null, whole chunks of it, into
    the mappings of a former read's bool columns, full of 1s."""
    n = 600_000
    rows = [f"{i},{'' if n // 3 <= i < 2 * n // 3 else 'tf'[i % 2]}\n"
            for i in range(n)]
    path = tmp_path / "bools.csv"
    with open(path, "w", newline="") as f:
        f.write("a,c\n")
        f.writelines(rows)
    leave_stale_mappings(tmp_path, n, "t")
    hits = stats()["hits"]
    t = mg.read_csv(str(path), workers=workers, chunk_size=4096,
                    true_values=("t",), false_values=("f",))
    assert stats()["hits"] >= hits + 2
    assert t["c"].type == "bool"
    assert t["c"].values.tolist() == [
        False if n // 3 <= i < 2 * n // 3 else i % 2 == 0 for i in range(n)]


def test_read_csv_gives_back_what_a_larger_former_read_left(tmp_path):
    """A smaller read into the mappings of a larger one keeps no more of
    them than its own rows need."""
    big = tmp_path / "big.csv"
    write(big, [f"{i},{i},{i},{i},{i},{i}\n" for i in range(400_000)])
    small = tmp_path / "small.csv"
    write(small, [f"{i},{i},{i},{i},{i},{i}\n" for i in range(150_000)])
    _core._release_cached_memory()
    t = mg.read_csv(str(big), workers=1)
    del t
    held = stats()["held_bytes"]
    assert held >= 6 * 400_000 * 8
    hits = stats()["hits"]
    t = mg.read_csv(str(small), workers=1)
    assert stats()["hits"] >= hits + 6
    assert t["f"].values.tolist() == list(range(150_000))
    del t
    # the small read's blocks, back in the cache, hold about its rows
    assert stats()["held_bytes"] < held / 2


@pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                    reason="counts threads in /proc")
def test_no_thread_is_left_once_the_cache_is_empty():
    """The reaper ends with the cache empty: a fork then warns of no
    thread (Python's DeprecationWarning, an error here)."""
    out = run_child("""
        import os, time, warnings
        from multigil import SharedArray, _core
        def threads():
            with open("/proc/self/status") as f:
                return int(next(l for l in f
                                if l.startswith("Threads:")).split()[1])
        a = SharedArray(1 << 18, dtype="i8"); a[0] = 1; del a
        with_entry = threads()
        _core._release_cached_memory()
        deadline = time.monotonic() + 10
        while threads() > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        warnings.simplefilter("error")
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print(with_entry, threads())
    """)
    assert out.split() == ["2", "1"]
