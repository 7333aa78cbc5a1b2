# Type stubs for multigil.pool.
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from types import TracebackType
from typing import Any, Literal, ParamSpec, Protocol, TypeAlias, TypeVar, overload

from ._core import BrokenPool as BrokenPool
from ._core import NotShareableError as NotShareableError
from ._stats import PoolStats as PoolStats
from ._stats import ProcessStats as ProcessStats
from ._stats import WorkerStats as WorkerStats

__all__ = ["Pool", "BrokenPool", "NotShareableError", "PoolStats",
           "WorkerStats", "ProcessStats"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")

class _ProgressBar(Protocol):
    # A tqdm bar, or anything with update(n).
    def update(self, n: int, /) -> object: ...

# map's progress=: True (a bar on stderr if it is a terminal), "always",
# a callback (done, total or None), or a tqdm-like bar.
_Progress: TypeAlias = (
    bool | Literal["always"] | Callable[[int, int | None], object]
    | _ProgressBar | None
)

class _AsyncMap(AsyncIterator[_T]):
    # What Pool.amap returns: an async iterator and async context manager.
    def __aiter__(self) -> _AsyncMap[_T]: ...
    async def __anext__(self) -> _T: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> _AsyncMap[_T]: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

class Pool(Executor):
    def __init__(
        self,
        workers: int | None = None,
        *,
        max_workers: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        max_tasks_per_worker: int | None = None,
        name: str | None = None,
        fallback: Literal["process"] | None = "process",
        process_workers: int | None = None,
        output: Literal["forward", "inherit"] | None = "forward",
    ) -> None: ...
    @property
    def workers(self) -> int: ...
    @property
    def broken(self) -> str | None: ...
    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]: ...
    async def arun(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T: ...
    # map: typed for one to three iterables (fn must take their items);
    # four or more are checked for count only. Stricter than
    # Executor.map's Callable[..., T] on purpose, hence the ignore.
    @overload  # type: ignore[override]
    def map(
        self,
        fn: Callable[[_A], _T],
        iterable: Iterable[_A],
        /,
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        buffersize: int | None = None,
        progress: _Progress = None,
    ) -> Iterator[_T]: ...
    @overload
    def map(
        self,
        fn: Callable[[_A, _B], _T],
        iterable1: Iterable[_A],
        iterable2: Iterable[_B],
        /,
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        buffersize: int | None = None,
        progress: _Progress = None,
    ) -> Iterator[_T]: ...
    @overload
    def map(
        self,
        fn: Callable[[_A, _B, _C], _T],
        iterable1: Iterable[_A],
        iterable2: Iterable[_B],
        iterable3: Iterable[_C],
        /,
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        buffersize: int | None = None,
        progress: _Progress = None,
    ) -> Iterator[_T]: ...
    @overload
    def map(
        self,
        fn: Callable[..., _T],
        iterable1: Iterable[Any],
        iterable2: Iterable[Any],
        iterable3: Iterable[Any],
        iterable4: Iterable[Any],
        /,
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        buffersize: int | None = None,
        progress: _Progress = None,
    ) -> Iterator[_T]: ...
    def starmap(
        self,
        fn: Callable[..., _T],
        iterable: Iterable[Iterable[Any]],
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        buffersize: int | None = None,
        progress: _Progress = None,
    ) -> Iterator[_T]: ...
    @overload
    def amap(
        self,
        fn: Callable[[_A], _T],
        iterable: Iterable[_A] | AsyncIterable[_A],
        /,
        *,
        chunksize: int | None = None,
        ordered: bool = True,
        buffersize: int | None = None,
        timeout: float | None = None,
        progress: _Progress = None,
    ) -> _AsyncMap[_T]: ...
    @overload
    def amap(
        self,
        fn: Callable[[_A, _B], _T],
        iterable1: Iterable[_A] | AsyncIterable[_A],
        iterable2: Iterable[_B] | AsyncIterable[_B],
        /,
        *,
        chunksize: int | None = None,
        ordered: bool = True,
        buffersize: int | None = None,
        timeout: float | None = None,
        progress: _Progress = None,
    ) -> _AsyncMap[_T]: ...
    @overload
    def amap(
        self,
        fn: Callable[..., _T],
        iterable1: Iterable[Any] | AsyncIterable[Any],
        iterable2: Iterable[Any] | AsyncIterable[Any],
        iterable3: Iterable[Any] | AsyncIterable[Any],
        /,
        *iterables: Iterable[Any] | AsyncIterable[Any],
        chunksize: int | None = None,
        ordered: bool = True,
        buffersize: int | None = None,
        timeout: float | None = None,
        progress: _Progress = None,
    ) -> _AsyncMap[_T]: ...
    def stats(self) -> PoolStats: ...
    def submit_process(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]: ...
    def fallback_stats(self) -> dict[str, Any]: ...
    def broadcast(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> list[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...

_F = TypeVar("_F", bound=Callable[..., Any])

def process_task(fn: _F) -> _F: ...
