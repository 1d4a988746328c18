"""`Client` (blocking) and `AsyncClient` (asyncio or trio): oncue's HTTP API from Python.

Both answer with the engine's own values (`Task`, `Page`, `Stats`) and raise the engine's own
exceptions (`TaskNotFound`, `QueueFull` with `retry_after`, ...), so code moves between an
embedded engine and a server unchanged. What each call does is written once, without I/O, in
client_plans.py; `Client` (here) and `AsyncClient` (client_async.py) only drive those plans
with httpx. This module is where both are imported from, with the errors and event values
they raise and yield.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from oncue.actors import Page, Stats, Submission, Task, TaskState

from .client_async import AsyncClient
from .client_errors import ClientError, NotAnOncueServer, RequestRejected, ServerUnreachable
from .client_events import ActorEvent, EventsReset, events_request, open_events
from .client_http import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Statuses,
    checked_base,
    keywords,
    to_httpx,
)
from .client_plans import Moment, Pause, Plan, Priority, Request, task_name
from .client_streams import AsyncEventStream, EventStream

__all__ = [
    "ActorEvent",
    "AsyncClient",
    "AsyncEventStream",
    "Client",
    "ClientError",
    "EventStream",
    "EventsReset",
    "NotAnOncueServer",
    "RequestRejected",
    "ServerUnreachable",
]

T = TypeVar("T")


class Client:
    """A blocking client for an oncue server at ``url`` (``http://host:port``).

    Sends ``token`` as ``Authorization: Bearer``. A call that cannot connect is tried again
    ``retries`` times (a call that may have reached the server only if it is idempotent: reads,
    and submits with a ``key``), then raises ServerUnreachable naming the URL. Use it as a
    context manager, or call ``close()``.
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
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._stream_timeout = httpx.Timeout(timeout, read=None)  # an event stream idles

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(
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
        """Submit one task (``type``: its name, or the decorated function); returns it.

        An existing ``key`` returns the task it names. Raises UnknownTaskType, QueueFull
        (``retry_after``), InvalidField naming the option, EngineClosed, ClientError.
        """
        options = keywords(
            priority=priority,
            max_retries=max_retries,
            timeout=timeout,
            delay=delay,
            run_at=run_at,
            key=key,
            headers=headers,
        )
        return self._run(self._calls.submit(task_name(type), payload, options))

    def submit_many(self, submissions: Iterable[Submission]) -> builtins.list[Task]:
        """Submit several tasks (the engine's ``Submission``), all or none."""
        return self._run(self._calls.submit_many(builtins.list(submissions)))

    def get(self, task_id: str) -> Task:
        """The task; raises TaskNotFound."""
        return self._run(self._calls.get(task_id))

    def list(
        self,
        *,
        state: TaskState | str | None = None,
        type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of tasks, newest first; pass its ``next_cursor`` back for the next one."""
        return self._run(self._calls.list(state, type, limit, cursor))

    def wait(self, task_id: str, *, timeout: float | None = None) -> Task:
        """Long-poll until the task is finished and return it (``timeout=None``: however long
        it takes); raises TimeoutError when ``timeout`` seconds pass first."""
        return self._run(self._calls.wait(task_id, timeout, time.monotonic))

    def cancel(self, task_id: str) -> Task:
        """Cancel an unfinished task; raises TaskAlreadyFinished for a finished one."""
        return self._run(self._calls.cancel(task_id))

    def retry(self, task_id: str) -> Task:
        """Run a failed task again; raises TaskNotFailed otherwise."""
        return self._run(self._calls.retry(task_id))

    def stats(self) -> Stats:
        return self._run(self._calls.stats())

    def events(
        self,
        *,
        task: str | int | None = None,
        type: str | None = None,
        status: Statuses | None = None,
        last_event_id: str | None = None,
        reconnect: bool = True,
    ) -> EventStream:
        """The server's events as they happen (``GET /api/v1/events``): iterate it in a ``with``.

        Filters: ``task`` (id or number), ``type``, ``status`` (one or several). Yields the
        engine's TaskEvent per transition; for admins ActorEvent (supervision); EventsReset
        when a resume after ``last_event_id`` could not be whole. Stops when the server ends
        the stream; raises EventsDropped when it dropped it, and as every call otherwise.
        A broken connection is opened again by itself with the last event's id (the server
        replays what was missed), with backoff; ServerUnreachable once that fails for ~40 s
        (``reconnect=False``: at once). Resume with ``last_event_id=stream.last_event_id``.
        """

        def open(after: str | None) -> httpx.Response:
            request = events_request(task, type, status, after)
            return self._run(open_events(request, self.url, self._calls.retries))

        return EventStream(self.url, open, last_event_id, reconnect)

    def _run(self, plan: Plan[T]) -> T:
        """Carry out `plan`'s requests and pauses; return what it returns."""
        step = next(plan)
        while True:
            try:
                if isinstance(step, Pause):
                    time.sleep(step.seconds)
                    step = plan.send(None)
                    continue
                try:
                    response = self._send(step)
                except httpx.TransportError as error:
                    step = plan.throw(error)
                    continue
                step = plan.send(response)
            except StopIteration as done:
                result: T = done.value
                return result

    def _send(self, request: Request) -> httpx.Response:
        if request.stream:
            opening = to_httpx(self._http, request, self._stream_timeout)
            response = self._http.send(opening, stream=True)
            if response.is_error:  # read, for the error it says
                response.read()
                response.close()
            return response
        return self._http.send(to_httpx(self._http, request, None))
