"""Module-level functions for the progress, amap and stats tests (workers
import functions by module and name)."""


def wait_event(ev, value, timeout=30):
    """value once ev is set; ("timeout", value) if it never was."""
    return value if ev.wait(timeout) else ("timeout", value)


def gate(i, ev):
    """i at once for i == 0, else once ev is set."""
    if i != 0:
        ev.wait(30)
    return i
