"""The task model: what a task is, the values the engine hands out, and the options' rules."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import attrs

from .cores.rules import INT64_MAX, INT64_MIN, check_int64
from .errors import InvalidField


class TaskState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    # Enum's own __hash__ is Python code (hash of the name); str's is C and cached. Counters
    # and sets keyed by state hash one on every transition. Also consistent with == "pending".
    __hash__ = str.__hash__

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})
UNFINISHED = frozenset({TaskState.PENDING, TaskState.RUNNING, TaskState.RETRYING})

PRIORITIES = {"low": 0, "normal": 1, "high": 2, "critical": 3}
DEFAULT_PRIORITY = PRIORITIES["normal"]
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_RETRIES = 3


PRIORITY_RANGE = (INT64_MIN, INT64_MAX)  # what a 64-bit database column holds


def parse_priority(value: int | str) -> int:
    """A priority name (low, normal, high, critical) or a 64-bit int; higher runs first."""
    if isinstance(value, int) and not isinstance(value, bool):
        return check_int64("priority", value)
    if isinstance(value, str) and value.lower() in PRIORITIES:
        return PRIORITIES[value.lower()]
    message = f"priority must be an int or one of {list(PRIORITIES)}, got {value!r}"
    raise InvalidField("priority", message)


def check_timeout(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise InvalidField("timeout", f"timeout must be a number of seconds > 0, got {value!r}")
    return float(value)


def check_max_retries(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        message = f"max_retries must be an int >= 0, or -1 for unlimited, got {value!r}"
        raise InvalidField("max_retries", message)
    return value


@attrs.frozen
class TaskError:
    """Why an attempt failed: the exception's type name, its message and traceback."""

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, error: BaseException, traceback: str = "") -> TaskError:
        return cls(type(error).__name__, str(error), traceback)

    @property
    def summary(self) -> str:
        """``Type: message`` (the message's first 200 characters), for events and history."""
        message = self.message if len(self.message) <= 200 else self.message[:199] + "…"
        return f"{self.type}: {message}" if message else self.type


@attrs.frozen
class Progress:
    fraction: float
    message: str = ""


# Builds a NamedTuple from a tuple of its fields without its generated __new__ (a Python
# function): ``tuple_of(Transition, (state, at, None, None))``, every field given. A call less
# on the paths taken once a task (a Job, a Transition, an outcome).
tuple_of = tuple.__new__


class Transition(NamedTuple):
    """One entry of a task's history: it entered ``state`` at wall-clock time ``at``.

    ``worker`` is who ran it (on entering running; ``node/worker`` on a shared store), and
    ``error`` the failed attempt's error as ``Type: message`` (on entering retrying or failed).
    """

    state: TaskState
    at: float
    worker: str | None = None
    error: str | None = None


# Not slotted: a frozen slotted class sets each field through object.__setattr__, which
# made a snapshot (taken for every submitted task) cost twice as much to build.
@attrs.frozen(slots=False)
class Task:
    """A snapshot of one task, as the store last recorded it. Times are wall-clock epochs."""

    id: str
    number: int
    type: str
    payload: Any
    priority: int
    state: TaskState
    attempts: int
    max_retries: int
    timeout: float
    created_at: float
    run_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: TaskError | None = None
    worker: str | None = None
    progress: Progress | None = None
    key: str | None = None
    owner: str | None = None
    history: tuple[Transition, ...] = ()
    headers: Mapping[str, str] | None = None  # what the submitter set, and the trace context

    @property
    def retry_count(self) -> int:
        """Attempts after the first (what the HTTP API calls ``retry_count``)."""
        return max(self.attempts - 1, 0)


@attrs.frozen(slots=False)  # as Task: callers build one per task, and this is cheaper
class Submission:
    """One task to submit; options left None take the handler's defaults."""

    type: str
    payload: Any = None
    priority: int | str | None = None
    max_retries: int | None = None
    timeout: float | None = None
    delay: float | None = None
    run_at: float | None = None
    key: str | None = None
    owner: str | None = None  # who submitted it (the HTTP layer's token subject)
    # The payload's JSON text, if the caller has it (the HTTP layer measured the payload's size
    # from it): a durable store commits it as it is instead of encoding the payload again.
    payload_json: str | None = None
    # string metadata carried with the task to every attempt (trace context: `traceparent`)
    headers: Mapping[str, str] | None = None


class Admitted(NamedTuple):
    """What the store answered for one submission: the task, and whether it is new. (A
    NamedTuple, built once a submitted task: ``tuple_of`` makes one without a Python call.)"""

    task: Task
    created: bool


@attrs.frozen
class Page:
    """One page of a listing, newest first; pass ``next_cursor`` back for the next page."""

    tasks: list[Task]
    next_cursor: str | None


@attrs.frozen
class WorkerInfo:
    name: str
    state: str
    current_task: str | None
    tasks_done: int
    restarts: int
    last_error: str | None


@attrs.frozen
class Stats:
    total_processed: int
    successful: int
    failed: int
    cancelled: int
    queue_length: int
    running: int
    by_state: dict[str, int]
    by_type: dict[str, dict[str, int]]
    workers_busy: int
    workers_idle: int
    paused: bool
    # priority -> tasks waiting to run (pending or retrying), highest priority first; on a
    # shared store the whole store's. Their sum is ``queue_length``.
    queued_by_priority: dict[int, int] = attrs.field(factory=dict)


@attrs.frozen(slots=False)  # as Task: one is built for every transition while subscribed
class TaskEvent:
    """A task entered a new state (what ``engine.events()`` yields).

    ``number`` is the task's number, ``owner`` who submitted it (the HTTP layer's tenant),
    ``error`` the failed attempt's error as ``Type: message`` (retrying, failed).
    """

    task_id: str
    type: str
    state: TaskState
    at: float
    attempts: int
    worker: str | None = None
    number: int = 0
    owner: str | None = None
    error: str | None = None


@attrs.frozen
class ShutdownReport:
    """What shutdown left behind: tasks still unfinished (pending for a durable store)."""

    unfinished: list[str]
    interrupted: int
