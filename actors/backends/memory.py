"""The in-memory backend: dicts in this process; the reference for every other backend.

It keeps at most ``max_finished`` finished tasks (default 100,000): past that, the store asks
it after each commit to drop the oldest finished first (trim_finished), so a process that runs
millions of tasks holds the last ones only, not the whole retention period's worth.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Sequence

from ..cores.record import TaskRecord
from ..task import FINISHED, UNFINISHED, TaskState

MAX_FINISHED = 100_000  # finished tasks kept: ~85 MB of no-op tasks (docs/performance.md)


class MemoryBackend:
    """Keeps the store's own records (no copies): it lives as long as the engine, so tasks
    survive restarts of the store actor, but not of the process."""

    durable = False
    shared = False

    def __init__(self, max_finished: int = MAX_FINISHED) -> None:
        if isinstance(max_finished, bool) or not isinstance(max_finished, int) or max_finished < 0:
            raise ValueError(f"max_finished must be an int >= 0, got {max_finished!r}")
        self.max_finished = max_finished
        self._finished_ids: set[str] = set()  # the finished tasks held
        self._by_id: dict[str, TaskRecord] = {}
        self._by_number: dict[int, TaskRecord] = {}
        self._by_key: dict[str, TaskRecord] = {}
        self._last_number = 0
        self._peak = 0  # the most tasks held since the dicts were last copied
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
        by_id, finished_ids, finished = self._by_id, self._finished_ids, self._finished
        for record in changed:
            task_id = record.id
            if task_id not in by_id:
                by_id[task_id] = record
                self._by_number[record.number] = record
                if record.number > self._last_number:
                    self._last_number = record.number
                if record.key is not None:
                    self._by_key[record.key] = record
            if record.state in FINISHED and record.finished_at is not None:
                heapq.heappush(finished, (record.finished_at, record.number, task_id))
                finished_ids.add(task_id)
            elif task_id in finished_ids:
                finished_ids.discard(task_id)  # retried
        if len(by_id) > self._peak:
            self._peak = len(by_id)
        for task_id in deleted:
            if task_id in by_id:
                self._forget(task_id)
        return ()

    def _forget(self, task_id: str) -> TaskRecord:
        gone = self._by_id.pop(task_id)
        self._finished_ids.discard(task_id)
        del self._by_number[gone.number]
        if gone.key is not None:
            del self._by_key[gone.key]
        return gone

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        return self._drop_oldest(before, limit)

    def trim_finished(self) -> dict[tuple[str, TaskState], int]:
        """Drop the oldest finished tasks beyond ``max_finished``; how many of each (type,
        state) went. The store calls it after each commit that finished tasks."""
        excess = len(self._finished_ids) - self.max_finished
        return self._drop_oldest(math.inf, excess) if excess > 0 else {}

    def _drop_oldest(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
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
        if removed:
            self._shrink()
        return purged

    def _shrink(self) -> None:
        """Copy the dicts once they hold under a quarter of their peak: a dict never shrinks
        its table when entries go, so a drained backlog of a million would hold ~40 MB each."""
        size = len(self._by_id)
        if size >= self._peak // 4:
            return
        self._by_id = dict(self._by_id)
        self._by_number = dict(self._by_number)
        self._by_key = dict(self._by_key)
        self._finished_ids = set(self._finished_ids)
        self._peak = size

    async def get(self, task_id: str) -> TaskRecord | None:
        return self._by_id.get(task_id)

    async def get_many(self, ids: Sequence[str]) -> list[TaskRecord]:
        by_id = self._by_id
        return [by_id[task_id] for task_id in ids if task_id in by_id]

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

    async def finished_since(
        self, after: float, limit: int, owner: str | None = None
    ) -> list[TaskRecord]:
        # A scan of the finished (resuming an event stream is rare; memory is not durable).
        found = []
        for finished_at, _, task_id in sorted(e for e in self._finished if e[0] > after):
            record = self._by_id.get(task_id)
            if record is None or record.finished_at != finished_at:
                continue  # gone, or retried since (a later entry holds it)
            if owner is None or record.owner == owner:
                found.append(record)
                if len(found) == limit:
                    break
        return found

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        counts: dict[tuple[str, TaskState], int] = {}
        for record in self._by_id.values():
            counts[record.type, record.state] = counts.get((record.type, record.state), 0) + 1
        return counts
