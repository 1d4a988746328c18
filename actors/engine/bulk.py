"""The store's handlers for reading and waiting on many tasks with one message.

A part the Store (store.py) holds, as reads.py's Reads and sharing.py's SharedHandlers are.
Each handler finds every task named (from the unfinished tasks, the recently finished ones
the store keeps, and only then the backend), so reading back 10,000 results is one message,
and on a durable store no database read for the tasks that just finished here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from ..backends import Backend
from ..cores.recent import RecentResults
from ..cores.record import TaskRecord
from ..cores.store_core import StoreCore
from ..errors import TaskNotFound
from ..messages import GetMany, WaitMany, WatchMany
from ..runtime.mailbox import Envelope
from ..task import FINISHED, Task
from .listeners import Listeners
from .waiters import Gather, Watch

DEFERRED: Any = object()  # a handler's answer meaning "the reply comes later" (the Store's)


class BulkReads:
    """Store handlers for GetMany, WaitMany and WatchMany."""

    def __init__(
        self,
        core: StoreCore,
        backend: Backend,
        listeners: Listeners,
        recent: RecentResults,
        read: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]],
    ) -> None:
        self._core = core
        self._backend = backend
        self._listeners = listeners
        self._recent = recent
        self._read = read

    def handlers(self) -> dict[type, Callable[[Any, Envelope], Any]]:
        return {GetMany: self._get_many, WaitMany: self._wait_many, WatchMany: self._watch_many}

    async def _find_all(self, ids: tuple[str, ...]) -> dict[str, TaskRecord]:
        """Every task named, by id: those the store holds (unfinished, or finished recently),
        then the rest in one backend read. Raises TaskNotFound for the first that names none."""
        found: dict[str, TaskRecord] = {}
        known, recent = self._core.known, self._recent.get
        elsewhere: dict[str, None] = {}
        for task_id in ids:
            record = known(task_id) or recent(task_id)
            if record is not None:
                found[task_id] = record
            else:
                elsewhere[task_id] = None
        if elsewhere:
            read = partial(self._backend.get_many, list(elsewhere))
            for record in await self._read(read):
                found[record.id] = record
            for task_id in elsewhere:
                if task_id not in found:
                    raise TaskNotFound(task_id)
        return found

    async def _get_many(self, message: GetMany, envelope: Envelope) -> list[Task]:
        found = await self._find_all(message.ids)
        snapshots = {task_id: record.snapshot() for task_id, record in found.items()}
        return [snapshots[task_id] for task_id in message.ids]

    async def _wait_many(self, message: WaitMany, envelope: Envelope) -> Any:
        found = await self._find_all(message.ids)
        finished = {  # ``in FINISHED``, not the state's property: a call less a task
            task_id: record.snapshot()
            for task_id, record in found.items()
            if record.state in FINISHED
        }
        if len(finished) == len(found):
            return [finished[task_id] for task_id in message.ids]
        gather = Gather(envelope, message.ids, finished)
        for task_id in gather.missing:
            self._listeners.wait_for(task_id, gather)
        return DEFERRED

    async def _watch_many(self, message: WatchMany, envelope: Envelope) -> None:
        found = await self._find_all(message.ids)
        watch = Watch(message.channel)
        for task_id, record in found.items():
            if record.state.finished and task_id not in self._core.batch.changed:
                watch.reply(record.snapshot())  # committed already: a watcher hears it now
            else:  # unfinished, or finished in this batch: heard once the batch commits
                self._listeners.wait_for(task_id, watch)
