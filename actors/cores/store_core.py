"""The store's rules, with no I/O: records, counts, keys, admission and every transition.

The store actor (store.py) is a thin adapter around one StoreCore: it drains its mailbox, reads
from the backend what a message needs (a record that is not in memory, the records of some
idempotency keys, what a shared store's admission goes by), then calls the core, whose plain
methods answer (or raise the error the caller gets) and fill the current ``Batch``: what to
commit, what became ready, what was cancelled, what finished, which events to publish. After
the batch commits the actor replies, wakes waiters and tells the scheduler. Nothing here
awaits, so a decision never waits on the backend half-way; tests drive it without trio.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ..errors import (
    EngineClosed,
    QueueFull,
    TaskAlreadyFinished,
    TaskNotFailed,
    TaskNotFinished,
)
from ..messages import Completed, Failed, Job, Requeued, Retrying, Started
from ..task import FINISHED, Admitted, Progress, Task, TaskError, TaskEvent, TaskState, Transition
from .ids import new_task_id
from .ownership import Ownership
from .record import NewTask, TaskRecord

Counts = dict[tuple[str, TaskState], int]
Queued = dict[int, int]  # priority -> how many tasks wait (pending or retrying)
_PENDING, _RETRYING = TaskState.PENDING, TaskState.RETRYING
_RETRY_CLEARS = ("finished_at", "run_at", "started_at", "result", "error", "worker")


class Batch:
    """What one batch of messages did, for the store actor to commit and announce."""

    __slots__ = ("cancelled", "changed", "deleted", "events", "finished", "ready")

    def __init__(self, events: list[TaskEvent] | None = None) -> None:
        self.changed: dict[str, TaskRecord] = {}  # to write, by id
        self.deleted: list[str] = []  # to delete (finished tasks)
        self.ready: list[Job] = []  # for our scheduler, once committed
        self.cancelled: list[str] = []  # for our scheduler: drop or interrupt
        self.finished: list[TaskRecord] = []  # wake who waits on them
        self.events = events  # to publish; None: nobody subscribes


class StoreCore:
    """Every task state change, as plain calls. ``unfinished`` holds the tasks this engine
    runs (all of them, unless the ownership is shared); ``counts`` by (type, state);
    ``queued``: how many of them wait to run (pending or retrying), by priority."""

    def __init__(
        self,
        ownership: Ownership,
        queue_size: int,
        unfinished: Iterable[TaskRecord] = (),
        counts: Counts | None = None,
    ) -> None:
        self.ownership = ownership
        self.queue_size = queue_size
        self.unfinished: dict[str, TaskRecord] = {record.id: record for record in unfinished}
        self.counts: defaultdict[tuple[str, TaskState], int] = defaultdict(int, counts or {})
        self.queued: defaultdict[int, int] = defaultdict(int)
        for record in self.unfinished.values():
            if record.state is _PENDING or record.state is _RETRYING:
                self.queued[record.priority] += 1
        self.closed = False
        self.batch = Batch()

    def begin(self, events: bool) -> Batch:
        """Start a new batch (``events``: somebody subscribes, so build TaskEvents)."""
        self.batch = Batch([] if events else None)
        return self.batch

    # -- lookups: what is known without the backend ----------------------------------------------

    def known(self, task_id: str) -> TaskRecord | None:
        """The record of ``task_id`` if this store holds it or changed it in this batch."""
        return self.unfinished.get(task_id) or self.batch.changed.get(task_id)

    def known_key(self, key: str) -> TaskRecord | None:
        """The record with idempotency key ``key`` among those changed in this batch."""
        for record in self.batch.changed.values():
            if record.key == key:
                return record
        return None

    # -- admission --------------------------------------------------------------------------------

    def check_admission(self, creating: int) -> None:
        """Raise EngineClosed, or QueueFull if ``creating`` more would pass queue_size."""
        if self.closed:
            raise EngineClosed()
        unfinished = self.ownership.unfinished_total(self.unfinished)
        if unfinished + creating > self.queue_size:
            raise QueueFull(self.queue_size, unfinished, creating)

    def submit(
        self, tasks: list[NewTask], existing: dict[str, TaskRecord], now: float
    ) -> list[Admitted]:
        """Admit ``tasks`` all or none (raises EngineClosed or QueueFull). ``existing``: the
        stored records of their keys, where there are (the adapter reads them first)."""
        self.check_admission(sum(1 for t in tasks if t.key is None or t.key not in existing))
        admitted: list[Admitted] = []
        entered = Transition(TaskState.PENDING, now)
        for task in tasks:
            key = task.key
            if key is not None and key in existing:
                admitted.append(Admitted(existing[key].snapshot(), False))
                continue
            record = self.create(task, entered)
            if key is not None:
                existing[key] = record
            admitted.append(Admitted(record.snapshot(), True))
        return admitted

    def submit_nowait(self, tasks: list[NewTask], now: float) -> list[TaskRecord]:
        """Admit each of ``tasks``; one that cannot be (queue full, closed) is recorded failed
        with that error, never dropped. Returns those refused."""
        entered = Transition(TaskState.PENDING, now)
        refused = []
        for task in tasks:
            try:
                self.check_admission(1)
            except (EngineClosed, QueueFull) as error:
                record = self.create(task, entered, ready=False)
                record.error = TaskError.from_exception(error)
                self.move(record, TaskState.FAILED, now)
                refused.append(record)
            else:
                self.create(task, entered)
        return refused

    def create(self, task: NewTask, entered: Transition, *, ready: bool = True) -> TaskRecord:
        """Record ``task`` pending. ``entered`` is its first history entry (pending, now): one
        tuple shared by the tasks a batch creates together."""
        now = entered.at
        record = TaskRecord(  # positional, in field order: keywords cost half as much again
            task.id or new_task_id(),
            self.ownership.next_number(),
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
            task.payload_json,
        )
        if task.headers is not None:  # rare: spare the common path a keyword argument
            record.headers = task.headers
        batch = self.batch
        batch.changed[record.id] = record
        if self.ownership.place(record, ready):
            self.counts[record.type, TaskState.PENDING] += 1
            self.queued[record.priority] += 1
            self.unfinished[record.id] = record
            if ready:
                batch.ready.append(record.job())
        if batch.events is not None:
            batch.events.append(
                TaskEvent(
                    record.id,
                    record.type,
                    TaskState.PENDING,
                    now,
                    0,
                    None,
                    record.number,
                    record.owner,
                )
            )
        return record

    # -- transitions ------------------------------------------------------------------------------

    def move(self, record: TaskRecord, state: TaskState, at: float) -> None:
        """``record`` enters ``state`` at ``at`` (wall clock): counted, committed, announced."""
        counts = self.counts
        before = record.state
        counts[record.type, before] -= 1
        counts[record.type, state] += 1
        if before is _PENDING or before is _RETRYING:  # queued by priority: only waiting ones
            self.queued[record.priority] -= 1
        if state is _PENDING or state is _RETRYING:
            self.queued[record.priority] += 1
        # The history says who ran each attempt and why one failed (the HTTP `history`).
        worker = record.worker if state is TaskState.RUNNING else None
        error = None
        if state is TaskState.RETRYING or state is TaskState.FAILED:
            error = None if record.error is None else record.error.summary
        record.move(state, at, worker, error)
        batch = self.batch
        batch.changed[record.id] = record
        if state in FINISHED:
            self.unfinished.pop(record.id, None)  # not ours (a shared store) if absent
            record.finished_at = at
            batch.finished.append(record)
        if batch.events is not None:
            event = TaskEvent(
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
            batch.events.append(event)

    def record(self, changes: Iterable[Any]) -> None:
        """Apply what the scheduler decided (Started, Completed, Retrying, Failed, Requeued),
        in order; a task cancelled or deleted meanwhile is left alone: the store's word is final."""
        unfinished = self.unfinished
        for change in changes:
            if isinstance(change, Started):
                self.started(change)
                continue
            record = unfinished.get(change.id)
            if record is None or record.state is not TaskState.RUNNING:
                continue
            if isinstance(change, Completed):
                record.result = change.result
                record.error = None
                self.move(record, TaskState.COMPLETED, change.at)
            elif isinstance(change, Retrying):
                record.error = change.error
                record.run_at = change.run_at
                record.progress = None  # the next attempt reports its own
                self.move(record, TaskState.RETRYING, change.at)
            elif isinstance(change, Failed):
                record.error = change.error
                self.move(record, TaskState.FAILED, change.at)
            elif isinstance(change, Requeued):
                if not change.started:
                    record.attempts -= 1
                record.progress = None
                self.move(record, TaskState.PENDING, change.at)

    def started(self, change: Started) -> None:
        """A worker took these tasks: running, one attempt more (unless cancelled meanwhile)."""
        unfinished = self.unfinished
        for task_id in change.ids:
            record = unfinished.get(task_id)
            if record is not None and record.state in (TaskState.PENDING, TaskState.RETRYING):
                record.attempts += 1
                record.worker = change.worker
                record.started_at = change.at
                self.move(record, TaskState.RUNNING, change.at)

    def progress(self, task_id: str, fraction: float, message: str) -> None:
        # Unfinished is enough: a fast task's progress can arrive before its start is recorded
        # (the scheduler holds starts back briefly to send them with the outcome).
        record = self.unfinished.get(task_id)
        if record is not None:
            record.progress = Progress(fraction, message)
            self.batch.changed[record.id] = record

    def cancel(self, record: TaskRecord, now: float) -> Task:
        """Cancel an unfinished task (raises TaskAlreadyFinished); its worker is interrupted."""
        if record.state.finished:
            raise TaskAlreadyFinished(record.id, record.state.value)
        self.move(record, TaskState.CANCELLED, now)
        self.batch.cancelled.append(record.id)
        return record.snapshot()

    def delete(self, record: TaskRecord) -> None:
        """Forget a finished task (raises TaskNotFinished)."""
        if not record.state.finished:
            raise TaskNotFinished(record.id, record.state.value)
        self.counts[record.type, record.state] -= 1
        self.batch.deleted.append(record.id)
        self.batch.changed.pop(record.id, None)

    def retry(self, record: TaskRecord, now: float) -> Task:
        """Re-admit a failed task with a fresh set of attempts (the same rules as a submit)."""
        if record.state is not TaskState.FAILED:
            raise TaskNotFailed(record.id, record.state.value)
        self.check_admission(1)
        for field in _RETRY_CLEARS:
            setattr(record, field, None)
        record.attempts = 0
        record.progress = None
        ours = self.ownership.readmit(record)
        if ours:
            self.unfinished[record.id] = record
        self.move(record, TaskState.PENDING, now)
        if ours:
            self.batch.ready.append(record.job())
        return record.snapshot()

    # -- what other engines did (shared ownership) --------------------------------------------

    def lost(self, ids: Iterable[str]) -> set[str]:
        """These writes were refused: our lease ran out and another engine may run the task.
        Forget them and have their worker interrupted. Returns the ids."""
        gone = set(ids)
        batch = self.batch
        for task_id in gone:
            if self.unfinished.pop(task_id, None) is not None:
                batch.cancelled.append(task_id)
        batch.finished = [record for record in batch.finished if record.id not in gone]
        return gone

    def cancelled_elsewhere(self, ids: Iterable[str]) -> None:
        """Another engine cancelled these tasks (it wrote that); we only stop running them."""
        for task_id in ids:
            record = self.unfinished.pop(task_id, None)
            if record is not None:
                record.state = TaskState.CANCELLED
                self.batch.cancelled.append(task_id)

    def claimed(self, records: list[TaskRecord]) -> list[Job]:
        """Our claim got these: ours to run."""
        for record in records:
            self.unfinished[record.id] = record
        return [record.job() for record in records]

    def dropped(self, ids: Iterable[str]) -> list[str]:
        """No longer ours (a renewal said so): the ones we held, to interrupt."""
        return [task_id for task_id in ids if self.unfinished.pop(task_id, None) is not None]

    # -- the whole store ---------------------------------------------------------------------------

    def purged(self, counts: Counts) -> None:
        for key, count in counts.items():
            self.counts[key] -= count

    def close_admission(self) -> int:
        """Refuse every later submit; returns how many tasks are unfinished."""
        self.closed = True
        return len(self.unfinished)

    def queue(self) -> list[tuple[Job, TaskState]]:
        """A Job and its state for every task this store holds (the scheduler's reload)."""
        return [(record.job(), record.state) for record in self.unfinished.values()]
