"""What one batch of the store's messages did: the Batch its core fills, and the events in it.

Pure (no trio, no backend). The store core (store_core.py) fills one Batch per mailbox drain;
the store actor commits what it names, then answers, wakes waiters, tells the scheduler and
publishes the events.
"""

from __future__ import annotations

from ..messages import Job
from ..task import TaskEvent, TaskState
from .record import TaskRecord

Counts = dict[tuple[str, TaskState], int]  # tasks by (type, state)


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


def task_event(record: TaskRecord, state: TaskState, at: float, error: str | None) -> TaskEvent:
    """What subscribers hear of ``record`` entering ``state`` at ``at``."""
    return TaskEvent(
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
