"""The clients' `events()`: `GET /api/v1/events` read as the engine's values, without I/O.

`EventDecoder` is fed the stream's text as it arrives and hands back what each frame means:
a `task` frame is the engine's `TaskEvent`; an `actor` frame (admins: the supervision tree)
an `ActorEvent`; a `reset` frame (a resume that could not be whole) an `EventsReset`, after
which live events follow; a `dropped` frame raises the engine's `EventsDropped`; an `end`
frame (the server drains) ends the iteration. Heartbeat comments and `retry:` are skipped.
It keeps the last task event's id, which `events(last_event_id=...)` resumes after, and which
a stream sends again by itself when its connection breaks (`Reconnects`: bounded backoff).
`events_request` is the opening request, driven through the clients' plans (client_plans.py),
so a refused connection is retried and an error answer raises the engine's class.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import attrs
import httpx

from oncue.actors import EventsDropped, TaskEvent, TaskState

from .client_errors import NotAnOncueServer, ServerUnreachable
from .client_plans import Plan, Request, answer, send

EVENTS_PATH = "/api/v1/events"
# Seconds before each reconnect of a broken stream, in a row (then the last, again); after
# RECONNECT_TRIES in a row with nothing read, the stream gives up (~40 s of outage).
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
RECONNECT_TRIES = 12


@attrs.define
class Reconnects:
    """When a broken stream opens again: bounded backoff, started over by anything read."""

    tries: int = RECONNECT_TRIES
    failed: int = 0  # reconnects in a row with nothing read since

    def next_delay(self) -> float | None:
        """The pause before the next reconnect; None once the tries are spent."""
        if self.failed >= self.tries:
            return None
        delay = RECONNECT_DELAYS[min(self.failed, len(RECONNECT_DELAYS) - 1)]
        self.failed += 1
        return delay

    def read(self) -> None:
        """Something came in: the connection works."""
        self.failed = 0


@attrs.frozen
class ActorEvent:
    """A supervision event (admins only): an actor at ``path`` crashed, restarted or gave up."""

    kind: str  # "crashed", "restarted" or "gave_up"
    path: str
    restarts: int
    error: str | None = None


@attrs.frozen
class EventsReset:
    """A resume (``last_event_id``) could not replay everything since: ``reason`` says why.

    Reload what you show from ``list()``/``get()``; the live events follow on the stream.
    """

    reason: str


class Ended:
    """The server ended the stream (`event: end`): it is draining or its engine stopped."""


StreamEvent = TaskEvent | ActorEvent | EventsReset


def events_request(
    task: str | int | None, type: str | None, status: Any, last_event_id: str | None
) -> Request:
    """The opening request of a stream with these filters (``status``: one or several)."""
    if status is not None and not isinstance(status, str | TaskState):
        status = ",".join(str(each) for each in status)
    query = {"task": task, "type": type, "status": status}
    params = {name: str(value) for name, value in query.items() if value is not None}
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return Request("GET", EVENTS_PATH, params=params, headers=headers, stream=True)


def open_events(request: Request, url: str, retries: int) -> Plan[httpx.Response]:
    """Open the stream: its response, once it is the 200 of an event stream.

    An error answer raises the engine's class (as every call); the driver has read its body.
    """
    response = yield from send(request, url, retries)
    if response.is_error:
        answer(response, url, lambda body: body, None)  # raises
    kind = response.headers.get("Content-Type", "")
    if not kind.startswith("text/event-stream"):
        raise NotAnOncueServer(
            url,
            f"{url} answered GET {EVENTS_PATH} with {kind or 'no content type'}, not an"
            " event stream: is it an oncue server?",
        )
    return response


def broke_off(url: str, last_event_id: str | None, tries: int = 0) -> ServerUnreachable:
    """The stream's connection ended without an `end` frame (and `tries` reconnects failed)."""
    resume = f"last_event_id={last_event_id!r}" if last_event_id else "no last_event_id"
    again = f" and {tries} reconnects failed" if tries else ""
    return ServerUnreachable(
        url,
        f"the event stream from oncue at {url} broke off{again}; call events() again with"
        f" {resume} to resume after the last event seen",
    )


Frame = tuple["StreamEvent | Ended | EventsDropped", str | None]  # a value, its event id


@attrs.define
class EventDecoder:
    """SSE text in, the frames' values out; `last_event_id` is the last task event's id
    decoded (a stream says which one it yielded: several may come in one chunk)."""

    last_event_id: str | None = None
    _buffer: str = ""

    def restart(self) -> None:
        """A new connection: forget the broken one's unfinished frame (the id is kept)."""
        self._buffer = ""

    def feed(self, text: str) -> list[StreamEvent | Ended]:
        """The values of the frames `text` completes; raises EventsDropped for `dropped`."""
        values: list[StreamEvent | Ended] = []
        for value, _ in self.frames(text):
            if isinstance(value, EventsDropped):
                raise value
            values.append(value)
        return values

    def frames(self, text: str) -> list[Frame]:
        """Each frame `text` completes: its value (`dropped`: an EventsDropped to raise once
        the values before it are taken) and its event id."""
        self._buffer += text.replace("\r\n", "\n")
        found: list[Frame] = []
        while "\n\n" in self._buffer:
            raw, _, self._buffer = self._buffer.partition("\n\n")
            frame = self._frame(raw)
            if frame[0] is not None:
                found.append(frame)  # type: ignore[arg-type]
        return found

    def _frame(self, raw: str) -> tuple[StreamEvent | Ended | EventsDropped | None, str | None]:
        event_id = None
        for line in raw.split("\n"):
            name, _, field = line.partition(":")
            if name == "id":
                event_id = field.removeprefix(" ")
        return self._value(raw), event_id

    def _value(self, raw: str) -> StreamEvent | Ended | EventsDropped | None:
        kind, data, event_id = "message", "", None
        for line in raw.split("\n"):
            name, _, field = line.partition(":")
            field = field.removeprefix(" ")
            if name == "event":
                kind = field
            elif name == "data":
                data += field
            elif name == "id":
                event_id = field
        if not data:  # a comment (the heartbeat, the greeting) or `retry:`
            return None
        body = json.loads(data)
        if kind == "task":
            if event_id is not None:
                self.last_event_id = event_id
            return task_event(body, event_id)
        if kind == "actor":
            return ActorEvent(body["kind"], body["path"], body["restarts"], body.get("error"))
        if kind == "reset":
            return EventsReset(str(body.get("reason", "")))
        if kind == "dropped":
            return EventsDropped(str(body.get("reason", "the server dropped the stream")))
        if kind == "end":
            return Ended()
        return None  # a kind this client does not know (a newer server's): skipped


def task_event(data: Any, event_id: str | None) -> TaskEvent:
    """A `task` frame as the engine's TaskEvent; `at` exact from the frame's id (`<at>-<n>`)."""
    at_text = None if event_id is None else event_id.rpartition("-")[0]
    try:
        at = float(at_text) if at_text else _epoch(data["at"])
    except ValueError:
        at = _epoch(data["at"])
    return TaskEvent(
        task_id=data["id"],
        type=data["type"],
        state=TaskState(data["status"]),
        at=at,
        attempts=data["attempt"],
        worker=data.get("worker"),
        number=data.get("number", 0),
        error=data.get("error"),
    )


def _epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()
