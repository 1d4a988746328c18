"""Reading back many results at once: the Engine's get_many, wait_many and as_completed.

Each is one message to the store however many tasks it names (a read per task was 50-80% of
the time a producer spent collecting its results); tasks that just finished are answered
from the store's memory, even on a durable store (recent.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import trio

from ..errors import ActorCrashed, InvalidField
from ..messages import GetMany, WaitMany, WatchMany
from ..runtime.mailbox import ActorRef
from ..task import Task

logger = logging.getLogger("oncue.actors.engine.handle")

RESTARTS = 3  # times a wait is asked again after the store restarted under it


class BulkResults:
    """Engine methods that read or wait on many tasks with one message each."""

    _store: ActorRef

    async def get_many(self, ids: Iterable[str]) -> list[Task]:
        """The tasks with these ids, in the order given (repeats allowed).

        Raises TaskNotFound naming the first id that names no task, InvalidField if an id is
        not a string.
        """
        task_ids = task_ids_of(ids)
        if not task_ids:
            return []
        tasks: list[Task] = await self._store.ask(GetMany(task_ids))
        return tasks

    async def wait_many(self, ids: Iterable[str]) -> list[Task]:
        """Wait until every task named is finished; return them in the order given.

        One message to the store however many ids. No timeout argument: bound it with
        ``with trio.fail_after(seconds):``. Raises TaskNotFound naming the first id that names
        no task (before waiting on any), InvalidField if an id is not a string.
        """
        task_ids = task_ids_of(ids)
        if not task_ids:
            return []
        tasks: list[Task] = await ask_again_after_restart(self._store, WaitMany(task_ids))
        return tasks

    def as_completed(self, ids: Iterable[str]) -> Completions:
        """The tasks named, each once, as they finish (those finished already first).

        ``async with engine.as_completed(ids) as finished: async for task in finished:``,
        or a bare ``async for``. One message to the store for all of them. Raises (at the first
        step) TaskNotFound naming the first id that names no task; InvalidField at once if an
        id is not a string.
        """
        return Completions(self._store, task_ids_of(ids))


class Completions:
    """An async iterator of finished tasks (Engine.as_completed makes one)."""

    def __init__(self, store: ActorRef, ids: tuple[str, ...]) -> None:
        self._store = store
        self._left = dict.fromkeys(ids)  # not yet given, in the order asked
        self._receive: trio.MemoryReceiveChannel[Task] | None = None
        self._restarts = 0

    def __aiter__(self) -> Completions:
        return self

    async def __anext__(self) -> Task:
        while self._left:
            if self._receive is None:
                self._receive = await self._watch()
            try:
                task = await self._receive.receive()
            except trio.EndOfChannel:  # the store restarted: ask the next one for the rest
                self._receive = None
                self._restarts += 1
                if self._restarts > RESTARTS:
                    raise
                continue
            if task.id in self._left:  # else a repeat from a watch asked again after a restart
                del self._left[task.id]
                return task
        await self.aclose()
        raise StopAsyncIteration

    async def _watch(self) -> trio.MemoryReceiveChannel[Task]:
        send, receive = trio.open_memory_channel[Task](len(self._left))
        try:
            await ask_again_after_restart(self._store, WatchMany(tuple(self._left), send))
        except BaseException:
            receive.close()
            raise
        return receive

    async def aclose(self) -> None:
        """Stop watching (the store forgets the watch at the next task it would send)."""
        if self._receive is not None:
            await self._receive.aclose()
            self._receive = None

    async def __aenter__(self) -> Completions:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


async def ask_again_after_restart(store: ActorRef, message: Any) -> Any:
    """Ask the store, asking again (a few times) if it restarts meanwhile."""
    for _ in range(RESTARTS):
        try:
            return await store.ask(message)
        except ActorCrashed:
            logger.info("engine.store_restarted", extra={"request": type(message).__name__})
    return await store.ask(message)


def task_ids_of(ids: Iterable[str]) -> tuple[str, ...]:
    """``ids`` as a tuple of strings; InvalidField naming the first that is not one."""
    if isinstance(ids, str):
        raise InvalidField("ids", f"ids must be a list of task ids, not one string: {ids!r}")
    task_ids = tuple(ids)
    for index, task_id in enumerate(task_ids):
        if not isinstance(task_id, str):
            message = f"ids[{index}] must be a task id (a string), got {task_id!r}"
            raise InvalidField("ids", message)
    return task_ids
