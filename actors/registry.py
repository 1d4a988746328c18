"""Handlers: the code a task type runs, registered by name with its defaults."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, ParamSpec, TypeVar

import attrs

from .cores.rules import check_type_name
from .errors import UnknownTaskType
from .task import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_PRIORITY,
    DEFAULT_TIMEOUT,
    check_max_retries,
    check_timeout,
    parse_priority,
)
from .task_function import TaskFunction
from .tasklog import task_logger

P = ParamSpec("P")
R = TypeVar("R")
RunIn = Literal["loop", "thread", "process"]


class TaskContext:
    """What a handler gets besides its payload: who it is, and a way to report progress."""

    __slots__ = ("_logger", "_report", "attempt", "headers", "node", "task_id", "type", "worker")

    def __init__(
        self,
        task_id: str,
        type: str,
        attempt: int,
        worker: str,
        report: Callable[[str, float, str], None],
        node: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.task_id = task_id
        self.type = type
        self.attempt = attempt
        self.worker = worker
        self.node = node  # the engine's name on a shared store; None otherwise
        self.headers = headers  # the task's headers (submit's headers=, plus trace context)
        self._report = report
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger (``oncue.task``) whose every record carries task_id, task_type, attempt,
        worker and node as fields, besides the call's own ``extra=``."""
        if self._logger is None:
            self._logger = task_logger(
                self.task_id, self.type, self.attempt, self.worker, self.node
            )
        return self._logger

    def report_progress(self, fraction: float, message: str = "") -> None:
        """Record how far the task is (0.0 to 1.0); cheap, never blocks, may be coalesced."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be between 0.0 and 1.0, got {fraction!r}")
        self._report(self.task_id, fraction, message)


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base*2**(n-1)))."""

    base: float = 1.0
    cap: float = 60.0

    def __attrs_post_init__(self) -> None:
        if not self.base > 0 or not self.cap >= self.base:
            raise ValueError(f"retry base must be > 0 and cap >= base, got {self.base}, {self.cap}")

    def ceiling(self, attempt: int) -> float:
        """The most attempt ``attempt`` (1-based) can wait before the next one."""
        return float(min(self.cap, self.base * 2 ** min(attempt - 1, 64)))


@attrs.frozen
class Handler:
    """A registered task type."""

    name: str
    function: Callable[..., Any]
    run_in: RunIn
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    priority: int = DEFAULT_PRIORITY
    retry: RetryPolicy = RetryPolicy()
    lease: float | None = None  # seconds a node owns a claimed task (shared stores); None: default
    # What a worker calls: ``function`` itself, or the plain function a TaskFunction wraps (a
    # call less a task; a process handler is called through ``function``, which pickles).
    call: Callable[..., Any] = attrs.field(init=False)

    @call.default
    def _unwrapped(self) -> Callable[..., Any]:
        function = self.function
        return function.function if isinstance(function, TaskFunction) else function


class Registry:
    """Task types by name. ``Registry()`` holds only what you register; add the built-in
    task types (echo, sleep, double, email, ...) with ``register_builtins(registry)``.

    Usage::

        registry = Registry()

        @registry.task("resize", timeout=30, max_retries=5)
        async def resize(ctx, payload): ...
    """

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        # The handler for a name, or None: the dict's own get (a C call), for the paths taken
        # once a task (admission, a worker's attempt); get() says what is wrong with a name.
        self.lookup: Callable[[str], Handler | None] = self._handlers.get

    def task(
        self,
        name: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        priority: int | str = DEFAULT_PRIORITY,
        retry_base: float = 1.0,
        retry_cap: float = 60.0,
        run_in: RunIn | None = None,
        lease: float | None = None,
    ) -> Callable[[Callable[P, R]], TaskFunction[P, R]]:
        """Register the decorated function as task type ``name`` (default: its __name__).

        Async functions run on the worker (``run_in="loop"``); plain functions run in a thread
        unless ``run_in="process"`` (CPU-bound work; the function then gets only the payload,
        and it and the payload must be picklable). Returns a TaskFunction: callable with the
        function's own signature, and submittable by itself (``await resize.submit(engine,
        payload)``, or ``engine.submit(resize, payload)``).
        """

        def decorate(function: Callable[P, R]) -> TaskFunction[P, R]:
            task_function = TaskFunction(function, name or function.__name__)
            self.register(
                task_function.name,
                task_function,
                timeout=timeout,
                max_retries=max_retries,
                priority=priority,
                retry_base=retry_base,
                retry_cap=retry_cap,
                run_in=run_in,
                lease=lease,
            )
            return task_function

        return decorate

    def register(
        self,
        name: str,
        function: Callable[..., Any],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        priority: int | str = DEFAULT_PRIORITY,
        retry_base: float = 1.0,
        retry_cap: float = 60.0,
        run_in: RunIn | None = None,
        lease: float | None = None,
    ) -> Handler:
        """Register ``function`` as ``name``; raises ValueError if the name is taken or bad."""
        check_type_name(name)
        if name in self._handlers:
            raise ValueError(f"task type {name!r} is already registered")
        is_async = inspect.iscoroutinefunction(inspect.unwrap(function))
        if run_in is None:
            run_in = "loop" if is_async else "thread"
        if run_in not in ("loop", "thread", "process"):
            raise ValueError(f"run_in must be 'loop', 'thread' or 'process', got {run_in!r}")
        if is_async != (run_in == "loop"):
            raise ValueError(f"run_in={run_in!r} needs {'a plain' if is_async else 'an async'} def")
        handler = Handler(
            name,
            function,
            run_in,
            timeout=check_timeout(timeout),
            max_retries=check_max_retries(max_retries),
            priority=parse_priority(priority),
            retry=RetryPolicy(retry_base, retry_cap),
            lease=None if lease is None else check_lease(lease),
        )
        self._handlers[name] = handler
        return handler

    def get(self, name: str) -> Handler:
        """The handler for ``name``; raises UnknownTaskType listing the known names."""
        try:
            return self._handlers[name]
        except KeyError:
            raise UnknownTaskType(name, list(self._handlers)) from None

    def resolve(self, type_or_function: str | Callable[..., Any]) -> Handler:
        """Accept a type name or a function decorated by ``task``."""
        if isinstance(type_or_function, str):
            return self.lookup(type_or_function) or self.get(type_or_function)
        name = getattr(type_or_function, "__oncue_task__", None)
        if name is None:
            raise UnknownTaskType(repr(type_or_function), list(self._handlers))
        return self.get(name)

    def lease_for(self, default: float) -> Callable[[str], float]:
        """A task type's lease in seconds: its own, else ``default`` (unknown types too)."""

        def lease(name: str) -> float:
            handler = self._handlers.get(name)
            return default if handler is None or handler.lease is None else handler.lease

        return lease

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __iter__(self) -> Iterator[Handler]:
        return iter(self._handlers.values())


def check_lease(lease: object) -> float:
    """A lease must be a number of seconds >= 0.1 (renewals go every third of it)."""
    if isinstance(lease, bool) or not isinstance(lease, int | float) or not lease >= 0.1:
        raise ValueError(f"lease must be a number of seconds >= 0.1, got {lease!r}")
    return float(lease)
