"""The store's rules, with no I/O: records, counts, keys, admission and every transition.

The store actor (store.py) is a thin adapter around one StoreCore: it drains its mailbox, reads
from the backend what a message needs (a record that is not in memory, the records of some
idempotency keys, what a shared store's admission goes by), then calls the core, whose plain
methods answer (or raise the error the caller gets) and fill the current ``Batch``: what to
commit, what became ready, what was cancelled, what finished, which events to publish. After
the batch commits the actor replies, wakes waiters and tells the scheduler. Nothing here
awaits, so a decision never waits on the backend half-way; tests drive it without trio.
Its parts: reported.py (a Record's changes applied), reconcile.py (what other engines did).
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
from ..messages import Job
from ..task import (
    FINISHED,
    Admitted,
    Progress,
    Task,
    TaskError,
    TaskState,
    Transition,
    tuple_of,
)
from . import reconcile, reported
from .batch import Batch, Counts, task_event
from .ownership import Ownership
from .record import TaskRecord
from .tally import Counting

PENDING, RUNNING, RETRYING, FAILED = (
    TaskState.PENDING,
    TaskState.RUNNING,
    TaskState.RETRYING,
    TaskState.FAILED,
)
SHRINK_ABOVE = 4096  # a dict of unfinished tasks this big is copied when it drains below 1/4
Queued = dict[int, int]  # priority -> how many tasks wait (pending or retrying)
_RETRY_CLEARS = ("finished_at", "run_at", "started_at", "result", "error", "worker")


class StoreCore:
    """Every task state change, as plain calls. ``unfinished`` holds the tasks this engine
    runs (all of them, unless the ownership is shared); ``counts`` by (type, state);
    ``queued``: how many of them wait to run (pending or retrying), by priority; ``counted``:
    the transitions it made and its attempts' run times (tally.py), until the store adds them
    to the engine's tally once they are committed (on the memory store, whose commits cannot
    fail, the store counts into the engine's tally itself: a batch of one task's adding up
    cost as much as its counting)."""

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
            if record.state is PENDING or record.state is RETRYING:
                self.queued[record.priority] += 1
        self.closed = False
        self.batch = Batch()
        self.counted = Counting()  # the transitions of batches not committed yet
        self._peak = len(self.unfinished)  # the most unfinished seen since ``unfinished`` was built
        self._entered: tuple[Transition] = (Transition(PENDING, 0.0),)  # create()'s last history

    def begin(self, events: bool) -> Batch:
        """Start a new batch (``events``: somebody subscribes, so build TaskEvents)."""
        self.batch = Batch([] if events else None)
        size = len(self.unfinished)
        if size > self._peak:
            self._peak = size
        elif size < self._peak // 4 and self._peak > SHRINK_ABOVE:
            self._shrink()
        return self.batch

    def _shrink(self) -> None:
        """Copy ``unfinished`` once a drain left it under a quarter of its peak: a dict never
        shrinks its table, so a drained backlog of a million held ~40 MB of empty slots."""
        self.unfinished = dict(self.unfinished)
        self._peak = len(self.unfinished)

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
        self, tasks: list[TaskRecord], existing: dict[str, TaskRecord], now: float
    ) -> list[Admitted]:
        """Admit ``tasks`` all or none (raises EngineClosed or QueueFull). ``existing``: the
        stored records of their keys, where there are (the adapter reads them first)."""
        creating = len(tasks)
        if existing:  # some keys are taken: their tasks are answered, not created
            creating = sum(1 for t in tasks if t.key is None or t.key not in existing)
        self.check_admission(creating)
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
            admitted.append(tuple_of(Admitted, (record.snapshot(), True)))
        return admitted

    def submit_nowait(self, tasks: list[TaskRecord], now: float) -> list[TaskRecord]:
        """Admit each of ``tasks``; one that cannot be (queue full, closed) is recorded failed
        with that error, never dropped. Returns those refused."""
        refused = []
        shared = Transition(TaskState.PENDING, now)
        for task in tasks:
            # created when submit_nowait() handed it over: the time the caller was told
            entered = task.history[0] if task.history else shared
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

    def create(self, record: TaskRecord, entered: Transition, *, ready: bool = True) -> TaskRecord:
        """Record ``record`` (as admission built it) pending. ``entered`` is its first history
        entry (pending, now): one tuple shared by the tasks a batch creates together."""
        now = entered.at
        if entered is not self._entered[0]:  # the batch's first: its tasks share the history
            self._entered = (entered,)
        record.number = self.ownership.next_number()
        record.created_at = now
        record.history = self._entered
        batch = self.batch
        batch.changed[record.id] = record
        if self.ownership.place(record, ready):
            self.counts[record.type, TaskState.PENDING] += 1
            self.queued[record.priority] += 1
            self.unfinished[record.id] = record
            if ready:
                batch.ready.append(
                    tuple_of(
                        Job,
                        (
                            record.id,
                            record.type,
                            record.payload,
                            record.priority,
                            record.timeout,
                            0,  # attempts
                            record.max_retries,
                            record.run_at,
                            record.headers,
                        ),
                    )
                )
        pending = self.counted.pending
        pending[record.type] = pending.get(record.type, 0) + 1
        if batch.events is not None:
            batch.events.append(task_event(record, PENDING, now, None))
        return record

    # -- transitions ------------------------------------------------------------------------------

    def move(self, record: TaskRecord, state: TaskState, at: float) -> None:
        """``record`` enters ``state`` at ``at`` (wall clock): counted, committed, announced."""
        counts = self.counts
        before = record.state
        counts[record.type, before] -= 1
        counts[record.type, state] += 1
        if before is PENDING or before is RETRYING:  # queued by priority: only waiting ones
            self.queued[record.priority] -= 1
        if state is PENDING or state is RETRYING:
            self.queued[record.priority] += 1
        # The history says who ran each attempt and why one failed (the HTTP `history`).
        worker = record.worker if state is RUNNING else None
        error = None
        if (state is RETRYING or state is FAILED) and record.error is not None:
            error = record.error.summary
        record.state = state
        record.history += (Transition(state, at, worker, error),)
        batch = self.batch
        batch.changed[record.id] = record
        if state in FINISHED:
            self.unfinished.pop(record.id, None)  # not ours (a shared store) if absent
            record.finished_at = at
            batch.finished.append(record)
        counted = self.counted
        counted.moved(record.type, state)
        if before is RUNNING and state is not PENDING and record.started_at is not None:
            counted.run_times.add(record.type, at - record.started_at)  # an attempt ended
        if batch.events is not None:
            batch.events.append(task_event(record, state, at, error))

    def record(self, changes: Iterable[Any]) -> None:
        """Apply what the scheduler decided (Started, Completed, Retrying, Failed, Requeued),
        in order; a task cancelled or deleted meanwhile is left alone (reported.py)."""
        reported.apply(
            changes, self.unfinished, self.counts, self.queued, self.batch, self.counted, self.move
        )

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
        ours = self.ownership.readmit(record, record.id in self.batch.changed)
        if ours:
            self.unfinished[record.id] = record
        self.move(record, TaskState.PENDING, now)
        if ours:
            self.batch.ready.append(record.job())
        return record.snapshot()

    # -- what other engines did (shared ownership): reconcile.py ---------------------------------

    def lost(self, ids: Iterable[str]) -> set[str]:
        return reconcile.lost(self.unfinished, self.batch, ids)

    def cancelled_elsewhere(self, ids: Iterable[str]) -> None:
        reconcile.cancelled_elsewhere(self.unfinished, self.batch, ids)

    def claimed(self, records: list[TaskRecord]) -> list[Job]:
        return reconcile.claimed(self.unfinished, records)

    def dropped(self, ids: Iterable[str]) -> list[str]:
        return reconcile.dropped(self.unfinished, ids)

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
