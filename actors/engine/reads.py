"""The store's handlers that read: one task, a page, what changed, and the waits.

A part the Store (store.py) holds, made once its core exists, as bulk.py's is: the handlers
that answer from the core, the recently finished tasks or the backend, and change nothing, so
store.py keeps admission and the transitions. ``find`` and ``first_of_their_keys`` also serve
the Store's handlers that change tasks. Every backend read goes through ``read`` (the Store's
guard: a failing read answers that request with StoreUnavailable).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from ..backends import Backend, is_shared
from ..cores.batch import Counts
from ..cores.recent import RecentResults
from ..cores.record import TaskRecord
from ..cores.store_core import Queued, StoreCore
from ..errors import TaskNotFound
from ..messages import ChangedSince, GetCounts, GetTask, KeyRef, ListTasks, WaitIdle, WaitTask
from ..runtime.mailbox import Envelope
from ..task import TaskState
from .bulk import DEFERRED
from .listeners import Listeners
from .sharing import Link

logger = logging.getLogger("oncue.actors.engine.store")


Read = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


class Reads:
    """Store handlers for GetTask, ListTasks, ChangedSince, WaitTask, WaitIdle, GetCounts."""

    def __init__(
        self,
        core: StoreCore,
        backend: Backend,
        listeners: Listeners,
        recent: RecentResults,
        link: Link,
        read: Read,
    ) -> None:
        self._core = core
        self._backend = backend
        self._listeners = listeners
        self._recent = recent
        self._link = link
        self._read = read

    def handlers(self) -> dict[type, Callable[[Any, Envelope], Any]]:
        return {
            GetTask: self._get,
            ListTasks: self._list,
            ChangedSince: self._changed_since,
            WaitTask: self._wait,
            WaitIdle: self._wait_idle,
            GetCounts: self._get_counts,
        }

    async def find(self, task_id: str | int | KeyRef) -> TaskRecord:
        """The record ``task_id`` names: from the core if it knows it, else the backend's."""
        if isinstance(task_id, KeyRef):
            record = self._core.known_key(task_id.key) or await self.read_key(task_id.key)
        elif isinstance(task_id, int):
            record = await self._read(lambda: self._backend.get_by_number(task_id))
        else:
            record = (
                self._core.known(task_id)
                or self._recent.get(task_id)
                or await self._read(lambda: self._backend.get(task_id))
            )
        if record is None:
            raise TaskNotFound(task_id.key if isinstance(task_id, KeyRef) else task_id)
        return record

    async def read_key(self, key: str) -> TaskRecord | None:
        record: TaskRecord | None = await self._read(lambda: self._backend.find_key(key))
        return record

    async def first_of_their_keys(self, tasks: list[TaskRecord]) -> list[TaskRecord]:
        """``tasks`` less those whose key already names a task (stored, or earlier here)."""
        kept: list[TaskRecord] = []
        seen: set[str] = set()
        for task in tasks:
            key = task.key
            if key is not None:
                if key in seen or self._core.known_key(key) or await self.read_key(key):
                    logger.info("store.duplicate_key", extra={"task_id": task.id, "key": key})
                    continue
                seen.add(key)
            kept.append(task)
        return kept

    async def _get(self, message: GetTask, envelope: Envelope) -> Any:
        return (await self.find(message.id)).snapshot()

    async def _list(self, message: ListTasks, envelope: Envelope) -> Any:
        records = await self._read(
            lambda: self._backend.query(
                message.state, message.type, message.limit, message.before, message.owner
            )
        )
        return [record.snapshot() for record in records]

    async def _changed_since(self, message: ChangedSince, envelope: Envelope) -> Any:
        """The tasks that may have moved since ``message.after``, as snapshots, and whether
        that is all of them (False: a kind held more than ``message.limit``)."""
        owner, limit, after = message.owner, message.limit, message.after
        backend = self._backend
        if is_shared(backend):
            unfinished: list[TaskRecord] = []
            for state in (TaskState.PENDING, TaskState.RUNNING, TaskState.RETRYING):
                query = partial(backend.query, state, None, limit + 1, None, owner)
                unfinished += await self._read(query)
        else:
            mine = self._core.unfinished.values()
            unfinished = [record for record in mine if owner is None or record.owner == owner]
        finished = await self._read(lambda: backend.finished_since(after, limit + 1, owner))
        complete = len(unfinished) <= limit and len(finished) <= limit
        records = {record.id: record for record in (*finished[:limit], *unfinished[:limit])}
        return [record.snapshot() for record in records.values()], complete

    async def _wait(self, message: WaitTask, envelope: Envelope) -> Any:
        record = await self.find(message.id)
        if record.state.finished:
            return record.snapshot()
        self._listeners.wait_for(record.id, envelope)
        return DEFERRED

    async def _wait_idle(self, message: WaitIdle, envelope: Envelope) -> Any:
        if await self._link.unfinished_count() == 0:
            return None
        self._listeners.wait_idle(envelope)
        return DEFERRED

    async def _get_counts(self, message: GetCounts, envelope: Envelope) -> tuple[Counts, Queued]:
        counts = await self._link.counts()
        queued = await self._link.queued()
        return (
            {key: count for key, count in counts.items() if count},
            {priority: count for priority, count in queued.items() if count},
        )
