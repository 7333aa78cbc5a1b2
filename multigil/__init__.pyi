# Type stubs for multigil's public API (multigil/__init__.py loads these
# names lazily; the stubs declare them directly).
from . import kernels as kernels
from ._core import MultigilError as MultigilError
from ._core import NotShareableError as NotShareableError
from ._core import RemoteTraceback as RemoteTraceback
from ._core import SharedArray as SharedArray
from ._core import Barrier as Barrier
from ._core import BoundedSemaphore as BoundedSemaphore
from ._core import BrokenBarrierError as BrokenBarrierError
from ._core import Condition as Condition
from ._core import Event as Event
from ._core import Lock as Lock
from ._core import Queue as Queue
from ._core import QueueClosed as QueueClosed
from ._core import QueueEmpty as QueueEmpty
from ._core import QueueFull as QueueFull
from ._core import RLock as RLock
from ._core import Semaphore as Semaphore
from ._core import dumps as dumps
from ._core import loads as loads
from .csv import CSVError as CSVError
from .csv import read_csv as read_csv
from .frames import pandas_frame as pandas_frame
from .pool import BrokenPool as BrokenPool
from .pipeline import Pipeline as Pipeline
from .pool import Pool as Pool
from .pool import process_task as process_task
from .table import Column as Column
from .table import Table as Table

__version__: str
__all__ = [
    "Barrier", "BoundedSemaphore", "BrokenBarrierError", "BrokenPool",
    "CSVError", "Column", "Condition", "Event", "Lock", "MultigilError",
    "NotShareableError", "Pipeline", "Pool", "Queue", "QueueClosed",
    "QueueEmpty", "QueueFull", "RLock", "RemoteTraceback", "SharedArray",
    "Table", "dumps", "kernels", "loads", "pandas_frame", "process_task",
    "read_csv",
]
