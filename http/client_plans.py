"""The clients' logic without I/O: each call is a plan, a generator of requests and pauses.

A plan yields a `Request` and is sent back the `httpx.Response`, or thrown the
`httpx.TransportError` the request raised; it yields a `Pause` to wait; it returns the call's
result. `Client` drives plans with blocking I/O and `AsyncClient` with async I/O (asyncio or
trio), so retries, long-polls and the reading of answers are written once, here.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Generator
from typing import Any, TypeVar
from urllib.parse import quote

import attrs
import httpx

from oncue.actors import (
    Page,
    Progress,
    Stats,
    Submission,
    Task,
    TaskError,
    TaskState,
    Transition,
)
from oncue.actors.engine.tracing import with_trace_context

from .client_errors import NotAnOncueServer, ServerUnreachable, error_for

T = TypeVar("T")

RETRY_DELAYS = (0.05, 0.2, 0.5)  # seconds before each retry of a call that could not connect
LONG_POLL = 60.0  # seconds one wait request holds (the server allows up to 300)
REQUEST_MARGIN = 10.0  # seconds a long-poll request may take beyond its poll


@attrs.frozen
class Request:
    """One HTTP request; `idempotent` ones are sent again after a connection broke mid-way."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    idempotent: bool = True
    timeout: float | None = None  # None: the client's
    subject: str | None = None  # what it is about (a task id or type), for the errors
    headers: dict[str, str] | None = None  # beside the client's own
    stream: bool = False  # the body is read as it comes (the event stream); errors are read


@attrs.frozen
class Pause:
    seconds: float


Step = Request | Pause
Plan = Generator[Step, Any, T]


def exchange(request: Request, url: str, read: Callable[[Any], T], retries: int) -> Plan[T]:
    """Send `request` (again after a failed connection, `retries` times); `read` its JSON.

    Raises as `send` does, the engine's error class for an error answer, NotAnOncueServer
    for an answer that is not oncue's JSON.
    """
    response = yield from send(request, url, retries)
    return answer(response, url, read, request.subject)


def send(request: Request, url: str, retries: int) -> Plan[httpx.Response]:
    """Send `request` (again after a failed connection, `retries` times); its response.

    A connection that never opened is always tried again; one that broke after the request
    went out only if the request is idempotent. Raises ServerUnreachable naming `url` when
    the tries are spent.
    """
    for attempt in range(retries + 1):
        try:
            response: httpx.Response = yield request
            return response
        except httpx.TransportError as error:
            sent = not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
            reason = str(error) or type(error).__name__
            if sent and not request.idempotent:
                raise ServerUnreachable(url, _broke_after_sending(url, reason)) from None
            if attempt == retries:
                raise ServerUnreachable(url, f"cannot reach oncue at {url}: {reason}") from None
            yield Pause(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
    raise AssertionError("unreachable: the last attempt returns or raises")


def _broke_after_sending(url: str, reason: str) -> str:
    return (
        f"the connection to oncue at {url} broke after the request was sent ({reason}): it"
        " may have been done; not sent again, as it is not idempotent (a submit with a key is)"
    )


def answer(response: httpx.Response, url: str, read: Callable[[Any], T], subject: str | None) -> T:
    """What `response` says, read by `read`; its error as the engine's exception."""
    try:
        body = None if response.status_code == 204 else response.json()
    except ValueError:
        body = None
    if response.is_error:
        retry_after = response.headers.get("Retry-After")
        raise error_for(url, response.status_code, body, retry_after, subject=subject)
    try:
        return read(body)
    except (KeyError, TypeError, ValueError, AttributeError):
        what = response.headers.get("Content-Type", "no content type")
        raise NotAnOncueServer(
            url,
            f"{url} answered {response.request.method} {response.request.url.path} with"
            f" {response.status_code} ({what}) that is not oncue's JSON: is it an oncue server?",
        ) from None


def wait(
    task_id: str, timeout: float | None, url: str, retries: int, clock: Callable[[], float]
) -> Plan[Task]:
    """Long-poll until the task is finished; TimeoutError once `timeout` seconds have passed.

    The server answers a poll early, unfinished, when it starts draining: the next poll waits
    a moment first, so a draining server is not asked again and again.
    """
    deadline = math.inf if timeout is None else clock() + timeout
    while True:
        started = clock()
        poll = max(0.0, min(LONG_POLL, deadline - started))
        request = Request(
            "GET",
            f"{task_path(task_id)}/wait",
            params={"timeout": round(poll, 3)},
            timeout=poll + REQUEST_MARGIN,
            subject=task_id,
        )
        task = yield from exchange(request, url, task_from_json, retries)
        now = clock()
        if task.state.finished:
            return task
        if now >= deadline:
            raise TimeoutError(
                f"task {task_id!r} did not finish within {timeout:g}s (it is {task.state});"
                " wait again, or get() it later"
            )
        if now - started < poll / 2:  # answered early: the server is draining
            yield Pause(min(0.5, deadline - now))


def submission_json(type: str, payload: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of one task to submit; options left None are left out (the server's
    defaults apply), a datetime `run_at` becomes epoch seconds."""
    body = {"type": type, "payload": payload}
    # the caller's current span (OpenTelemetry, when set up) becomes the task's parent
    options = {**options, "headers": with_trace_context(options.get("headers"))}
    for name, value in options.items():
        if isinstance(value, datetime.datetime):  # naive means UTC, as the server reads it
            value = (value if value.tzinfo else value.replace(tzinfo=datetime.UTC)).timestamp()
        if value is not None:
            body[name] = value
    return body


def task_from_json(data: Any) -> Task:
    """A task as the server renders it (http/models.py `task_out`), as the engine's Task."""
    error, progress = data["error"], data["progress"]
    return Task(
        id=data["id"],
        number=data["number"],
        type=data["type"],
        payload=data["payload"],
        priority=data["priority"],
        state=TaskState(data["status"]),
        attempts=data["attempts"],
        max_retries=data["max_retries"],
        timeout=data["timeout"],
        created_at=_epoch(data["created_at"]) or 0.0,
        run_at=_epoch(data["run_at"]),
        started_at=_epoch(data["started_at"]),
        finished_at=_epoch(data["finished_at"]),
        result=data["result"],
        error=None if error is None else TaskError(error["type"], error["message"]),
        worker=data["worker"],
        progress=None if progress is None else Progress(progress["fraction"], progress["message"]),
        key=data["key"],
        headers=data.get("headers"),
        history=tuple(_transition(step) for step in data.get("history", ())),
    )


def _transition(step: Any) -> Transition:
    """One entry of a task's history as the server renders it (an older server sends none)."""
    at = _epoch(step["at"])
    return Transition(
        TaskState(step["status"]), 0.0 if at is None else at, step["worker"], step["error"]
    )


def tasks_from_json(data: Any) -> list[Task]:
    return [task_from_json(task) for task in data["tasks"]]


def page_from_json(data: Any) -> Page:
    return Page(tasks_from_json(data), data["next_cursor"])


def stats_from_json(data: Any) -> Stats:
    fields = {field.name: data[field.name] for field in attrs.fields(Stats) if field.name in data}
    # JSON keys are strings; a server older than this client does not send it
    queued = fields.pop("queued_by_priority", {})
    return Stats(**fields, queued_by_priority={int(p): count for p, count in queued.items()})


def _epoch(text: str | None) -> float | None:
    """ISO 8601 (as the server writes it, with a Z) as epoch seconds."""
    return None if text is None else datetime.datetime.fromisoformat(text).timestamp()


Priority = int | str
Moment = float | datetime.datetime


@attrs.frozen
class Calls:
    """Every call of the clients as a plan, for the server at `url`."""

    url: str
    retries: int

    def submit(self, type: str, payload: Any, options: dict[str, Any]) -> Plan[Task]:
        # With a key the server dedupes, so a submit whose connection broke may be sent again.
        body = submission_json(type, payload, options)
        request = Request(
            "POST", "/api/v1/tasks", json=body, idempotent="key" in body, subject=type
        )
        return exchange(request, self.url, task_from_json, self.retries)

    def submit_many(self, submissions: list[Submission]) -> Plan[list[Task]]:
        body = {"tasks": [batch_item_json(each) for each in submissions]}
        # idempotent when every task has a key (the server finds them again)
        idempotent = all(each.key is not None for each in submissions)
        request = Request("POST", "/api/v1/tasks/batch", json=body, idempotent=idempotent)
        return exchange(request, self.url, tasks_from_json, self.retries)

    def get(self, task_id: str) -> Plan[Task]:
        request = Request("GET", task_path(task_id), subject=task_id)
        return exchange(request, self.url, task_from_json, self.retries)

    def list(
        self, state: TaskState | str | None, type: str | None, limit: int, cursor: str | None
    ) -> Plan[Page]:
        query = {"status": state, "type": type, "limit": limit, "cursor": cursor}
        params = {name: str(value) for name, value in query.items() if value is not None}
        request = Request("GET", "/api/v1/tasks", params=params)
        return exchange(request, self.url, page_from_json, self.retries)

    def wait(self, task_id: str, timeout: float | None, clock: Callable[[], float]) -> Plan[Task]:
        return wait(task_id, timeout, self.url, self.retries, clock)

    def cancel(self, task_id: str) -> Plan[Task]:
        # A cancel sent twice answers 409 the second time: sent again only if never received.
        request = Request("POST", f"{task_path(task_id)}/cancel", idempotent=False, subject=task_id)
        return exchange(request, self.url, task_from_json, self.retries)

    def retry(self, task_id: str) -> Plan[Task]:
        request = Request("POST", f"{task_path(task_id)}/retry", idempotent=False, subject=task_id)
        return exchange(request, self.url, task_from_json, self.retries)

    def stats(self) -> Plan[Stats]:
        return exchange(Request("GET", "/api/v1/stats"), self.url, stats_from_json, self.retries)


def batch_item_json(submission: Submission) -> dict[str, Any]:
    """One task of a batch: the engine's Submission as the server's JSON."""
    options = attrs.asdict(submission, recurse=False)
    del options["type"], options["payload"], options["owner"]  # the owner is the token's
    return submission_json(submission.type, submission.payload, options)


def task_path(task_id: str) -> str:
    """The URL path of one task; the id is quoted (a path is no place for a stray `/`)."""
    return f"/api/v1/tasks/{quote(str(task_id), safe='')}"


def task_name(type: Any) -> str:
    """A task type given by name, or as the function `@registry.task` decorated."""
    if isinstance(type, str):
        return type
    name = getattr(type, "__oncue_task__", None)
    if not isinstance(name, str):
        raise TypeError(
            f"submit a task type by its name, or the function @registry.task decorated;"
            f" got {type!r}"
        )
    return name
