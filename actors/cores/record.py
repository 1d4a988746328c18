"""The store's mutable record of a task: only the store actor and its backend touch it."""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs

from ..messages import Job
from ..task import Progress, Task, TaskError, TaskState, Transition


@attrs.define(slots=True, eq=False)
class TaskRecord:
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
    # What a submit sets, first: the store creates a record with positional arguments, which
    # cost a third of keywords on an init this long.
    run_at: float | None = None
    key: str | None = None
    owner: str | None = None
    history: list[Transition] = attrs.field(factory=list)
    payload_json: str | None = None  # the payload's JSON text to commit, when admission has it
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: TaskError | None = None
    worker: str | None = None
    progress: Progress | None = None
    node: str | None = None  # the engine that owns it (shared backends); None: unowned
    headers: dict[str, str] | None = None  # fixed at submit, like the payload

    def move(
        self, state: TaskState, at: float, worker: str | None = None, error: str | None = None
    ) -> None:
        self.state = state
        self.history.append(Transition(state, at, worker, error))

    def snapshot(self) -> Task:
        # Positional, in Task's field order (a test pins it): keywords cost a third more, and
        # every submitted task is answered with a snapshot.
        return Task(
            self.id,
            self.number,
            self.type,
            self.payload,
            self.priority,
            self.state,
            self.attempts,
            self.max_retries,
            self.timeout,
            self.created_at,
            self.run_at,
            self.started_at,
            self.finished_at,
            self.result,
            self.error,
            self.worker,
            self.progress,
            self.key,
            self.owner,
            tuple(self.history),
            self.headers,
        )

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


class NewTask(NamedTuple):
    """A validated submission, options resolved against the handler's defaults (a NamedTuple,
    as the other per-task values are: one is built for every task submitted)."""

    type: str
    payload: Any
    priority: int
    max_retries: int
    timeout: float
    run_at: float | None
    key: str | None
    owner: str | None = None
    id: str | None = None  # given at the edge by submit_nowait; else the store makes one
    payload_json: str | None = None  # a durable store's: the payload as the JSON it commits
    headers: dict[str, str] | None = None
    # submit_nowait's: its first history entry (pending, when it was handed over), shared
    # with the Task it answered; else the store's now
    entered: Transition | None = None
