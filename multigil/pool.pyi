# Type stubs for multigil.pool.
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, Literal, ParamSpec, TypeVar, overload

from ._core import BrokenPool as BrokenPool
from ._core import NotShareableError as NotShareableError

__all__ = ["Pool", "BrokenPool", "NotShareableError"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")

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
    ) -> Iterator[_T]: ...
    def broadcast(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> list[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...
