"""The store's line to its backend: a deadline on commits, reloading, and riding out outages.

The store actor owns one BackendGuard; nothing else uses it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

import attrs
import trio

from ..backends import Backend
from ..cores.record import TaskRecord
from ..errors import BackendError, BackendRecovered, BadQuery, StoreUnavailable
from ..runtime.mailbox import Mailbox
from ..task import TaskState

logger = logging.getLogger("oncue.actors.engine.store")

T = TypeVar("T")
RETRY_CAP = 5.0  # seconds between tries to reach a backend that is down
FIRST_PROBE = 0.05  # seconds before the first probe of an outage, when outages are rare
OUTAGE_MEMORY = 60.0  # seconds an outage makes the next one's first probe wait longer


@attrs.define
class OutageHistory:
    """When recent outages began; kept across the store's restarts (on its StoreLife).

    A backend that fails again right after each recovery (a disk still nearly full, 5% of
    commits failing) would otherwise be declared recovered, reloaded and failed within a
    fraction of a second, over and over: each outage's first probe waits twice as long as the
    last one's while they come close together, up to RETRY_CAP.
    """

    began: list[float] = attrs.field(factory=list)

    def first_probe_delay(self, now: float) -> float:
        """Note an outage beginning at `now`; the seconds before its first probe."""
        self.began = [at for at in self.began if at > now - OUTAGE_MEMORY]
        self.began.append(now)
        return min(FIRST_PROBE * 2.0 ** (len(self.began) - 1), RETRY_CAP)


# What a failing backend raises: its driver's errors, translated (backends/translate.py), or a
# call that outlived the deadline. Anything else is a bug, and crashes the store.
FAILURES = (BackendError, trio.TooSlowError)


class BackendGuard:
    commit_deadline = 10.0  # seconds a commit may take before the backend counts as failing

    def __init__(self, backend: Backend, outages: OutageHistory | None = None) -> None:
        self.backend = backend
        self._in_memory = not backend.durable  # dicts in this process: they cannot hang
        self._outages = outages if outages is not None else OutageHistory()

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
                logger.warning(
                    "store.backend_unreachable", extra={"error": repr(error), "retry_in": delay}
                )
            await trio.sleep(delay)
            delay = min(delay * 2, RETRY_CAP)

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        """One transaction, within commit_deadline (TooSlowError past it); the lost ids."""
        if self._in_memory:  # dicts cannot hang; a cancel scope costs more
            return await self.backend.commit(changed, deleted)
        with trio.fail_after(self.commit_deadline):
            return await self.backend.commit(changed, deleted)

    async def commit_within(
        self, scope: trio.CancelScope, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        """As commit(), timed by ``scope``, the store's: entered once around all its batches,
        its deadline inf but during a commit. Past the deadline the scope cancels the commit
        and the store's loop ends, to treat it as commit() raising TooSlowError (store.py).
        Moving one scope's deadline costs half what a ``fail_after`` a commit did.
        """
        if self._in_memory:
            return await self.backend.commit(changed, deleted)
        scope.deadline = trio.current_time() + self.commit_deadline
        try:
            return await self.backend.commit(changed, deleted)
        finally:
            scope.deadline = math.inf

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
        backend with backoff; once a probe writes, raise BackendRecovered so the supervisor
        restarts everything from what the backend holds (one restart per outage, however long
        it lasts; such restarts do not count towards its restart intensity, so a backend that
        fails for long never makes the engine give up). Returns only if the mailbox closes
        meanwhile.
        """
        logger.error(
            "store.backend_failed", extra={"error": repr(error), "answering": "unavailable"}
        )
        delay = self._outages.first_probe_delay(trio.current_time())
        while True:
            with trio.move_on_after(delay):
                async for envelope in mailbox:
                    envelope.fail(StoreUnavailable(error))
                return  # stopped meanwhile
            try:
                with trio.fail_after(self.commit_deadline):
                    await self.probe()
            except FAILURES as probe_error:  # still failing
                error = probe_error
                delay = min(delay * 2, RETRY_CAP)
                continue
            raise BackendRecovered(f"the backend answers again after {error!r}; reloading")

    async def probe(self) -> None:
        """Whether the backend takes a write again: its own `probe()` writes something real
        (committing nothing succeeds on a full disk); a backend without one commits nothing.
        """
        probe: Callable[[], Awaitable[None]] | None = getattr(self.backend, "probe", None)
        if probe is not None:
            await probe()
        else:
            await self.backend.commit([], [])
