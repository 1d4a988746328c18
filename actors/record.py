"""The store's mutable record of a task: only the store actor and its backend touch it."""

from __future__ import annotations

from typing import Any

import attrs

from .messages import Job
from .task import Progress, Task, TaskError, TaskState, Transition


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
    run_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: TaskError | None = None
    worker: str | None = None
    progress: Progress | None = None
    key: str | None = None
    owner: str | None = None
    history: list[Transition] = attrs.field(factory=list)
    node: str | None = None  # the engine that owns it (shared backends); None: unowned

    def move(self, state: TaskState, at: float) -> None:
        self.state = state
        self.history.append(Transition(state, at))

    def snapshot(self) -> Task:
        return Task(
            id=self.id,
            number=self.number,
            type=self.type,
            payload=self.payload,
            priority=self.priority,
            state=self.state,
            attempts=self.attempts,
            max_retries=self.max_retries,
            timeout=self.timeout,
            created_at=self.created_at,
            run_at=self.run_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            result=self.result,
            error=self.error,
            worker=self.worker,
            progress=self.progress,
            key=self.key,
            owner=self.owner,
            history=tuple(self.history),
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
        )


@attrs.frozen(slots=True)
class NewTask:
    """A validated submission, options resolved against the handler's defaults."""

    type: str
    payload: Any
    priority: int
    max_retries: int
    timeout: float
    run_at: float | None
    key: str | None
    owner: str | None = None
    id: str | None = None  # given at the edge by submit_nowait; else the store makes one
