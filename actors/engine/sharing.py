"""The store actor's reads and chores for its ownership: ``LocalLink`` or ``SharedLink``.

The store actor (store.py) is given one of these when it starts, with the core's ownership
(ownership.py), and calls the same methods either way: what to read before admitting, whether
the store is idle, the counts, what to do after a batch commits, how to answer a write refused
at commit, and what to give back at a stop. ``LocalLink`` answers from the core; ``SharedLink``
does the I/O a shared backend needs (several engines, "nodes"; see backends/base.py): it reads
the whole store's count and reserves task numbers, runs claims, renewals and reaps after each
batch commits, answers the waiters of what finished elsewhere, and mends answers whose write
lost to another node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import trio

from ..backends import SharedBackend
from ..cores.batch import Batch, Counts
from ..cores.ownership import AdmissionReads, Chores, SharedOwnership
from ..cores.record import TaskRecord
from ..cores.settlement import ended_as_poison, poisoned
from ..cores.store_core import Queued, StoreCore
from ..errors import StoreUnavailable, TaskAlreadyFinished, TaskNotFailed, TaskNotFound
from ..messages import (
    Claim,
    Claimed,
    Reap,
    RemoteCancelled,
    RemoteFinished,
    Renew,
    TaskCancelled,
    Wake,
)
from ..runtime.mailbox import Envelope
from ..task import Admitted, Task, TaskState
from .guard import FAILURES, BackendGuard
from .listeners import Listeners

logger = logging.getLogger("oncue.actors.engine.store")

Answer = tuple[Envelope, Any, bool]  # the envelope, the answer, whether it is an error
Tell = Callable[[Any], None]  # tells the scheduler, never waiting


class LocalLink:
    """One engine owns the backend: everything is known from the core."""

    def __init__(self, core: StoreCore) -> None:
        self._core = core

    async def read_for_admission(self, reads: AdmissionReads) -> None:
        pass  # never asked: a local ownership reads nothing

    def committed(self, batch: Batch, listeners: Listeners) -> Chores | None:
        """After the commit: answer the waiters (of idleness too: none unfinished); no chores."""
        listeners.committed(batch.finished, not self._core.unfinished, batch.events or [])
        return None

    async def unfinished_count(self) -> int:
        return len(self._core.unfinished)

    async def counts(self) -> Counts:
        return self._core.counts

    async def queued(self) -> Queued:
        return self._core.queued

    async def run_chores(
        self, chores: Chores, batch: Batch, listeners: Listeners, tell: Tell
    ) -> None:
        pass  # never asked: a local ownership has none

    async def mend(self, answers: list[Answer], lost: set[str]) -> list[Answer]:
        return answers  # a backend of one engine refuses no write

    async def release(self) -> None:
        pass


class SharedLink:
    """A shared backend: the store's reads and chores besides its own tasks."""

    def __init__(
        self,
        core: StoreCore,
        ownership: SharedOwnership,
        backend: SharedBackend,
        guard: BackendGuard,
    ) -> None:
        self._core = core
        self._ownership = ownership
        self._backend = backend
        self._guard = guard

    async def read_for_admission(self, reads: AdmissionReads) -> None:
        """Refresh the count admission goes by when it is old, and reserve task numbers."""
        if reads.count:
            count = await self._guard.read(self._backend.unfinished_count)
            self._ownership.counted(count, reads.at)
        while self._ownership.short_of(reads.creating):
            self._ownership.reserved(await self._guard.read(self._backend.reserve_numbers))

    def committed(self, batch: Batch, listeners: Listeners) -> Chores | None:
        """After the commit: answer the waiters of what finished here (idleness: the chores
        find out, from the whole store's count), and return the ownership's chores."""
        listeners.committed(batch.finished, False, batch.events or [])
        return self._ownership.chores()

    async def unfinished_count(self) -> int:
        return await self._guard.read(self._backend.unfinished_count)

    async def counts(self) -> Counts:
        return await self._guard.read(self._backend.counts)

    async def queued(self) -> Queued:
        """The whole store's (the core knows only what this node holds)."""
        return await self._guard.read(self._backend.queued_by_priority)

    async def release(self) -> None:
        """A graceful stop: what we own goes back to the others (else their leases expire)."""
        try:
            released = await self._backend.release()
            logger.info("store.released", extra={"tasks": released})
        except FAILURES as error:  # their leases expire instead
            logger.warning("store.release_failed", extra={"error": repr(error)})

    # -- after a batch commits -------------------------------------------------------------------

    async def run_chores(
        self, chores: Chores, batch: Batch, listeners: Listeners, tell: Tell
    ) -> None:
        """Wake our scheduler, renew, reap, claim, and answer the waiters of what finished
        elsewhere. A chore that fails is logged and tried again when next asked: the leases
        and the polls make up for a missed one."""
        if chores.wake:
            tell(Wake())
        steps: list[tuple[str, Callable[[], Any]]] = []
        if chores.renew:
            steps.append(("renew", lambda: self._renew(tell)))
        if chores.reap:
            steps.append(("reap", lambda: self._reap(tell)))
        if chores.claim is not None:
            steps.append(("claim", lambda: self._claim(chores, tell, listeners)))
        steps.append(("wake_waiters", lambda: self._wake_waiters(chores, batch, listeners)))
        for name, step in steps:
            try:
                with trio.fail_after(self._guard.commit_deadline):
                    await step()
            except FAILURES as error:
                logger.warning(f"store.{name}_failed", extra={"error": repr(error)})
                if name == "claim" and chores.claim is not None:  # the scheduler waits for it
                    tell(Claimed([], chores.claim.limit))
                elif name == "wake_waiters":  # asked again: the next batch rechecks
                    self._ownership.pending.recheck |= chores.recheck
                    self._ownership.pending.recheck_all |= chores.recheck_all

    async def _renew(self, tell: Tell) -> None:
        """Renew our leases; stop running what is no longer ours (another engine took it after
        our lease ran out, or it ended elsewhere) instead of learning it at its next write."""
        held = self._core.dropped(await self._backend.renew())
        for task_id in held:
            tell(TaskCancelled(task_id))
        if held:
            logger.warning("store.lease_lost", extra={"tasks": len(held), "ids": sorted(held)[:10]})

    async def _reap(self, tell: Tell) -> None:
        if await self._backend.reap():
            tell(Wake())  # we do not hear our own "ready"

    async def _claim(self, chores: Chores, tell: Tell, listeners: Listeners) -> None:
        claim = chores.claim
        assert claim is not None
        records = await self._backend.claim(claim.limit, claim.within)
        chores.claim = None
        records, spent = poisoned(records)
        if spent and not await self._fail_poisoned(spent, listeners):
            records += spent  # their end was not written: run them (once more per failure)
        jobs = self._core.claimed(records)
        self._ownership.claimed(claim.limit, jobs)
        tell(Claimed(jobs, claim.limit))

    async def _fail_poisoned(self, records: list[TaskRecord], listeners: Listeners) -> bool:
        """Commit these poison tasks failed (see settlement.poisoned: on a shared store they
        come back by lease expiry, not by recovery) and answer our waiters; the other nodes'
        hear the backend's finished notice. False: the commit failed (they are still ours:
        what claimed them must not hold them for nobody; the shared simulation, seed 1323)."""
        now = time.time()
        ended = [ended_as_poison(record, now) for record in records]
        try:
            lost = await self._guard.commit(ended, [])
        except FAILURES as error:
            logger.warning("store.poison_fail_failed", extra={"error": repr(error)})
            return False
        failed = [record for record in ended if record.id not in lost]
        for record in failed:
            self._core.counted.moved(record.type, TaskState.FAILED)
        listeners.committed(failed, False, [])
        logger.warning("store.poison_failed", extra={"ids": [r.id for r in failed][:10]})
        return True

    async def _wake_waiters(self, chores: Chores, batch: Batch, listeners: Listeners) -> None:
        """Answer who waits here on tasks that finished on other engines, and wait_idle()."""
        finished_here = bool(batch.finished)
        idle_may_change = listeners.idle_waiting and finished_here
        if not (chores.recheck_all or chores.recheck or idle_may_change):
            return
        waited = listeners.waited_ids()
        ids = waited if chores.recheck_all else chores.recheck & waited
        look_idle = listeners.idle_waiting and (
            chores.recheck_all or bool(chores.recheck) or finished_here
        )
        # One read for all of them, not one per task.
        finished = [
            record for record in await self._backend.get_many(list(ids)) if record.state.finished
        ]
        idle = look_idle and await self._backend.unfinished_count() == 0
        if finished or idle:
            listeners.committed(finished, idle, [])

    # -- writes refused at commit ----------------------------------------------------------------

    async def mend(self, answers: list[Answer], lost: set[str]) -> list[Answer]:
        """Answers whose write was refused at commit. A submit whose new task lost its
        idempotency key to another node's task (two nodes admitted one key at once) is
        answered with that task, as a submit of a key already taken is. A cancel or a retry
        that lost to another node's write (the task finished, or was retried, meanwhile) is
        answered with the error it would have got a moment later."""
        mended = []
        for envelope, answer, is_error in answers:
            try:
                if not is_error and isinstance(answer, Task) and answer.id in lost:
                    answer, is_error = await self._refused(answer), True
                elif not is_error and isinstance(answer, list):
                    each = [await self._mend_one(admitted, lost) for admitted in answer]
                    if None in each:  # nothing to answer with: say so rather than name a ghost
                        gone = RuntimeError("a task of this submit was not stored; submit again")
                        answer, is_error = StoreUnavailable(gone), True
                    else:
                        answer = each
            except StoreUnavailable as unavailable:  # the backend failed the read meanwhile
                answer, is_error = unavailable, True
            mended.append((envelope, answer, is_error))
        return mended

    async def _refused(self, answer: Task) -> Exception:
        record = await self._guard.read(lambda: self._backend.get(answer.id))
        if record is None:
            return TaskNotFound(answer.id)
        if answer.state is not TaskState.CANCELLED:  # a retry
            return TaskNotFailed(record.id, record.state.value)
        if record.state.finished:
            return TaskAlreadyFinished(record.id, record.state.value)
        return StoreUnavailable(RuntimeError("the task changed hands meanwhile; cancel again"))

    async def _mend_one(self, admitted: Any, lost: set[str]) -> Any:
        if not isinstance(admitted, Admitted) or admitted.task.id not in lost:
            return admitted
        key = admitted.task.key
        if key is None:
            return None
        found = await self._guard.read(lambda: self._backend.find_key(key))
        return None if found is None else Admitted(found.snapshot(), False)


Link = LocalLink | SharedLink


class SharedHandlers:
    """Store handlers for what only a shared store takes: from the scheduler (Claim) and the
    node actor (Renew, Reap, RemoteFinished, RemoteCancelled). A part the Store holds."""

    def __init__(self, core: StoreCore, tell_scheduler: Callable[[Any], None]) -> None:
        self._core = core
        self._tell_scheduler = tell_scheduler

    def handlers(self) -> dict[type, Callable[[Any, Envelope], Any]]:
        return {
            Claim: self._claim,
            Renew: self._renew,
            Reap: self._reap,
            RemoteFinished: self._remote_finished,
            RemoteCancelled: self._remote_cancelled,
        }

    async def _claim(self, message: Claim, envelope: Envelope) -> None:
        self._shared_ownership().claim(message, self._tell_scheduler)

    async def _renew(self, message: Renew, envelope: Envelope) -> None:
        self._shared_ownership().renew()

    async def _reap(self, message: Reap, envelope: Envelope) -> None:
        self._shared_ownership().reap()

    async def _remote_finished(self, message: RemoteFinished, envelope: Envelope) -> None:
        self._shared_ownership().finished_elsewhere(message.ids)

    async def _remote_cancelled(self, message: RemoteCancelled, envelope: Envelope) -> None:
        self._core.cancelled_elsewhere(message.ids)

    def _shared_ownership(self) -> SharedOwnership:
        ownership = self._core.ownership
        if not isinstance(ownership, SharedOwnership):
            raise ValueError(f"{type(ownership).__name__}: only a shared store takes this")
        return ownership
