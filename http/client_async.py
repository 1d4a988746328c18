"""`AsyncClient`: oncue's HTTP API from async Python, under asyncio or trio (anyio).

The same calls as the blocking `Client` (client.py), each awaited: both drive the plans of
client_plans.py, this one with httpx's AsyncClient and anyio's sleep.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import httpx

from oncue.actors import Page, Stats, Submission, Task, TaskState

from .client_events import events_request, open_events
from .client_http import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Statuses,
    checked_base,
    keywords,
    to_httpx,
)
from .client_plans import Moment, Pause, Plan, Priority, Request, task_name
from .client_streams import AsyncEventStream

T = TypeVar("T")


class AsyncClient:
    """An async client for an oncue server at ``url``, under asyncio or trio.

    As :class:`Client`, with every call awaited; use it with ``async with``, or ``await
    aclose()``. Cancellation (a cancel scope, ``asyncio.timeout``) stops a call at once.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.url, self._calls, headers = checked_base(url, token, timeout, retries)
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)
        self._stream_timeout = httpx.Timeout(timeout, read=None)  # an event stream idles

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(
        self,
        type: str | Callable[..., Any],
        payload: Any = None,
        *,
        priority: Priority | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        delay: float | None = None,
        run_at: Moment | None = None,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Task:
        """Submit one task; as :meth:`Client.submit`."""
        options = keywords(
            priority=priority,
            max_retries=max_retries,
            timeout=timeout,
            delay=delay,
            run_at=run_at,
            key=key,
            headers=headers,
        )
        return await self._run(self._calls.submit(task_name(type), payload, options))

    async def submit_many(self, submissions: Iterable[Submission]) -> builtins.list[Task]:
        """Submit several tasks, all or none."""
        return await self._run(self._calls.submit_many(builtins.list(submissions)))

    async def get(self, task_id: str) -> Task:
        """The task; raises TaskNotFound."""
        return await self._run(self._calls.get(task_id))

    async def list(
        self,
        *,
        state: TaskState | str | None = None,
        type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of tasks, newest first; pass its ``next_cursor`` back for the next one."""
        return await self._run(self._calls.list(state, type, limit, cursor))

    async def wait(self, task_id: str, *, timeout: float | None = None) -> Task:
        """Long-poll until the task is finished; as :meth:`Client.wait`."""
        return await self._run(self._calls.wait(task_id, timeout, time.monotonic))

    async def cancel(self, task_id: str) -> Task:
        return await self._run(self._calls.cancel(task_id))

    async def retry(self, task_id: str) -> Task:
        return await self._run(self._calls.retry(task_id))

    async def stats(self) -> Stats:
        return await self._run(self._calls.stats())

    def events(
        self,
        *,
        task: str | int | None = None,
        type: str | None = None,
        status: Statuses | None = None,
        last_event_id: str | None = None,
        reconnect: bool = True,
    ) -> AsyncEventStream:
        """The server's events as they happen: ``async with client.events(...) as stream:
        async for event in stream``; as :meth:`Client.events` (reconnects too)."""

        async def open(after: str | None) -> httpx.Response:
            request = events_request(task, type, status, after)
            return await self._run(open_events(request, self.url, self._calls.retries))

        return AsyncEventStream(self.url, open, last_event_id, reconnect)

    async def _run(self, plan: Plan[T]) -> T:
        """Carry out `plan`'s requests and pauses; return what it returns."""
        step = next(plan)
        while True:
            try:
                if isinstance(step, Pause):
                    await anyio.sleep(step.seconds)
                    step = plan.send(None)
                    continue
                try:
                    response = await self._send(step)
                except httpx.TransportError as error:
                    step = plan.throw(error)
                    continue
                step = plan.send(response)
            except StopIteration as done:
                result: T = done.value
                return result

    async def _send(self, request: Request) -> httpx.Response:
        if request.stream:
            opening = to_httpx(self._http, request, self._stream_timeout)
            response = await self._http.send(opening, stream=True)
            if response.is_error:  # read, for the error it says
                await response.aread()
                await response.aclose()
            return response
        return await self._http.send(to_httpx(self._http, request, None))
