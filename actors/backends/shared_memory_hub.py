"""The database that several engines of one process share in memory: its tasks, the leases
on them, who listens, and the queries it answers (with copies: no engine ever holds another's
objects, as through a real database). shared_memory.py is one engine's view of it.

Leases run on trio's clock (so a MockClock drives expiry in tests) and ``run_at`` on the wall
clock the hub is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..cores.record import TaskRecord
from ..task import TaskState
from .base import Notice


class Lease(NamedTuple):
    node: str
    until: float  # trio time
    seconds: float


def copy_record(record: TaskRecord) -> TaskRecord:
    """A copy of its own (its history is a tuple, so sharing that is safe)."""
    return record.copy()


class SharedMemory:
    """The shared truth: tasks, who owns which, and who listens; its queries answer copies."""

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self.wall = wall_clock
        self.tasks: dict[str, TaskRecord] = {}
        self.leases: dict[str, Lease] = {}
        self.next_number = 1
        self.listeners: list[tuple[str, Callable[[Notice], None]]] = []
        self.event_listeners: list[Callable[[str], None]] = []

    def publish(self, origin: str, notice: Notice) -> None:
        for node, deliver in list(self.listeners):
            if node != origin:
                deliver(notice)

    def release(self, origin: str, task_ids: list[str]) -> int:
        """Give these tasks back: no owner, and a running one is pending again."""
        for task_id in task_ids:
            del self.leases[task_id]
            record = self.tasks[task_id]
            record.node = None
            if record.state is TaskState.RUNNING:
                record.move(TaskState.PENDING, self.wall())
        if task_ids:
            self.publish(origin, Notice("ready"))
        return len(task_ids)

    # Queries

    def get(self, task_id: str) -> TaskRecord | None:
        record = self.tasks.get(task_id)
        return None if record is None else copy_record(record)

    def get_many(self, ids: Sequence[str]) -> list[TaskRecord]:
        tasks = self.tasks
        return [copy_record(tasks[task_id]) for task_id in ids if task_id in tasks]

    def find(self, match: Callable[[TaskRecord], bool]) -> TaskRecord | None:
        """The first task ``match`` accepts (a scan: tests hold few tasks)."""
        for record in self.tasks.values():
            if match(record):
                return copy_record(record)
        return None

    def query(
        self,
        state: TaskState | None,
        type: str | None,
        limit: int,
        before: int | None,
        owner: str | None = None,
    ) -> list[TaskRecord]:
        found = [
            record
            for record in self.tasks.values()
            if (state is None or record.state is state)
            and (type is None or record.type == type)
            and (owner is None or record.owner == owner)
            and (before is None or record.number < before)
        ]
        found.sort(key=lambda record: -record.number)
        return [copy_record(record) for record in found[:limit]]

    def finished_since(
        self, after: float, limit: int, owner: str | None = None
    ) -> list[TaskRecord]:
        found = sorted(
            (
                record
                for record in self.tasks.values()
                if record.state.finished
                and (record.finished_at or 0.0) > after
                and (owner is None or record.owner == owner)
            ),
            key=lambda record: record.finished_at or 0.0,
        )
        return [copy_record(record) for record in found[:limit]]

    def counts(self) -> dict[tuple[str, TaskState], int]:
        counts: dict[tuple[str, TaskState], int] = {}
        for record in self.tasks.values():
            counts[record.type, record.state] = counts.get((record.type, record.state), 0) + 1
        return counts

    def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        old = sorted(
            (r for r in self.tasks.values() if r.state.finished and r.finished_at is not None),
            key=lambda record: record.finished_at or 0.0,
        )
        purged: dict[tuple[str, TaskState], int] = {}
        for record in old[:limit]:
            if record.finished_at is not None and record.finished_at < before:
                del self.tasks[record.id]
                key = (record.type, record.state)
                purged[key] = purged.get(key, 0) + 1
        return purged
