"""multigil._codefn - helper of the C codec (src/codefn.c) for functions
that cross interpreters as code.

global_names(code) lists the global names a code object (and the code
objects nested in it) reads or writes, so that only those globals travel
with the function. The C side caches the result per code object; this
module is imported only when a function is first sent as code.
"""
import dis
import types

_GLOBAL_OPS = frozenset(
    name for name in ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL",
                      "LOAD_NAME", "STORE_NAME", "DELETE_NAME",
                      "LOAD_FROM_DICT_OR_GLOBALS")
    if name in dis.opmap)


def global_names(code):
    """Sorted tuple of the global names used by code and its nested code."""
    names = set()
    stack = [code]
    while stack:
        co = stack.pop()
        for ins in dis.get_instructions(co):
            if ins.opname in _GLOBAL_OPS and isinstance(ins.argval, str):
                names.add(ins.argval)
        stack.extend(c for c in co.co_consts if isinstance(c, types.CodeType))
    return tuple(sorted(names))
