"""The HTTP API's request and response models (msgspec structs, which feed the OpenAPI spec).

The engine keeps its own attrs models; `task_json` is the one place a `Task` becomes JSON.
"""

from __future__ import annotations

import datetime
import functools
from typing import Annotated, Any

import msgspec
import msgspec.structs

from oncue.actors import Task
from oncue.actors.cores.rules import (
    INT64_MAX,
    INT64_MIN,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_KEY_LENGTH,
    MAX_TYPE_LENGTH,
    TYPE_PATTERN,
)

from .tenancy import shown_key

# The last second of year 9999: later run_at values could not be shown as ISO 8601.
MAX_EPOCH = 253_402_300_799.0
# Bounds every submitted option is checked against (a 422 naming the field), so that nothing
# a client sends can overflow a store's integer column or a timer. The 64-bit range, the key's
# length and the type's pattern are the engine's own (oncue.actors.rules); these are tighter.
MAX_TIMEOUT = 7 * 86400.0
MAX_RETRIES = 1000
MAX_DELAY = 10 * 365 * 86400.0

TaskType = Annotated[str, msgspec.Meta(pattern=f"^{TYPE_PATTERN}$", max_length=MAX_TYPE_LENGTH)]
Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
PriorityName = Annotated[str, msgspec.Meta(max_length=20)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH)]
# A task's headers: string metadata carried to every attempt (W3C `traceparent`, `tracestate`)
Headers = Annotated[
    dict[
        Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HEADER_NAME)],
        Annotated[str, msgspec.Meta(max_length=MAX_HEADER_VALUE)],
    ],
    msgspec.Meta(max_length=MAX_HEADERS),
]


class TaskIn(msgspec.Struct, forbid_unknown_fields=True):
    """A task to submit. `priority` is an int or low/normal/high/critical; `run_at` is epoch
    seconds or ISO 8601 (UTC when it has no offset). `key` makes the submit idempotent."""

    type: TaskType
    payload: Any = None
    priority: Int64 | PriorityName | None = None
    max_retries: Annotated[int, msgspec.Meta(ge=-1, le=MAX_RETRIES)] | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0, le=MAX_TIMEOUT)] | None = None
    delay: Annotated[float, msgspec.Meta(ge=0, le=MAX_DELAY)] | None = None
    run_at: Annotated[float, msgspec.Meta(ge=0, le=MAX_EPOCH)] | datetime.datetime | None = None
    key: Key | None = None
    headers: Headers | None = None


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    tasks: list[TaskIn]


class WaitManyIn(msgspec.Struct, forbid_unknown_fields=True):
    """Tasks to wait for (`POST /api/v1/tasks/wait`): up to the batch limit of ids, and the
    seconds to wait at most (else `?timeout=`, default 30, at most 300)."""

    ids: list[Annotated[str, msgspec.Meta(min_length=1, max_length=100)]]
    timeout: Annotated[float, msgspec.Meta(ge=0, le=300)] | None = None


class WorkersIn(msgspec.Struct, forbid_unknown_fields=True):
    count: Int64


class ErrorInfo(msgspec.Struct):
    type: str
    message: str
    traceback: str = ""


class HistoryEntry(msgspec.Struct):
    """One state a task entered: when, on which worker (running), and why (retrying, failed:
    the failed attempt's error as `Type: message`)."""

    status: str
    at: str | None
    worker: str | None = None
    error: str | None = None


class ProgressInfo(msgspec.Struct):
    fraction: float
    message: str


class TaskOut(msgspec.Struct):
    """A task as every route returns it; timestamps are ISO 8601 UTC strings."""

    id: str
    number: int
    type: str
    payload: Any
    priority: int
    status: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    retry_count: int
    max_retries: int
    timeout: float
    run_at: str | None
    result: Any
    error: ErrorInfo | None
    progress: ProgressInfo | None
    attempts: int
    worker: str | None
    key: str | None
    headers: dict[str, str] | None
    history: list[HistoryEntry]


class TaskList(msgspec.Struct):
    tasks: list[TaskOut]
    next_cursor: str | None


class TaskBatch(msgspec.Struct):
    tasks: list[TaskOut]


# `/api/v1/jobs` answers the same tasks under the names the "Task Queue System" README used.
JOB_NAMES = {"id": "job_id", "finished_at": "completed_at"}
JobOut = msgspec.defstruct(
    "JobOut",
    [
        (JOB_NAMES.get(field.name, field.name), field.type)
        for field in msgspec.structs.fields(TaskOut)
    ],
)
JobList = msgspec.defstruct("JobList", [("jobs", list[JobOut]), ("next_cursor", str | None)])  # type: ignore[valid-type]
JobBatch = msgspec.defstruct("JobBatch", [("jobs", list[JobOut])])  # type: ignore[valid-type]


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    field: str | None = None


class ErrorOut(msgspec.Struct):
    error: ErrorBody


def iso(timestamp: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC with a Z, or None."""
    return None if timestamp is None else _iso(timestamp)


@functools.lru_cache(maxsize=4096)
def _iso(timestamp: float) -> str:
    # Cached: formatting costs ~4 us here, and the tasks of one batch share their created_at.
    moment = datetime.datetime.fromtimestamp(min(timestamp, MAX_EPOCH), datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def epoch(moment: float | datetime.datetime | None) -> float | None:
    """A run_at given as epoch seconds or a datetime (naive means UTC), as epoch seconds.

    Raises ValueError (a 422 naming run_at) past the year 9999.
    """
    if moment is not None and not isinstance(moment, float | int):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        moment = moment.timestamp()
    if moment is not None and not moment <= MAX_EPOCH:
        raise ValueError(f"run_at must be before the year 10000, got {moment!r}")
    return moment


def task_json(task: Task) -> dict[str, Any]:
    """The JSON form of a task: the fields of `TaskOut`."""
    error = task.error
    progress = task.progress
    return {
        "id": task.id,
        "number": task.number,
        "type": task.type,
        "payload": task.payload,
        "priority": task.priority,
        "status": task.state.value,
        "created_at": iso(task.created_at),
        "started_at": iso(task.started_at),
        "finished_at": iso(task.finished_at),
        "retry_count": task.retry_count,
        "max_retries": task.max_retries,
        "timeout": task.timeout,
        "run_at": iso(task.run_at),
        "result": task.result,
        "error": (
            None
            if error is None
            else {"type": error.type, "message": error.message, "traceback": error.traceback}
        ),
        "progress": (
            None
            if progress is None
            else {"fraction": progress.fraction, "message": progress.message}
        ),
        "attempts": task.attempts,
        "worker": task.worker,
        "key": shown_key(task.key),
        "headers": None if task.headers is None else dict(task.headers),
        "history": [
            {"status": state.value, "at": iso(at), "worker": worker, "error": step_error}
            for state, at, worker, step_error in task.history
        ],
    }
