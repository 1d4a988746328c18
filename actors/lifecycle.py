"""The store's handlers that move tasks through their lives: admission (submit, submit_nowait)
and what the workers report (started, completed, retrying, failed, requeued, progress).

A mixin of the Store (store.py), which owns the batch these handlers add to: every record they
change goes into ``_changed`` and is committed with the batch before anyone hears of it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from functools import partial

from .errors import EngineClosed, QueueFull
from .ids import new_task_id
from .listeners import Listeners
from .mailbox import Envelope
from .messages import (
    Completed,
    Failed,
    Job,
    ProgressReported,
    Record,
    Requeued,
    Retrying,
    Started,
    Submit,
    SubmitNowait,
)
from .record import NewTask, TaskRecord
from .sharing import SharedStore
from .task import FINISHED, Admitted, Progress, TaskError, TaskEvent, TaskState, Transition

logger = logging.getLogger("oncue.actors.store")


class Lifecycle(SharedStore):
    """Store handlers that create tasks and record their runs (see the Store for the batch)."""

    _counts: defaultdict[tuple[str, TaskState], int]
    _changed: dict[str, TaskRecord]
    _events: list[TaskEvent]
    _closed: bool
    _queue_size: int
    _number: int
    _listeners: Listeners
    _ready: list[Job]

    def _move(self, record: TaskRecord, state: TaskState, at: float) -> None:
        counts = self._counts
        counts[record.type, record.state] -= 1
        counts[record.type, state] += 1
        # The history says who ran each attempt and why one failed (the HTTP `history`).
        worker = record.worker if state is TaskState.RUNNING else None
        error = None
        if state is TaskState.RETRYING or state is TaskState.FAILED:
            error = None if record.error is None else record.error.summary
        record.move(state, at, worker, error)
        self._changed[record.id] = record
        if state in FINISHED:
            self._unfinished.pop(record.id, None)  # not ours (a shared store) if absent
            record.finished_at = at
            self._finished.append(record)
        if self._listeners.subscribed:
            self._events.append(
                TaskEvent(
                    record.id,
                    record.type,
                    state,
                    at,
                    record.attempts,
                    record.worker,
                    record.number,
                    record.owner,
                    error,
                )
            )

    async def _submit(self, message: Submit, envelope: Envelope) -> list[Admitted]:
        new: list[NewTask] = message.tasks
        await self._prepare(len(new))
        self._check_admission(0)
        existing: dict[str, TaskRecord] = {}
        for task in new:
            if task.key is not None and task.key not in existing:
                found = self._changed_key(task.key) or await self._read_key(task.key)
                if found is not None:
                    existing[task.key] = found
        self._check_admission(sum(1 for t in new if t.key is None or t.key not in existing))
        admitted: list[Admitted] = []
        entered = Transition(TaskState.PENDING, time.time())
        for task in new:
            key = task.key
            if key is not None and key in existing:
                admitted.append(Admitted(existing[key].snapshot(), False))
                continue
            record = self._create(task, entered)
            if key is not None:
                existing[key] = record
            admitted.append(Admitted(record.snapshot(), True))
        return admitted

    def _check_admission(self, creating: int) -> None:
        """Raise EngineClosed, or QueueFull if ``creating`` more would pass queue_size."""
        if self._closed:
            raise EngineClosed()
        unfinished = self._unfinished_total()
        if unfinished + creating > self._queue_size:
            raise QueueFull(self._queue_size, unfinished, creating)

    def _changed_key(self, key: str) -> TaskRecord | None:
        for record in self._changed.values():
            if record.key == key:
                return record
        return None

    async def _submit_nowait(self, message: SubmitNowait, envelope: Envelope) -> None:
        # Taken before any await: submit_nowait() now sends a new one, so the tasks counted
        # here (the numbers a shared store reserves for them) are all the tasks there are.
        message.taken = True
        await self._prepare(len(message.tasks))
        entered = Transition(TaskState.PENDING, time.time())
        for task in message.tasks:
            try:
                self._check_admission(1)
            except (EngineClosed, QueueFull) as refused:
                record = self._create(task, entered, ready=False)
                record.error = TaskError.from_exception(refused)
                self._move(record, TaskState.FAILED, entered.at)
                logger.warning("store.refused id=%s error=%r", record.id, refused)
            else:
                self._create(task, entered)

    def _create(self, task: NewTask, entered: Transition, *, ready: bool = True) -> TaskRecord:
        """Record ``task`` pending. ``entered`` is its first history entry (pending, now): one
        tuple shared by the tasks a batch creates together."""
        if self._shared:
            number = self._shared_state.numbers.popleft()
        else:
            self._number += 1
            number = self._number
        now = entered.at
        record = TaskRecord(  # positional, in field order: keywords cost half as much again
            task.id or new_task_id(),
            number,
            task.type,
            task.payload,
            task.priority,
            TaskState.PENDING,
            0,  # attempts
            task.max_retries,
            task.timeout,
            now,  # created_at
            task.run_at,
            task.key,
            task.owner,
            [entered],  # history
        )
        self._changed[record.id] = record
        if self._shared:
            self._created_shared(record, ready)
        else:
            self._counts[record.type, TaskState.PENDING] += 1
            self._unfinished[record.id] = record
            if ready:
                self._ready.append(record.job())
        if self._listeners.subscribed:
            self._events.append(
                TaskEvent(
                    record.id, record.type, TaskState.PENDING, now, 0, None, number, record.owner
                )
            )
        return record

    async def _record(self, message: Record, envelope: Envelope) -> None:
        unfinished = self._unfinished
        for change in message.changes:
            if isinstance(change, Started):
                self._started(change)
                continue
            record = unfinished.get(change.id)
            if record is None or record.state is not TaskState.RUNNING:
                continue  # cancelled (or deleted) meanwhile: the store's word is final
            if isinstance(change, Completed):
                record.result = change.result
                record.error = None
                self._move(record, TaskState.COMPLETED, change.at)
            elif isinstance(change, Retrying):
                record.error = change.error
                record.run_at = change.run_at
                record.progress = None  # the next attempt reports its own
                self._move(record, TaskState.RETRYING, change.at)
            elif isinstance(change, Failed):
                record.error = change.error
                self._move(record, TaskState.FAILED, change.at)
            elif isinstance(change, Requeued):
                if not change.started:
                    record.attempts -= 1
                record.progress = None
                self._move(record, TaskState.PENDING, change.at)

    def _started(self, change: Started) -> None:
        """A worker took these tasks: running, one attempt more (unless cancelled meanwhile)."""
        unfinished = self._unfinished
        for task_id in change.ids:
            record = unfinished.get(task_id)
            if record is not None and record.state in (TaskState.PENDING, TaskState.RETRYING):
                record.attempts += 1
                record.worker = change.worker
                record.started_at = change.at
                self._move(record, TaskState.RUNNING, change.at)

    async def _progress(self, message: ProgressReported, envelope: Envelope) -> None:
        # Unfinished is enough: a fast task's progress can arrive before its start is recorded
        # (the scheduler holds starts back briefly to send them with the outcome).
        record = self._unfinished.get(message.id)
        if record is not None:
            record.progress = Progress(message.fraction, message.message)
            self._changed[record.id] = record

    async def _read_key(self, key: str) -> TaskRecord | None:
        return await self._read(partial(self._backend.find_key, key))
