"""The HTTP API's request and response models (msgspec structs, which feed the OpenAPI spec).

The engine keeps its own attrs models; `task_out` is the one place a `Task` becomes JSON.
"""

from __future__ import annotations

import datetime
import functools
from typing import Annotated, Any

import msgspec
import msgspec.structs

from oncue.actors import Task, TaskState, Transition
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

TYPE_REGEX = f"^{TYPE_PATTERN}$"  # as msgspec checks a pattern: re.search
TaskType = Annotated[str, msgspec.Meta(pattern=TYPE_REGEX, max_length=MAX_TYPE_LENGTH)]
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


# A state's name as shown (`TaskState.value` is a descriptor, slower than a dict lookup).
_STATUS = {state: state.value for state in TaskState}


def task_out(task: Task) -> TaskOut:
    """The JSON form of a task, as a `TaskOut` (which msgspec encodes faster than a dict).

    Every answer with tasks builds one a task (a batch submit 100 times), so this reads each
    attribute once, calls no helper where an expression does, and formats timestamps through
    the cache directly.
    """
    created, started, finished, run_at = (
        task.created_at,
        task.started_at,
        task.finished_at,
        task.run_at,
    )
    error, progress, key, headers = task.error, task.progress, task.key, task.headers
    attempts = task.attempts
    created_iso = None if created is None else _iso(created)
    return TaskOut(
        task.id,
        task.number,
        task.type,
        task.payload,
        task.priority,
        _STATUS[task.state],
        created_iso,
        None if started is None else _iso(started),
        None if finished is None else _iso(finished),
        attempts - 1 if attempts > 1 else 0,  # retry_count
        task.max_retries,
        task.timeout,
        None if run_at is None else _iso(run_at),
        task.result,
        None if error is None else ErrorInfo(error.type, error.message, error.traceback),
        None if progress is None else ProgressInfo(progress.fraction, progress.message),
        attempts,
        task.worker,
        None if key is None else shown_key(key),
        None if headers is None else dict(headers),
        _history(task.history, created, created_iso),
    )


def _history(
    history: tuple[Transition, ...], created: float | None, created_iso: str | None
) -> list[HistoryEntry]:
    """The history as shown; a new task's one entry (entered when it was created: the same
    text) without a comprehension's frame."""
    if len(history) == 1:
        ((state, at, worker, error),) = history
        shown = created_iso if at == created else iso(at)
        return [HistoryEntry(_STATUS[state], shown, worker, error)]
    return [
        HistoryEntry(_STATUS[state], iso(at), worker, step_error)
        for state, at, worker, step_error in history
    ]
