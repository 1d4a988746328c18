"""TaskFunction: what ``@registry.task`` makes of a function, typed as the function itself."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from .task import Task

P = ParamSpec("P")
R = TypeVar("R", covariant=True)


class Submitter(Protocol):
    """What a task function can be submitted to: an Engine, or an oncue.AsyncClient."""

    async def submit(
        self,
        type: str,
        payload: Any = None,
        *,
        priority: int | str | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        delay: float | None = None,
        run_at: float | datetime.datetime | None = None,
        key: str | None = None,
    ) -> Task: ...


class TaskFunction(Generic[P, R]):
    """A function registered as task type ``name``: call it as before (same signature for
    type checkers), or submit it by itself: ``await resize.submit(engine, payload)``.

    It pickles as a reference to the module attribute it is bound to, as the function did,
    so handlers with ``run_in="process"`` still reach their worker process.
    """

    def __init__(self, function: Callable[P, R], name: str) -> None:
        self.function = function
        self.name = name
        self.__oncue_task__ = name  # how Registry.resolve and the clients find the name
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)

    def __reduce__(self) -> str:
        qualname: str = self.function.__qualname__  # pickle finds it in the module by this
        return qualname

    def __repr__(self) -> str:
        return f"<task function {self.name!r}: {self.function!r}>"

    async def submit(
        self,
        to: Submitter,
        payload: Any = None,
        *,
        priority: int | str | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        delay: float | None = None,
        run_at: float | datetime.datetime | None = None,
        key: str | None = None,
    ) -> Task:
        """Submit this task type to ``to`` (an Engine or an AsyncClient); returns the task.

        The same as ``await to.submit(self.name, payload, ...)``, and raises the same.
        """
        return await to.submit(
            self.name,
            payload,
            priority=priority,
            max_retries=max_retries,
            timeout=timeout,
            delay=delay,
            run_at=run_at,
            key=key,
        )
