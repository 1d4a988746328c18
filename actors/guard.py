"""The store's line to its backend: a deadline on commits, reloading, and riding out outages.

The store actor owns one BackendGuard; nothing else uses it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

import trio

from .backends import Backend
from .errors import BackendError, BackendRecovered, BadQuery, StoreUnavailable
from .mailbox import Mailbox
from .record import TaskRecord
from .task import TaskState

logger = logging.getLogger("oncue.actors.store")

T = TypeVar("T")
RETRY_CAP = 5.0  # seconds between tries to reach a backend that is down

# What a failing backend raises: its driver's errors, translated (backends/translate.py), or a
# call that outlived the deadline. Anything else is a bug, and crashes the store.
FAILURES = (BackendError, trio.TooSlowError)


class BackendGuard:
    commit_deadline = 10.0  # seconds a commit may take before the backend counts as failing

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._in_memory = not backend.durable  # dicts in this process: they cannot hang

    async def load(self) -> tuple[list[TaskRecord], dict[tuple[str, TaskState], int], int]:
        """Open the backend; return the unfinished tasks, the counts and the last number."""
        backend = self.backend
        await backend.open()
        unfinished = await backend.load_unfinished()
        return unfinished, await backend.counts(), await backend.last_number()

    async def load_when_reachable(
        self,
    ) -> tuple[list[TaskRecord], dict[tuple[str, TaskState], int], int]:
        """As load(), but wait out a backend that is down (with backoff) instead of failing:
        after a crash, failing again and again would only make the supervisor give up."""
        delay = 0.05
        while True:
            try:
                return await self.load()
            except FAILURES as error:
                logger.warning("store.backend_unreachable error=%r retry_in=%.2fs", error, delay)
            await trio.sleep(delay)
            delay = min(delay * 2, RETRY_CAP)

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        """One transaction, within commit_deadline (TooSlowError past it); the lost ids."""
        if self._in_memory:  # dicts cannot hang; a cancel scope per batch costs ~20 us
            return await self.backend.commit(changed, deleted)
        with trio.fail_after(self.commit_deadline):
            return await self.backend.commit(changed, deleted)

    async def read(self, call: Callable[[], Awaitable[T]]) -> T:
        """A read inside a request: within commit_deadline, any error of the backend's raised
        as StoreUnavailable, an answer to that request (the store, and the tasks its workers
        run, carry on; a real outage shows at the next commit)."""
        if self._in_memory:
            return await call()
        try:
            with trio.fail_after(self.commit_deadline):
                return await call()
        except BadQuery:
            raise  # the request's values are at fault (a ValueError), not the backend
        except FAILURES as error:
            raise StoreUnavailable(error) from error

    async def outage(self, mailbox: Mailbox, error: BaseException) -> None:
        """The backend failed a commit: what the store holds in memory may now be ahead of it.

        Answer every ask in ``mailbox`` with StoreUnavailable, at once, while probing the
        backend with backoff; once a probe commits, raise BackendRecovered so the supervisor
        restarts everything from what the backend holds (one restart per outage, however long
        it lasts). Returns only if the mailbox closes meanwhile.
        """
        logger.error("store.backend_failed error=%r (answering 'unavailable')", error)
        delay = 0.05
        while True:
            with trio.move_on_after(delay):
                async for envelope in mailbox:
                    envelope.fail(StoreUnavailable(error))
                return  # stopped meanwhile
            try:
                with trio.fail_after(self.commit_deadline):
                    await self.backend.commit([], [])
            except FAILURES as probe_error:  # still failing
                error = probe_error
                delay = min(delay * 2, RETRY_CAP)
                continue
            raise BackendRecovered(f"the backend answers again after {error!r}; reloading")
