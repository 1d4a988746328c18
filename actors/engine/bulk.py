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

    def _held(self, ids: tuple[str, ...]) -> tuple[dict[str, TaskRecord], list[str]]:
        """The tasks named that the store holds (unfinished, or finished recently), by id, and
        the ids of the rest, once each."""
        found: dict[str, TaskRecord] = {}
        known, recent = self._core.known, self._recent.get
        elsewhere: dict[str, None] = {}
        for task_id in ids:
            record = known(task_id) or recent(task_id)
            if record is not None:
                found[task_id] = record
            else:
                elsewhere[task_id] = None
        return found, list(elsewhere)

    async def _find_all(self, ids: tuple[str, ...]) -> dict[str, TaskRecord]:
        """Every task named, by id: those the store holds, then the rest in one backend read.
        Raises TaskNotFound for the first that names none."""
        found, elsewhere = self._held(ids)
        if elsewhere:
            for record in await self._read(partial(self._backend.get_many, elsewhere)):
                found[record.id] = record
            for task_id in elsewhere:
                if task_id not in found:
                    raise TaskNotFound(task_id)
        return found

    async def _find_finished(self, ids: tuple[str, ...]) -> tuple[dict[str, TaskRecord], set[str]]:
        """The finished tasks named, by id, and the unfinished ids: what a wait needs. A backend
        with ``get_finished`` (Redis) is not asked for the records of the unfinished ones,
        which a wait would only drop. Raises TaskNotFound for the first that names none."""
        get_finished = getattr(self._backend, "get_finished", None)
        if get_finished is None:
            found = await self._find_all(ids)
            unfinished = {task_id for task_id, r in found.items() if r.state not in FINISHED}
            return {i: r for i, r in found.items() if i not in unfinished}, unfinished
        held, elsewhere = self._held(ids)
        finished = {task_id: r for task_id, r in held.items() if r.state in FINISHED}
        unfinished = {task_id for task_id in held if task_id not in finished}
        if elsewhere:
            records, waiting = await self._read(partial(get_finished, elsewhere))
            finished.update((record.id, record) for record in records)
            unfinished |= waiting
            for task_id in elsewhere:
                if task_id not in finished and task_id not in unfinished:
                    raise TaskNotFound(task_id)
        return finished, unfinished

    async def _get_many(self, message: GetMany, envelope: Envelope) -> list[Task]:
        found = await self._find_all(message.ids)
        snapshots = {task_id: record.snapshot() for task_id, record in found.items()}
        return [snapshots[task_id] for task_id in message.ids]

    async def _wait_many(self, message: WaitMany, envelope: Envelope) -> Any:
        finished, unfinished = await self._find_finished(message.ids)
        done = {task_id: record.snapshot() for task_id, record in finished.items()}
        if not unfinished:
            return [done[task_id] for task_id in message.ids]
        gather = Gather(envelope, message.ids, done)
        for task_id in gather.missing:
            self._listeners.wait_for(task_id, gather)
        return DEFERRED

    async def _watch_many(self, message: WatchMany, envelope: Envelope) -> None:
        finished, unfinished = await self._find_finished(message.ids)
        watch = Watch(message.channel)
        changed = self._core.batch.changed
        for task_id, record in finished.items():
            if task_id not in changed:
                watch.reply(record.snapshot())  # committed already: a watcher hears it now
            else:  # finished in this batch: heard once the batch commits
                self._listeners.wait_for(task_id, watch)
        for task_id in unfinished:
            self._listeners.wait_for(task_id, watch)
