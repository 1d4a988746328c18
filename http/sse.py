"""Server-Sent Events for `GET /api/v1/events`: the filter a client asks for, and the frames.

Pure: parsing the query into an `EventFilter` (422 naming the field), deciding which events a
caller sees (tenancy: its own tasks only; supervision events to admins only), and encoding
frames. The route that streams them is routes_events.py.

Each task event's SSE id is `<at>-<number>`: when it happened (wall clock, exact) and which
task. A client that reconnects sends the last one back as `Last-Event-ID`, and the route
replays what came after it in that order (see replay.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import msgspec

from oncue.actors import LifecycleEvent, TaskEvent, TaskState
from oncue.actors.runtime.events import EventKind

from .auth import Principal
from .errors import ApiError
from .models import iso
from .tenancy import owner_of

STATES = [state.value for state in TaskState]
FILTERS = ("task", "type", "status")
HEARTBEAT = b": keep-alive\n\n"
# The supervision events a stream carries (started and stopped are routine: left out).
SUPERVISION = frozenset({EventKind.CRASHED, EventKind.RESTARTED, EventKind.GAVE_UP})

EventKey = tuple[float, int]  # (at, number): the order events are sent and replayed in

_encoder = msgspec.json.Encoder()


@attrs.frozen
class EventFilter:
    """Which events one stream carries: filters, and whose tasks (owner None: everyone's)."""

    task: str | None = None  # a task's id or number
    type: str | None = None
    status: frozenset[TaskState] | None = None
    owner: str | None = None
    admin: bool = True  # sees every tenant's tasks and the supervision events

    @classmethod
    def parse(cls, args: Mapping[str, str], who: Principal) -> EventFilter:
        """The filter of a query string; ApiError 422 naming the field it cannot use."""
        for name in args:
            if name not in FILTERS:
                message = f"unknown filter {name!r}; filters are {', '.join(FILTERS)}"
                raise ApiError(422, "invalid_field", message, field=name)
        status = None
        if args.get("status"):
            status = frozenset(_state(value) for value in args["status"].split(","))
        return cls(
            task=args.get("task") or None,
            type=args.get("type") or None,
            status=status,
            owner=None if who.admin else owner_of(who),
            admin=who.admin,
        )

    @property
    def everything(self) -> bool:
        """Whether this stream carries every task event (an admin's, unfiltered)."""
        return self.admin and self.task is None and self.type is None and self.status is None

    def matches(self, event: TaskEvent) -> bool:
        """Whether this stream carries `event`."""
        if not self.admin and event.owner != self.owner:
            return False
        if self.task is not None and self.task not in (event.task_id, str(event.number)):
            return False
        if self.type is not None and event.type != self.type:
            return False
        return self.status is None or event.state in self.status


def _state(value: str) -> TaskState:
    if value not in STATES:
        message = f"status must be one of {', '.join(STATES)} (comma-separated), got {value!r}"
        raise ApiError(422, "invalid_field", message, field="status")
    return TaskState(value)


def event_key(event: TaskEvent) -> EventKey:
    return (event.at, event.number)


def event_id(key: EventKey) -> str:
    """The SSE id of the event with this key: `repr(at)-number` (repr round-trips exactly)."""
    return f"{key[0]!r}-{key[1]}"


def parse_event_id(text: str) -> EventKey | None:
    """The key a `Last-Event-ID` names, or None when it is not one of ours."""
    at, dash, number = text.strip().rpartition("-")
    try:
        key = (float(at), int(number))
    except ValueError:
        return None
    if not dash or key[0] != key[0] or key[0] in (float("inf"), float("-inf")):
        return None
    return key


def frame(kind: str, data: Any, event_id: str | None = None) -> bytes:
    """One SSE frame: `id:` (if given), `event:`, one `data:` line of JSON."""
    head = b"" if event_id is None else b"id: " + event_id.encode() + b"\n"
    return head + b"event: " + kind.encode() + b"\ndata: " + _encoder.encode(data) + b"\n\n"


def task_frame(event: TaskEvent) -> bytes:
    """A task transition as an SSE frame (`event: task`). The hub encodes each event once for
    every stream (hub.py); hashing each event for a cache cost more than encoding it."""
    data = {
        "id": event.task_id,
        "number": event.number,
        "type": event.type,
        "status": event.state.value,
        "attempt": event.attempts,
        "worker": event.worker,
        "at": iso(event.at),
        "error": event.error,
    }
    return frame("task", data, event_id(event_key(event)))


def actor_frame(event: LifecycleEvent) -> bytes:
    """A supervision event as an SSE frame (`event: actor`): crashed, restarted, gave up."""
    error = None if event.error is None else repr(event.error)
    data = {"kind": event.kind.value, "path": event.path, "restarts": event.restarts}
    return frame("actor", {**data, "error": error})
