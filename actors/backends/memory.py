"""The in-memory backend: dicts in this process; the reference for every other backend."""

from __future__ import annotations

import heapq
from collections.abc import Collection

from ..record import TaskRecord
from ..task import UNFINISHED, TaskState


class MemoryBackend:
    """Keeps the store's own records (no copies): it lives as long as the engine, so tasks
    survive restarts of the store actor, but not of the process."""

    durable = False
    shared = False

    def __init__(self) -> None:
        self._by_id: dict[str, TaskRecord] = {}
        self._by_number: dict[int, TaskRecord] = {}
        self._by_key: dict[str, TaskRecord] = {}
        self._last_number = 0
        # (finished_at, number, id) of every commit that saw a task finished; entries whose task
        # was deleted, retried or finished again since are skipped when they surface.
        self._finished: list[tuple[float, int, str]] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def load_unfinished(self) -> list[TaskRecord]:
        return [record for record in self._by_id.values() if record.state in UNFINISHED]

    async def last_number(self) -> int:
        return self._last_number

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        for record in changed:
            if record.id not in self._by_id:
                self._by_id[record.id] = record
                self._by_number[record.number] = record
                self._last_number = max(self._last_number, record.number)
                if record.key is not None:
                    self._by_key[record.key] = record
            if record.finished_at is not None and record.state.finished:
                heapq.heappush(self._finished, (record.finished_at, record.number, record.id))
        for task_id in deleted:
            if task_id in self._by_id:
                self._forget(task_id)
        return ()

    def _forget(self, task_id: str) -> TaskRecord:
        gone = self._by_id.pop(task_id)
        del self._by_number[gone.number]
        if gone.key is not None:
            del self._by_key[gone.key]
        return gone

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        purged: dict[tuple[str, TaskState], int] = {}
        finished = self._finished
        removed = 0
        while finished and finished[0][0] < before and removed < limit:
            finished_at, _, task_id = heapq.heappop(finished)
            record = self._by_id.get(task_id)
            if record is None or not record.state.finished or record.finished_at != finished_at:
                continue  # gone already, or retried since (a later entry holds it)
            self._forget(task_id)
            purged[record.type, record.state] = purged.get((record.type, record.state), 0) + 1
            removed += 1
        return purged

    async def get(self, task_id: str) -> TaskRecord | None:
        return self._by_id.get(task_id)

    async def get_by_number(self, number: int) -> TaskRecord | None:
        return self._by_number.get(number)

    async def find_key(self, key: str) -> TaskRecord | None:
        return self._by_key.get(key)

    async def query(
        self,
        state: TaskState | None,
        type: str | None,
        limit: int,
        before: int | None,
        owner: str | None = None,
    ) -> list[TaskRecord]:
        found: list[TaskRecord] = []
        number = self._last_number if before is None else min(before - 1, self._last_number)
        while number > 0 and len(found) < limit:
            record = self._by_number.get(number)
            number -= 1
            if record is None:
                continue
            if (
                (state is None or record.state is state)
                and (type is None or record.type == type)
                and (owner is None or record.owner == owner)
            ):
                found.append(record)
        return found

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        counts: dict[tuple[str, TaskState], int] = {}
        for record in self._by_id.values():
            counts[record.type, record.state] = counts.get((record.type, record.state), 0) + 1
        return counts
