"""The store's part on a shared backend (several engines, "nodes"; see backends/base.py).

Mixed into the Store actor: what it does besides its own tasks when the queue's truth is in
a database other engines use too. It admits by the whole store's count, hands out task numbers
from reserved blocks, keeps for its scheduler what is submitted here while there is room,
answers claims, renewals and reaps after each batch commits, forgets tasks whose lease it
lost, and turns other engines' notices into answers for the waiters here.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from functools import partial
from typing import Any, TypeVar, cast

import attrs
import trio

from .backends import Backend, SharedBackend
from .errors import StoreUnavailable, TaskAlreadyFinished, TaskNotFailed, TaskNotFound
from .guard import FAILURES, BackendGuard
from .listeners import Listeners
from .mailbox import Envelope
from .messages import (
    Claim,
    Claimed,
    Job,
    Reap,
    RemoteCancelled,
    RemoteFinished,
    Renew,
    TaskCancelled,
    Wake,
)
from .record import TaskRecord
from .task import Admitted, Task, TaskState

logger = logging.getLogger("oncue.actors.store")
T = TypeVar("T")

COUNT_EVERY = 1.0  # seconds a shared store's count of unfinished tasks serves admission
CLAIM_WITHIN = 1.0  # a task submitted here due within this many seconds may be kept here


@attrs.define
class SharedState:
    """What the store of an engine on a shared backend tracks besides its own tasks."""

    unfinished: int = 0  # in the whole store, as last counted
    created: int = 0  # admitted here since
    counted_at: float = -math.inf  # trio time of that count
    numbers: deque[int] = attrs.field(factory=deque)  # reserved, not yet given
    wake: bool = False  # tell our scheduler claimable tasks arrived
    renew: bool = False
    reap: bool = False
    claim: Claim | None = None
    parked: int = 0  # what our scheduler's last claim asked for and did not get
    recheck: set[str] = attrs.field(factory=set)  # finished elsewhere, maybe waited on here
    recheck_all: bool = False


class SharedStore:
    """Store methods for a shared backend; ``_shared`` says whether they apply."""

    _backend: Backend
    _guard: BackendGuard
    _node: str | None
    _shared: bool
    _shared_state: SharedState
    _unfinished: dict[str, TaskRecord]
    _ready: list[Job]
    _cancelled: list[str]
    _finished: list[TaskRecord]
    _listeners: Listeners

    def _tell_scheduler(self, message: Any) -> None:
        raise NotImplementedError  # the Store's

    def _unfinished_total(self) -> int:
        if self._shared:
            shared = self._shared_state
            return shared.unfinished + shared.created
        return len(self._unfinished)

    async def _prepare(self, creating: int) -> None:
        """A shared store: refresh the count admission goes by (at most every COUNT_EVERY
        seconds: it lags what other engines admitted meanwhile), and reserve task numbers."""
        if not self._shared:
            return
        backend = cast(SharedBackend, self._backend)
        shared = self._shared_state
        now = trio.current_time()
        if now >= shared.counted_at + COUNT_EVERY:
            shared.unfinished = await self._read(backend.unfinished_count)
            shared.created = 0
            shared.counted_at = now
        while len(shared.numbers) < creating:
            shared.numbers.extend(await self._read(backend.reserve_numbers))

    async def _read(self, call: Callable[[], Awaitable[T]]) -> T:
        return await self._guard.read(call)

    def _lost(self, lost: Collection[str]) -> None:
        """These writes were refused: our lease ran out and another engine may run the task.
        Forget them and have their worker interrupted."""
        gone = set(lost)
        for task_id in gone:
            if self._unfinished.pop(task_id, None) is not None:
                self._cancelled.append(task_id)
        self._finished = [record for record in self._finished if record.id not in gone]
        logger.warning("store.lease_lost tasks=%d ids=%s", len(gone), sorted(gone)[:10])

    def _created_shared(self, record: TaskRecord, ready: bool) -> None:
        """A task submitted here: ours at once if our scheduler has room left from its last
        claim (no round trip to claim it back), else anyone's to claim once committed."""
        shared = self._shared_state
        shared.created += 1
        due = record.run_at is None or record.run_at <= record.created_at + CLAIM_WITHIN
        if ready and shared.parked > 0 and due:
            shared.parked -= 1
            record.node = self._node
            self._unfinished[record.id] = record
            self._ready.append(record.job())
        else:
            shared.wake = True

    async def _mend(
        self, answers: list[tuple[Envelope, Any, bool]], lost: set[str]
    ) -> list[tuple[Envelope, Any, bool]]:
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
        record = await self._read(partial(self._backend.get, answer.id))
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
        found = None if key is None else await self._read(partial(self._backend.find_key, key))
        return None if found is None else Admitted(found.snapshot(), False)

    async def _request_claim(self, message: Claim, envelope: Envelope) -> None:
        shared = self._shared_state
        if message.limit > 0:
            shared.claim = message  # runs after this batch commits
            return
        # No room (paused, draining): keep nothing submitted here, claim nothing more.
        shared.parked = 0
        if shared.claim is not None:  # not run yet: answered empty, the scheduler waits on it
            self._tell_scheduler(Claimed([], shared.claim.limit))
            shared.claim = None

    async def _request_renew(self, message: Renew, envelope: Envelope) -> None:
        self._shared_state.renew = True

    async def _request_reap(self, message: Reap, envelope: Envelope) -> None:
        self._shared_state.reap = True

    async def _remote_finished(self, message: RemoteFinished, envelope: Envelope) -> None:
        shared = self._shared_state
        if message.ids is None:
            shared.recheck_all = True
        else:
            shared.recheck.update(message.ids)

    async def _remote_cancelled(self, message: RemoteCancelled, envelope: Envelope) -> None:
        for task_id in message.ids:
            record = self._unfinished.pop(task_id, None)
            if record is not None:  # the canceller wrote it; we only stop running it
                record.state = TaskState.CANCELLED
                self._cancelled.append(task_id)

    async def _shared_chores(self) -> None:
        """After a batch commits: wake our scheduler, renew, reap, claim, and answer the
        waiters of what finished elsewhere. A chore that fails is logged and tried again
        when next asked: the leases and the polls make up for a missed one."""
        shared = self._shared_state
        if shared.wake:
            shared.wake = False
            self._tell_scheduler(Wake())
        chores: list[tuple[str, Callable[[], Any]]] = []
        if shared.renew:
            shared.renew = False
            chores.append(("renew", self._renew))
        if shared.reap:
            shared.reap = False
            chores.append(("reap", self._reap))
        if shared.claim is not None:
            chores.append(("claim", self._claim))
        chores.append(("wake_waiters", self._wake_remote_waiters))
        for name, chore in chores:
            try:
                with trio.fail_after(self._guard.commit_deadline):
                    await chore()
            except FAILURES as error:
                logger.warning("store.%s_failed error=%r", name, error)
                if name == "claim" and shared.claim is not None:  # the scheduler waits for it
                    self._tell_scheduler(Claimed([], shared.claim.limit))
                    shared.claim = None

    async def _renew(self) -> None:
        """Renew our leases; stop running what is no longer ours (another engine took it after
        our lease ran out, or it ended elsewhere) instead of learning it at its next write."""
        lost = await cast(SharedBackend, self._backend).renew()
        held = [task_id for task_id in lost if self._unfinished.pop(task_id, None) is not None]
        for task_id in held:
            self._tell_scheduler(TaskCancelled(task_id))
        if held:
            logger.warning("store.lease_lost tasks=%d ids=%s", len(held), sorted(held)[:10])

    async def _reap(self) -> None:
        if await cast(SharedBackend, self._backend).reap():
            self._tell_scheduler(Wake())  # we do not hear our own "ready"

    async def _claim(self) -> None:
        shared = self._shared_state
        assert shared.claim is not None
        claim = shared.claim
        records = await cast(SharedBackend, self._backend).claim(claim.limit, claim.within)
        shared.claim = None
        shared.parked = claim.limit - len(records)  # room that what we submit may fill
        for record in records:
            self._unfinished[record.id] = record
        self._tell_scheduler(Claimed([record.job() for record in records], claim.limit))

    async def _wake_remote_waiters(self) -> None:
        """Answer who waits here on tasks that finished on other engines, and wait_idle()."""
        backend = cast(SharedBackend, self._backend)
        shared = self._shared_state
        listeners = self._listeners
        idle_may_change = listeners.idle_waiting and bool(self._finished)
        if not (shared.recheck_all or shared.recheck or idle_may_change):
            return
        waited = listeners.waited_ids()
        ids = waited if shared.recheck_all else shared.recheck & waited
        look_idle = listeners.idle_waiting and (
            shared.recheck_all or bool(shared.recheck) or bool(self._finished)
        )
        finished = []
        for task_id in ids:  # if a read fails, the rechecks stay asked for: the next batch
            record = await backend.get(task_id)
            if record is not None and record.state.finished:
                finished.append(record)
        idle = look_idle and await backend.unfinished_count() == 0
        shared.recheck_all = False
        shared.recheck = set()
        if finished or idle:
            listeners.committed(finished, idle, [])
