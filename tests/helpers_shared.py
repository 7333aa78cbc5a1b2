"""Worker-side helpers for test_shared.py / test_kernels.py: module-level
functions, so that pool workers can import them by name."""
import multigil
from multigil import kernels


def sum_in_worker(n):
    """Create a SharedArray inside the worker interpreter and reduce it."""
    a = multigil.SharedArray(n, dtype="f8")
    a[:] = range(n)
    view = a[::2]
    return (kernels.sum(a), a.mean(), view.sum(), len(view),
            multigil._core.interpreter_id())


def kernels_in_worker():
    a = multigil.SharedArray.from_iterable([5, -3, 7, 0], dtype="i4")
    a.sort()
    a += 1
    st = kernels.stats(a)
    return a.tolist(), tuple(st), memoryview(a).tolist()


def stats_of(view):
    """stats() of a view handed over by the caller (needs codec handles)."""
    return tuple(kernels.stats(view))


def hold_and_drop(view, rounds):
    """Make and drop more views of a view handed over (needs handles)."""
    total = 0.0
    for _ in range(rounds):
        parts = view.split(3)
        total += sum(p.sum() for p in parts)
        del parts
    return total


_held = []  # buffer exports a worker keeps between tasks


def hold_export(view):
    """Keep a writable memoryview of a view handed over (needs handles)."""
    _held.append(memoryview(view))
    return len(_held[-1])


def write_through_export(i, value):
    _held[-1][i] = value


def release_exports():
    n = len(_held)
    for m in _held:
        m.release()
    _held.clear()
    return n


def hold_export_and_try_write(view):
    m = memoryview(view)
    try:
        m[0] = 0.0
    except TypeError as exc:
        return m.readonly, str(exc)
    return m.readonly, None


def length_of(view):
    return len(view)


def stats_in_worker(values):
    """A Stats result made in a worker must come back as a Stats."""
    return kernels.stats(multigil.SharedArray.from_iterable(values, "f8"))


# ---- parked handles (multigil._core._shared_park): cross-interpreter
# lifetime tests that do not need the codec ----

def unpark_hold_and_drop(pid, rounds):
    return hold_and_drop(multigil._core._shared_unpark(pid), rounds)


def unpark_and_fill(pid, value):
    view = multigil._core._shared_unpark(pid)
    view.fill(value)
    return len(view), multigil._core.interpreter_id()


def park_new_array(n, value):
    """An array made in a worker, handed back as a parked handle."""
    a = multigil.SharedArray(n)
    a.fill(value)
    return multigil._core._shared_park(a[::2])


def unpark_and_try_write(pid):
    view = multigil._core._shared_unpark(pid)
    try:
        view[0] = 1.0
    except TypeError as exc:
        return view.readonly, str(exc)
    return view.readonly, None
