"""multigil._picklers - Pickler/Unpickler subclasses for the C codec's
pickle fallback (src/codec.c), so that a SharedArray inside a pickled
object travels as a handle (persistent id), not as a copy.

The hooks are C functions bound to one encode or decode call. Subclasses
are needed because 3.14 made the persistent_id / persistent_load attributes
of pickle's C classes read-only on instances. Imported lazily, only when
SharedArrays exist.
"""
import pickle


class HandlePickler(pickle.Pickler):
    def __init__(self, file, hook):
        super().__init__(file, 5)
        self._mg_hook = hook

    def persistent_id(self, obj):
        return self._mg_hook(obj)


class HandleUnpickler(pickle.Unpickler):
    def __init__(self, file, hook):
        super().__init__(file)
        self._mg_hook = hook

    def persistent_load(self, pid):
        return self._mg_hook(pid)
