"""multigil._output - logging records of worker interpreters, delivered to
the owner interpreter's logging (the text channel is C: src/py/output.c).

Worker side: when a task first imports logging (the C import hook calls
logging_spec), a handler on the worker's root logger sends each record as
a dict of plain values through the pool's output FIFO. Owner side:
deliver() rebuilds a LogRecord and hands it to the logger of the same
name, so the owner's levels, filters and handlers decide. Importing this
module imports nothing heavy: workers import logging only if a task does.
"""
import sys

from . import _core

# The record attributes that cross (plain values), besides the message.
_FIELDS = ("name", "levelno", "levelname", "pathname", "filename", "module",
           "lineno", "funcName", "created", "msecs", "relativeCreated",
           "thread", "threadName", "process", "processName", "taskName",
           "stack_info")


def worker_level():
    """Owner, at pool creation: the lowest level any logger of this
    interpreter lets through (the root's effective level, or a lower one
    set on a named logger). Workers drop records below it; the owner
    filters the rest with its own configuration."""
    logging = sys.modules.get("logging")
    if logging is None:
        return 30  # WARNING, logging's default
    level = logging.getLogger().getEffectiveLevel()
    for logger in list(logging.Logger.manager.loggerDict.values()):
        own = getattr(logger, "level", 0)
        if own and own < level:
            level = own
    return max(level, 1)


def _fields(record, handler, worker):
    d = {k: getattr(record, k, None) for k in _FIELDS}
    d["msg"] = record.getMessage()
    d["args"] = None
    exc_text = record.exc_text
    if record.exc_info and not exc_text:
        exc_text = handler.formatter_for_exc.formatException(record.exc_info)
    d["exc_text"] = exc_text
    name, ident = worker
    if record.thread == ident:
        d["threadName"] = name  # the worker's own thread, not "MainThread"
    d["mg_worker"] = getattr(record, "mg_worker", None) or name
    for k, v in d.items():
        if v is not None and type(v) not in (str, int, float, bool):
            d[k] = str(v)
    return d


def install(level, logging=None):
    """Worker: forward the records of the worker's logging (from level up)
    to the owner; once per interpreter."""
    if logging is None:
        import logging
    worker = _core._output_worker()
    if worker is None:
        return
    root = logging.getLogger()
    if any(getattr(h, "_mg_forward", False) for h in root.handlers):
        return

    class ForwardHandler(logging.Handler):
        _mg_forward = True
        formatter_for_exc = logging.Formatter()

        def emit(self, record):
            try:
                _core._output_log(_fields(record, self, worker))
            except RecursionError:
                raise
            except Exception:
                self.handleError(record)

    root.addHandler(ForwardHandler())
    root.setLevel(level)


class _InstallingLoader:
    """Runs the real loader of logging, then installs the forwarding."""

    def __init__(self, real, level):
        self.real, self.level = real, level

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module):
        spec = module.__spec__
        if spec is not None and spec.loader is self:
            spec.loader = self.real
        module.__loader__ = self.real
        self.real.exec_module(module)
        install(self.level, module)


def logging_spec(name, path, target, level):
    """The import hook's answer for `logging` (it has removed itself from
    sys.meta_path): the spec the other finders give, loading through
    _InstallingLoader."""
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        spec = find(name, path, target) if find is not None else None
        if spec is not None:
            if spec.loader is not None and hasattr(spec.loader,
                                                   "exec_module"):
                spec.loader = _InstallingLoader(spec.loader, level)
            return spec
    return None


def deliver(fields):
    """Owner: a worker's record to the owner's logger of the same name,
    if that logger is enabled for its level."""
    import logging
    record = logging.makeLogRecord(fields)
    name = record.name
    logger = logging.getLogger(None if name == "root" else name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)
