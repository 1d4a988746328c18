"""The scheduler actor: the loop, the mailboxes and the timer around the scheduler's core.

Workers pull: an idle worker asks for work and the scheduler answers when it has some, so
priority order is exact at dispatch. The rules (what is queued, batch sizes, retries, holdings,
pause and drain, shared-store claims) are the core's (scheduler_core.py, no trio); this actor
hands it each message, runs its turn after each drain of the mailbox, sends what it decided,
and sleeps until the next message or the core's next deadline.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

import trio

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
        )
        self._workers: dict[str, ActorRef] = {}  # to interrupt them
        self._handlers: dict[type, Callable[[Any, Envelope], Any]] = {
            TasksReady: lambda message, _: self.core.tasks_ready(message.jobs),
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
        while not ended:
            # One cancel scope until a timer fires, not one per turn (entering one costs more
            # than a turn): its deadline is the next timer only while we wait for messages.
            with trio.CancelScope() as waiting:
                while True:
                    waiting.deadline = core.next_deadline()
                    try:
                        self._handle(await mailbox.receive())
                    except trio.EndOfChannel:
                        ended = True
                        break
                    waiting.deadline = math.inf  # what follows must not be cut short
                    while True:
                        try:
                            self._handle(mailbox.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    await self._turn()
            if not ended:  # a timer fired
                await self._turn()
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

    async def _turn(self) -> None:
        """Run the core's turn, then send what it decided."""
        core = self.core
        core.turn()
        outbox = core.outbox
        if outbox.to_store:
            self._tell_store(outbox.to_store)
        if outbox.replies:
            for waiter, answer in outbox.replies:
                waiter.reply(answer)
            outbox.replies.clear()
        if outbox.interrupts:
            self._interrupt(outbox.interrupts)
        await self._send_changes()

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


def _abandoned(envelope: Envelope) -> bool:
    """An ask whose asker stopped waiting (dropped: nobody reads an answer to it)."""
    if envelope.abandoned:
        envelope.drop()
        return True
    return False
