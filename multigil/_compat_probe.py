"""multigil._compat_probe - the child process of ``python -m multigil
compat``: probes ONE module, then exits.

    python -m multigil._compat_probe NAME

Steps, in order, each announced before it starts and answered after it
ends, as JSON lines on the protocol stream (the process's original stdout;
the module's own prints go to stderr), so that the parent can tell in
which step a crash or a hang happened:

1. "main": import NAME in the main interpreter; then, for every extension
   module that the import loaded, the slots its PyModuleDef declares.
2. "own_gil": import NAME in a new isolated subinterpreter (own GIL,
   multi-phase extensions only: PEP 684).
3. "legacy": import NAME in a new legacy subinterpreter (shared GIL,
   single-phase extensions allowed).

Subinterpreters come from the stdlib's private _interpreters (3.13+) or
_xxsubinterpreters (3.12). One module per process: a refused single-phase
import can still have run its init function in this process (CPython
gh-117953), which would taint a second probe.

Reading the slots: PyModule_GetDef() (through ctypes.pythonapi) gives the
PyModuleDef of a loaded extension module without importing it again; its
m_slots field sits after PyModuleDef_Base (PyObject_HEAD, whose size is
object.__basicsize__, then m_init, m_index, m_copy) and m_name, m_doc,
m_size, m_methods. The array is {int slot; void *value} pairs up to slot 0.
A single-phase module has no slots (m_slots is NULL).

Only the standard library is imported here, before the baseline of
sys.modules is taken.
"""
import importlib
import importlib.machinery
import os
import sys
import types

# ctypes and json are imported only after the probed import (and after the
# list of what it loaded is taken), so that their extension modules
# (_ctypes, _json) are not hidden from the answer.

PY_MOD_MULTIPLE_INTERPRETERS = 3
PY_MOD_GIL = 4
MULTIPLE_INTERPRETERS = {
    0: "not supported",
    1: "supported",
    2: "per-interpreter GIL supported",
}
GIL = {0: "used", 1: "not used"}


def _module_def(mod):
    import ctypes
    get_def = ctypes.pythonapi.PyModule_GetDef
    get_def.restype = ctypes.c_void_p
    get_def.argtypes = [ctypes.py_object]
    return get_def(mod)


def declared_slots(mod):
    """What an extension module object's PyModuleDef declares: {"init":
    "single-phase" or "multi-phase", "multiple_interpreters": ...,
    "gil": ...} (None where the def has no such slot), or None when the
    module has no PyModuleDef."""
    import ctypes

    class _Slot(ctypes.Structure):
        _fields_ = [("slot", ctypes.c_int), ("value", ctypes.c_void_p)]
    if not isinstance(mod, types.ModuleType):
        return None
    try:
        pdef = _module_def(mod)
    except (SystemError, TypeError):
        return None
    if not pdef:
        return None
    ptr = ctypes.sizeof(ctypes.c_void_p)
    m_name = pdef + object.__basicsize__ + 3 * ptr
    m_slots = ctypes.c_void_p.from_address(m_name + 4 * ptr).value
    out = {"init": "multi-phase" if m_slots else "single-phase",
           "multiple_interpreters": None, "gil": None}
    if not m_slots:
        return out
    i = 0
    while True:
        s = _Slot.from_address(m_slots + i * ctypes.sizeof(_Slot))
        if s.slot == 0:
            break
        value = s.value or 0
        if s.slot == PY_MOD_MULTIPLE_INTERPRETERS:
            out["multiple_interpreters"] = MULTIPLE_INTERPRETERS.get(
                value, f"unknown value {value}")
        elif s.slot == PY_MOD_GIL:
            out["gil"] = GIL.get(value, f"unknown value {value}")
        i += 1
    return out


def _is_extension(mod):
    spec = getattr(mod, "__spec__", None)
    loader = getattr(spec, "loader", None)
    return isinstance(loader, importlib.machinery.ExtensionFileLoader)


def new_extensions(before):
    """(name, module) of the extension modules in sys.modules that were
    not in `before`."""
    return [(name, mod) for name, mod in list(sys.modules.items())
            if name not in before and mod is not None
            and _is_extension(mod)]


def describe_extensions(mods, package):
    """declared_slots() of each (name, module), the package's own first,
    then the others it loaded (the standard library's, dependencies')."""
    out = []
    top = package.partition(".")[0]

    def own_first(item):
        name = item[0]
        return (not (name == top or name.startswith(top + ".")), name)
    for name, mod in sorted(mods, key=own_first):
        info = declared_slots(mod) or {"init": "unknown",
                                       "multiple_interpreters": None,
                                       "gil": None}
        info["name"] = name
        out.append(info)
    return out


def one_line(text):
    """The last non-blank line, with 3.12's "<class 'ImportError'>: "
    prefix (RunFailedError's) written as "ImportError: "."""
    lines = [ln.strip() for ln in str(text).strip().splitlines()
             if ln.strip()]
    line = lines[-1] if lines else ""
    if line.startswith("<class '") and "'>: " in line:
        cls, _, rest = line[len("<class '"):].partition("'>: ")
        line = f"{cls.rpartition('.')[2]}: {rest}"
    return line[:300]


# ---- subinterpreters ----

def _sub_script(name):
    return (f"import sys\nsys.path[:] = {sys.path!r}\n"
            f"import importlib\nimportlib.import_module({name!r})\n")


def sub_import(name, isolated):
    """Import name in a new subinterpreter: None if it worked, else the
    error in one line."""
    script = _sub_script(name)
    try:
        import _interpreters as I
    except ImportError:
        import _xxsubinterpreters as X
        iid = X.create(isolated=isolated)
        try:
            X.run_string(iid, script)
        except X.RunFailedError as e:
            return one_line(e)
        finally:
            X.destroy(iid)
        return None
    iid = I.create("isolated" if isolated else "legacy")
    try:
        err = I.exec(iid, script)
    finally:
        I.destroy(iid)
    if err is None:
        return None
    return one_line(getattr(err, "formatted", None) or err)


# ---- the probe ----

class _Stream:
    def __init__(self):
        # The protocol keeps the original stdout; the module's prints
        # (fd 1 and sys.stdout) go to stderr.
        self.f = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def start(self, step):
        self.f.write('{"start": "%s"}\n' % step)  # json is not loaded yet
        self.f.flush()

    def send(self, **msg):
        import json
        self.f.write(json.dumps(msg) + "\n")
        self.f.flush()


def probe(name, stream):
    before = set(sys.modules)
    stream.start("main")
    try:
        importlib.import_module(name)
    except BaseException as e:  # a SystemExit at import is an answer too
        stream.send(step="main", ok=False,
                    error=one_line(f"{type(e).__name__}: {e}"))
        return
    loaded = new_extensions(before)
    stream.send(step="main", ok=True, error=None,
                extensions=describe_extensions(loaded, name))
    for step, isolated in (("own_gil", True), ("legacy", False)):
        stream.start(step)
        err = sub_import(name, isolated)
        stream.send(step=step, ok=err is None, error=err)


def main(argv):
    if len(argv) != 2:
        print("usage: python -m multigil._compat_probe MODULE",
              file=sys.stderr)
        return 2
    stream = _Stream()
    probe(argv[1], stream)
    stream.send(done=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
