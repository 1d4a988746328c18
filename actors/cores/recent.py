"""Recently finished tasks, kept by the store so reading them back needs no backend read.

A task's result is most often read right after it finishes (``wait``, ``wait_many``, a poll).
On a durable store every such read was a round trip to the database; the store keeps the
records of the last tasks that finished here instead, bounded by count and by approximate
bytes, oldest dropped first. Pure bookkeeping: no trio, no backend; the store adds a task once
its end is committed and forgets it when the task is deleted, retried or purged.
"""

from __future__ import annotations

import sys
from typing import Any

from .record import TaskRecord

DEFAULT_COUNT = 10_000  # tasks kept (a batch of results read back is usually far smaller)
DEFAULT_BYTES = 64 * 1024 * 1024  # approximate bytes kept, payloads and results included
RECORD_BYTES = 600  # a record with its history, as measured with tracemalloc, without values
SIZE_BUDGET = 10_000  # items looked at per value; a bigger one is estimated from those


class RecentResults:
    """The records of the last finished tasks, by id, oldest first."""

    def __init__(self, max_count: int = DEFAULT_COUNT, max_bytes: int = DEFAULT_BYTES) -> None:
        self.max_count = max_count  # 0: keep none
        self._max_bytes = max_bytes
        self._records: dict[str, tuple[TaskRecord, int]] = {}  # insertion order: oldest first
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._records)

    @property
    def bytes(self) -> int:
        """The approximate size of what is kept."""
        return self._bytes

    def add(self, record: TaskRecord) -> None:
        """Keep a finished task's record (dropping the oldest beyond the bounds). A task bigger
        than the whole byte bound is not kept: reading it back reads the backend."""
        if self.max_count <= 0:
            return
        size = RECORD_BYTES + approximate_size(record.payload) + approximate_size(record.result)
        if record.error is not None:
            size += approximate_size(record.error.message) + approximate_size(
                record.error.traceback
            )
        self.discard(record.id)  # finished again (a retry): it moves to the newest end
        if size > self._max_bytes:
            return
        self._records[record.id] = (record, size)
        self._bytes += size
        records = self._records
        while len(records) > self.max_count or self._bytes > self._max_bytes:
            oldest = next(iter(records))
            self._bytes -= records.pop(oldest)[1]

    def get(self, task_id: str) -> TaskRecord | None:
        kept = self._records.get(task_id)
        return None if kept is None else kept[0]

    def discard(self, task_id: str) -> None:
        """Forget a task (deleted, or retried: no longer finished)."""
        kept = self._records.pop(task_id, None)
        if kept is not None:
            self._bytes -= kept[1]

    def drop_finished_before(self, before: float) -> None:
        """Forget the tasks that finished before ``before`` (a purge removed them)."""
        gone = [
            task_id
            for task_id, (record, _) in self._records.items()
            if record.finished_at is not None and record.finished_at < before
        ]
        for task_id in gone:
            self.discard(task_id)


def approximate_size(value: Any) -> int:
    """Roughly how many bytes ``value`` holds, its contents included (JSON-like values; any
    other object counts its own size only). Looks at SIZE_BUDGET items at most."""
    budget = [SIZE_BUDGET]
    return _size(value, budget)


def _size(value: Any, budget: list[int]) -> int:
    budget[0] -= 1
    if isinstance(value, str | bytes):
        return sys.getsizeof(value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + _sum(
            (item for pair in value.items() for item in pair), len(value) * 2, budget
        )
    if isinstance(value, list | tuple):
        return sys.getsizeof(value) + _sum(iter(value), len(value), budget)
    return sys.getsizeof(value)


def _sum(items: Any, count: int, budget: list[int]) -> int:
    """The size of ``count`` items; past the budget, the ones seen stand for the rest."""
    total, seen = 0, 0
    for item in items:
        if budget[0] <= 0:
            break
        total += _size(item, budget)
        seen += 1
    if seen < count:
        total = (total // seen if seen else 64) * count
    return total
