"""The one record of a task: built at admission, kept by the store, seen as a frozen Task.

A submitted task takes three shapes on its way: the caller's :class:`~oncue.actors.task.Submission`,
this record (admission checks the submission and builds it; the store numbers it and from
then on it is the store's alone), and the frozen :class:`~oncue.actors.task.Task` snapshots
the store hands out (their JSON is built from those, once, by the HTTP layer).

A snapshot is a copy of the record's attribute dict, not a field-by-field copy: the record's
``__dict__`` holds exactly Task's fields, by the same names (a test pins it), and what only
the store needs (the payload's JSON text, the owning node) lives in slots beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..messages import Job
from ..task import Progress, Task, TaskError, TaskState, Transition

_new = object.__new__
_set = object.__setattr__


class TaskRecord:
    """The store's mutable record of a task: only the store actor and its backend touch it
    (admission builds it, then hands it over in the Submit message and never touches it again).
    """

    # Task's fields live in __dict__ (a snapshot copies it whole); the store's own in slots.
    __slots__ = ("__dict__", "node", "payload_json")

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
    run_at: float | None
    started_at: float | None
    finished_at: float | None
    result: Any
    error: TaskError | None
    worker: str | None
    progress: Progress | None
    key: str | None
    owner: str | None
    history: tuple[Transition, ...]
    headers: Mapping[str, str] | None  # fixed at submit, like the payload
    payload_json: str | None  # the payload's JSON text to commit, when admission has it
    node: str | None  # the engine that owns it (shared backends); None: unowned

    def __init__(
        self,
        id: str,
        number: int,
        type: str,
        payload: Any,
        priority: int,
        state: TaskState,
        attempts: int,
        max_retries: int,
        timeout: float,
        created_at: float,
        # What a submit sets, first: admission builds a record with positional arguments,
        # which cost a third of keywords on an init this long.
        run_at: float | None = None,
        key: str | None = None,
        owner: str | None = None,
        history: Iterable[Transition] = (),
        payload_json: str | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        result: Any = None,
        error: TaskError | None = None,
        worker: str | None = None,
        progress: Progress | None = None,
        node: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # In Task's field order, so a snapshot's dict lists them as Task's own would.
        self.id = id
        self.number = number
        self.type = type
        self.payload = payload
        self.priority = priority
        self.state = state
        self.attempts = attempts
        self.max_retries = max_retries
        self.timeout = timeout
        self.created_at = created_at
        self.run_at = run_at
        self.started_at = started_at
        self.finished_at = finished_at
        self.result = result
        self.error = error
        self.worker = worker
        self.progress = progress
        self.key = key
        self.owner = owner
        self.history = history if isinstance(history, tuple) else tuple(history)
        self.headers = headers
        self.payload_json = payload_json
        self.node = node

    def __repr__(self) -> str:
        return f"TaskRecord(id={self.id!r}, type={self.type!r}, state={self.state.value!r})"

    def move(
        self, state: TaskState, at: float, worker: str | None = None, error: str | None = None
    ) -> None:
        """Enter ``state`` at ``at``: one more entry in the history."""
        self.state = state
        self.history += (Transition(state, at, worker, error),)

    def snapshot(self) -> Task:
        """The record as a frozen Task: its attribute dict copied (0.3 us; building a Task
        field by field took 0.75-1.1 us, and every submitted task is answered with one)."""
        task = _new(Task)
        _set(task, "__dict__", self.__dict__.copy())
        return task

    def copy(self) -> TaskRecord:
        """An independent record with the same values (what a shared store hands out)."""
        twin = _new(TaskRecord)
        _set(twin, "__dict__", self.__dict__.copy())
        twin.payload_json = self.payload_json
        twin.node = self.node
        return twin

    def job(self) -> Job:
        return Job(
            self.id,
            self.type,
            self.payload,
            self.priority,
            self.timeout,
            self.attempts,
            self.max_retries,
            self.run_at,
            self.headers,
        )
