"""The scheduler actor: the loop, the mailboxes and the timer around the scheduler's core.

Workers pull: an idle worker asks for work and the scheduler answers when it has some, so
priority order is exact at dispatch. The rules (what is queued, batch sizes, retries, holdings,
pause and drain, shared-store claims) are the core's (scheduler_core.py, no trio); this actor
hands it each message, runs its turn after each drain of the mailbox, sends what it decided,
and sleeps until the next message or the core's next deadline.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import trio
from trio.testing import MockClock

from ..cores.linger import DURABLE_LINGER, LINGER, LINGER_BATCH, MAX_LINGER
from ..cores.scheduler_core import SchedulerCore
from ..errors import ActorStopped, MailboxFull, OncueError, StoreUnavailable
from ..messages import (
    Claim,
    Claimed,
    Drain,
    GetLoad,
    Interrupt,
    Job,
    Load,
    LoadQueue,
    Record,
    RequestWork,
    SetPaused,
    StartsRecorded,
    TaskCancelled,
    TasksReady,
    WaitDrained,
    Wake,
    WorkerStopped,
)
from ..registry import Registry, RetryPolicy
from ..runtime.actor import Actor, Context
from ..runtime.mailbox import ActorRef, Envelope
from ..task import TaskState

logger = logging.getLogger(__name__)

_DEFERRED = object()  # a handler's answer: the core replies later, through its outbox


class Scheduler(Actor):
    """Holds every queued task, hands work to idle workers, applies the retry policy."""

    reply_errors = (OncueError, ValueError)

    def __init__(
        self,
        store: ActorRef,
        registry: Registry,
        rng: random.Random,
        wall_clock: Callable[[], float] = time.time,
        retention: float | None = None,
        node: str | None = None,
        confirm_starts: bool = False,
        linger: float = 0.0,
        linger_batch: int = LINGER_BATCH,
    ) -> None:
        self._store = store
        self._registry = registry
        self.core: SchedulerCore[Envelope] = SchedulerCore(
            clock=trio.current_time,
            wall=wall_clock,
            policy=self._policy,
            rng=rng,
            retention=retention,
            node=node,
            gone=_abandoned,
            confirm_starts=confirm_starts,
            linger=linger,
            linger_batch=linger_batch,
        )
        self._workers: dict[str, ActorRef] = {}  # to interrupt them
        self._ready: TasksReady | None = None  # the last TasksReady, open for the store to add to
        self._ready_read = 0  # how many of its jobs the core has
        # Records the store's full mailbox refused, in order: sent out of the waiting scope,
        # whose timer may already have fired (an await under it could be cut short, the
        # Record lost with its starts and outcomes, a durable store's worker never answered).
        self._unsent: list[Record] = []
        self._handlers: dict[type, Callable[[Any, Envelope], Any]] = {
            TasksReady: self._tasks_ready,
            TaskCancelled: lambda message, _: self.core.task_cancelled(message.id),
            RequestWork: self._request_work,
            WorkerStopped: self._worker_stopped,
            SetPaused: lambda message, _: self.core.set_paused(message.paused),
            Drain: lambda message, _: self.core.drain(interrupt=message.interrupt),
            WaitDrained: self._wait_drained,
            GetLoad: self._get_load,
            Claimed: lambda message, _: self.core.claimed(message.jobs, message.limit),
            Wake: lambda message, _: self.core.wake(),
            StartsRecorded: lambda message, _: self.core.starts_recorded(message.confirm),
        }

    async def run(self, context: Context) -> None:
        # Ready first: the supervisor waits for that, and must stay free to restart the store
        # should it crash while we load from it. What arrives meanwhile waits in the mailbox.
        context.started()
        loaded = await self._load_queue()
        self.core.recover((job, state is TaskState.RUNNING) for job, state in loaded)
        mailbox = context.mailbox
        core = self.core
        core.start()
        ended = False
        try:
            while not ended:
                await self._send_unsent()
                # One cancel scope until a timer fires, not one per turn (entering one costs
                # more than a turn): its deadline is the next timer (the end of a linger too),
                # moved only when that changes.
                with trio.CancelScope() as waiting:
                    while True:
                        deadline = core.next_deadline()
                        if deadline != waiting.deadline:
                            waiting.deadline = deadline
                        try:
                            self._handle(await mailbox.receive())
                        except trio.EndOfChannel:
                            ended = True
                            break
                        while True:
                            try:
                                self._handle(mailbox.receive_nowait())
                            except trio.WouldBlock:
                                break
                            except trio.EndOfChannel:
                                ended = True
                                break
                        self._turn(waiting)
                        if ended:
                            break
                if not ended:  # a timer fired
                    self._turn(waiting)
        finally:
            if self._ready is not None:  # the store must not add to what nobody will read
                self._ready.taken = True
        await self._send_unsent()
        await self._send_changes(force=True)

    async def _load_queue(self) -> list[tuple[Job, TaskState]]:
        """The store's unfinished tasks; during a backend outage (the store answers
        StoreUnavailable until it recovers and restarts us all) ask again with backoff, instead
        of crashing until our supervisor gives up (found by the simulation, seed 468)."""
        delay = 0.05
        while True:
            try:
                loaded: list[tuple[Job, TaskState]] = await self._store.ask(LoadQueue())
                return loaded
            except StoreUnavailable:
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _turn(self, waiting: trio.CancelScope) -> None:
        """Run the core's turn, then send what it decided, never waiting: a Record the store's
        full mailbox refuses waits in ``_unsent``, and ``waiting`` (the loop's scope) is
        cancelled so the loop sends it, out of that scope, before anything newer."""
        core = self.core
        if self._ready is not None:
            self._read_ready()
        core.turn()
        if self._ready is not None and not core.linger.active:  # wake us for the next ones
            self._ready.taken = True
            self._ready = None
        outbox = core.outbox
        if outbox.to_store:
            self._tell_store(outbox.to_store)
        if outbox.replies:
            for waiter, answer in outbox.replies:
                waiter.reply(answer)
            outbox.replies.clear()
        if outbox.interrupts:
            self._interrupt(outbox.interrupts)
        changes = core.take_changes()
        if changes is not None:
            record = Record(changes, core.confirmations.token())
            if not self._unsent:
                try:
                    self._store.try_tell(record)
                    return
                except MailboxFull:  # rare: wait for room, out of the waiting scope
                    pass
            self._unsent.append(record)
            waiting.cancel()

    async def _send_unsent(self) -> None:
        """Send, waiting for room, the Records the store's full mailbox refused, in order."""
        while self._unsent:
            await self._store.tell(self._unsent[0])
            del self._unsent[0]

    async def _send_changes(self, *, force: bool = False) -> None:
        changes = self.core.take_changes(force=force)
        if changes is not None:
            await self._store.tell(Record(changes, self.core.confirmations.token()))

    def _tell_store(self, messages: list[Any]) -> None:
        """Purges and claims: dropped when the store's mailbox is full (the next timer retries)."""
        for message in messages:
            try:
                self._store.try_tell(message)
            except (ActorStopped, MailboxFull):
                logger.debug("scheduler.store_busy", extra={"reply": type(message).__name__})
                if isinstance(message, Claim) and message.limit:
                    self.core.claim_undelivered()
        messages.clear()

    def _interrupt(self, interrupts: list[tuple[str, Interrupt]]) -> None:
        for worker, message in interrupts:
            ref = self._workers.get(worker)
            if ref is None:
                continue
            try:
                ref.try_tell(message)
            except (ActorStopped, MailboxFull):
                logger.warning("scheduler.interrupt_undelivered", extra={"worker": worker})
        interrupts.clear()

    def _handle(self, envelope: Envelope) -> None:
        if self._ready is not None:  # what the store added to it came first
            self._read_ready()
        try:
            answer = self._handlers[type(envelope.message)](envelope.message, envelope)
        except self.reply_errors as error:
            envelope.fail(error)
        else:
            if answer is not _DEFERRED:
                envelope.reply(answer)

    def _policy(self, task_type: str) -> RetryPolicy:
        try:
            return self._registry.get(task_type).retry
        except LookupError:
            return RetryPolicy()

    def _tasks_ready(self, message: TasksReady, envelope: Envelope) -> None:
        """Read ``message``, and leave it open: until the turn's end, or while the core
        lingers, the store adds the next ready jobs to it (up to ``limit``) instead of sending
        another, so a trickle of tasks wakes us once a batch, not once a task."""
        if self._ready is not None:
            self._ready.taken = True
        message.limit = self.core.linger.batch
        self._ready, self._ready_read = message, 0
        self._read_ready()

    def _read_ready(self) -> None:
        """Give the core the jobs the store added to the open TasksReady since the last look."""
        ready = self._ready
        assert ready is not None
        if len(ready.jobs) > self._ready_read:
            self.core.tasks_ready(ready.jobs[self._ready_read :])
            self._ready_read = len(ready.jobs)

    def _request_work(self, message: RequestWork, envelope: Envelope) -> Any:
        self._workers[message.worker] = message.ref
        deferred = self.core.request_work(
            message.worker, envelope, message.outcomes, fresh=message.fresh
        )
        return _DEFERRED if deferred else None

    def _worker_stopped(self, message: WorkerStopped, envelope: Envelope) -> None:
        self.core.worker_stopped(message.worker, message.outcomes)
        self._workers.pop(message.worker, None)

    def _wait_drained(self, message: WaitDrained, envelope: Envelope) -> Any:
        return _DEFERRED if self.core.wait_drained(envelope) else None

    def _get_load(self, message: GetLoad, envelope: Envelope) -> Load:
        return self.core.load()


def default_linger(*, durable_alone: bool = False) -> float:
    """LINGER on a real clock (DURABLE_LINGER on a durable store no other engine shares:
    SQLite); none on a MockClock, whose time is virtual: holding work back there saves no CPU
    a test could see, and would only move the clock (tests that are about the linger pass
    ``linger=`` to open_engine)."""
    if isinstance(trio.lowlevel.current_clock(), MockClock):
        return 0.0
    return DURABLE_LINGER if durable_alone else LINGER


def linger_batch(queue_size: int) -> int:
    """How many gathered tasks end a linger: LINGER_BATCH, or a quarter of ``queue_size`` if
    less. Those held back, and a batch done but not yet reported, count as unfinished: a
    producer that never filled a small queue one task at a time must not fill it now."""
    return min(LINGER_BATCH, queue_size // 4)


def check_linger(linger: float) -> float:
    """``linger`` if it is seconds from 0 to MAX_LINGER; else ValueError naming it."""
    if isinstance(linger, bool) or not isinstance(linger, int | float):
        raise ValueError(f"linger must be seconds from 0 to {MAX_LINGER}, got {linger!r}")
    if not 0 <= linger <= MAX_LINGER:
        raise ValueError(f"linger must be seconds from 0 to {MAX_LINGER}, got {linger!r}")
    return float(linger)


def _abandoned(envelope: Envelope) -> bool:
    """An ask whose asker stopped waiting (dropped: nobody reads an answer to it)."""
    if envelope.abandoned:
        envelope.drop()
        return True
    return False
