"""What other engines did to the tasks we hold, on a shared store: pure functions, no I/O.

One job: keep the store core's ``unfinished`` (the tasks this engine runs) true to the shared
store when another engine's write wins: our lease ran out (``lost``), another engine cancelled
(``cancelled_elsewhere``), our claim got tasks (``claimed``), a renewal said some are no longer
ours (``dropped``). Each takes the core's ``unfinished`` dict and, where it interrupts a worker,
its current Batch; StoreCore (store_core.py) calls them with its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..messages import Job
from ..task import TaskState
from .batch import Batch
from .record import TaskRecord


def lost(unfinished: dict[str, TaskRecord], batch: Batch, ids: Iterable[str]) -> set[str]:
    """These writes were refused: our lease ran out and another engine may run the task.
    Forget them and have their worker interrupted. Returns the ids."""
    gone = set(ids)
    for task_id in gone:
        if unfinished.pop(task_id, None) is not None:
            batch.cancelled.append(task_id)
    batch.finished = [record for record in batch.finished if record.id not in gone]
    return gone


def cancelled_elsewhere(
    unfinished: dict[str, TaskRecord], batch: Batch, ids: Iterable[str]
) -> None:
    """Another engine cancelled these tasks (it wrote that); we only stop running them."""
    for task_id in ids:
        record = unfinished.pop(task_id, None)
        if record is not None:
            record.state = TaskState.CANCELLED
            batch.cancelled.append(task_id)


def claimed(unfinished: dict[str, TaskRecord], records: list[TaskRecord]) -> list[Job]:
    """Our claim got these: ours to run. One we are running already (our lease lapsed
    unnoticed, it was reaped, and our own claim took it back) goes on as it is: taken as
    pending, its run's outcome was ignored and it never ran again (the shared simulation,
    seed 903)."""
    jobs = []
    for record in records:
        ours = unfinished.get(record.id)
        if ours is not None and ours.state is TaskState.RUNNING:
            continue
        unfinished[record.id] = record
        jobs.append(record.job())
    return jobs


def dropped(unfinished: dict[str, TaskRecord], ids: Iterable[str]) -> list[str]:
    """No longer ours (a renewal said so): the ones we held, to interrupt."""
    return [task_id for task_id in ids if unfinished.pop(task_id, None) is not None]
