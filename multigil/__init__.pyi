# Type stubs for multigil's public API (multigil/__init__.py loads these
# names lazily; the stubs declare them directly).
from . import kernels as kernels
from ._core import MultigilError as MultigilError
from ._core import NotShareableError as NotShareableError
from ._core import RemoteTraceback as RemoteTraceback
from ._core import SharedArray as SharedArray
from ._core import dumps as dumps
from ._core import loads as loads
from .pool import BrokenPool as BrokenPool
from .pool import Pool as Pool

__version__: str
__all__ = [
    "BrokenPool", "MultigilError", "NotShareableError", "Pool",
    "RemoteTraceback", "SharedArray", "dumps", "kernels", "loads",
]
