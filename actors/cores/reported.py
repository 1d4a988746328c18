"""What the scheduler reported, applied to the records: pure functions, no I/O.

One job: apply a Record's changes (Started, Completed, Retrying, Failed, Requeued), in order,
to the store core's records, counts and batch. A task cancelled or deleted meanwhile is left
alone: the store's word is final. The two moves every task makes (its start, its completion)
are written out here rather than through the core's ``move``: most of a task's transitions
are these, and the tasks of one start share its history entry. StoreCore.record (store_core.py)
calls ``apply`` with its own parts; the rarer moves go through its ``move``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from ..messages import Completed, Failed, Requeued, Retrying, Started
from ..task import TaskState, Transition, tuple_of
from .batch import Batch, task_event
from .record import TaskRecord
from .tally import Counting

PENDING, RUNNING, RETRYING, COMPLETED = (
    TaskState.PENDING,
    TaskState.RUNNING,
    TaskState.RETRYING,
    TaskState.COMPLETED,
)
Counts = defaultdict[tuple[str, TaskState], int]
Move = Callable[[TaskRecord, TaskState, float], None]


def apply(
    changes: Iterable[Any],
    unfinished: dict[str, TaskRecord],
    counts: Counts,
    queued: defaultdict[int, int],
    batch: Batch,
    tally: Counting,
    move: Move,
) -> None:
    """Apply ``changes`` in order; ``move``: the core's, for a move not written out here."""
    for change in changes:
        if isinstance(change, Started):
            started(change, unfinished, counts, queued, batch)
            continue
        record = unfinished.get(change.id)
        if record is None or record.state is not RUNNING:
            continue
        if isinstance(change, Completed):
            completed(record, change.result, change.at, unfinished, counts, batch, tally)
        elif isinstance(change, Retrying):
            record.error = change.error
            record.run_at = change.run_at
            record.progress = None  # the next attempt reports its own
            move(record, TaskState.RETRYING, change.at)
        elif isinstance(change, Failed):
            record.error = change.error
            move(record, TaskState.FAILED, change.at)
        elif isinstance(change, Requeued):
            if not change.started:
                record.attempts -= 1
            record.progress = None
            move(record, TaskState.PENDING, change.at)


def completed(
    record: TaskRecord,
    result: Any,
    at: float,
    unfinished: dict[str, TaskRecord],
    counts: Counts,
    batch: Batch,
    tally: Counting,
) -> None:
    """A running task's attempt returned ``result``: the move to completed."""
    record.result = result
    record.error = None
    record.state = COMPLETED
    record.history += (tuple_of(Transition, (COMPLETED, at, None, None)),)
    record.finished_at = at
    counts[record.type, RUNNING] -= 1
    counts[record.type, COMPLETED] += 1
    unfinished.pop(record.id, None)  # not ours (a shared store) if absent
    batch.changed[record.id] = record
    batch.finished.append(record)
    task_type, completed = record.type, tally.completed
    completed[task_type] = completed.get(task_type, 0) + 1
    if record.started_at is not None:
        tally.run_times.add(task_type, at - record.started_at)
    if batch.events is not None:
        batch.events.append(task_event(record, COMPLETED, at, None))


def started(
    change: Started,
    unfinished: dict[str, TaskRecord],
    counts: Counts,
    queued: defaultdict[int, int],
    batch: Batch,
) -> None:
    """A worker took these tasks: running, one attempt more (unless cancelled meanwhile)."""
    changed, events = batch.changed, batch.events
    worker, at = change.worker, change.at
    entered = Transition(RUNNING, at, worker, None)
    for task_id in change.ids:
        record = unfinished.get(task_id)
        if record is None:
            continue
        previous = record.state
        if previous is not PENDING and previous is not RETRYING:
            continue
        record.attempts += 1
        record.worker = worker
        record.started_at = at
        record.state = RUNNING
        record.history += (entered,)
        counts[record.type, previous] -= 1
        counts[record.type, RUNNING] += 1
        queued[record.priority] -= 1  # it waited (pending or retrying)
        changed[task_id] = record
        if events is not None:
            events.append(task_event(record, RUNNING, at, None))
