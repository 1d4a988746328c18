"""What the scheduler's core decided to send, and when: its outbox, transitions, purges.

Pure (no trio). :class:`Outbox` holds the replies and messages of a turn; :class:`Changes`
collects transitions into the next Record; :class:`Retention` says when to purge finished
tasks. The last two are timers as data: a deadline the scheduler's loop waits for.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, TypeAlias, TypeVar

import attrs

from ..messages import Claim, Completed, Failed, Interrupt, Job, Purge, Requeued, Retrying, Started

Transition: TypeAlias = Started | Completed | Retrying | Failed | Requeued
Waiter = TypeVar("Waiter")  # what answers a worker's ask (the actor's Envelope)

START_DELAY = 0.002  # seconds a Started may wait to share a batch with the task's outcome
PURGE_BATCH = 1000  # finished tasks deleted per transaction
PURGE_EVERY = (1.0, 600.0)  # retention / 10, within these bounds (seconds)


@attrs.define
class Outbox(Generic[Waiter]):
    """What the core decided to send since the actor last emptied it, in order."""

    replies: list[tuple[Waiter, list[Job] | None]] = attrs.field(factory=list)  # deferred asks
    interrupts: list[tuple[str, Interrupt]] = attrs.field(factory=list)  # to workers, by name
    to_store: list[Purge | Claim] = attrs.field(factory=list)  # dropped if the store is busy


@attrs.define
class Changes:
    """The transitions for the next Record. Starts alone may wait START_DELAY for company: a
    fast task's start and outcome then cost the store one batch instead of two."""

    pending: list[Transition] = attrs.field(factory=list)
    starts_only: bool = True  # only Started in ``pending``: their flush may wait a little
    flush_at: float = math.inf  # when Started alone are sent anyway

    def add(self, change: Transition) -> None:
        """A transition that must reach the store this turn (it may wake waiters)."""
        self.pending.append(change)
        self.starts_only = False

    def add_started(self, started: Started, now: float) -> None:
        """A dispatched batch started; it may wait until ``now`` + START_DELAY."""
        self.pending.append(started)
        self.flush_at = min(self.flush_at, now + START_DELAY)

    def take(self, now: float, *, force: bool = False) -> list[Transition] | None:
        """The transitions to send now (``force``: whatever is pending), if any."""
        if not self.pending:
            return None
        if not force and self.starts_only and now < self.flush_at:
            return None
        changes, self.pending = self.pending, []
        self.starts_only, self.flush_at = True, math.inf
        return changes


@attrs.define
class Confirmations(Generic[Waiter]):
    """Durable stores (``enabled``): work handed out waits until the store has committed the
    batch's Started, so an attempt is counted before it runs, even when the node dies the
    next instant (a poison task that kills its node at once still ends failed; issue 17). The
    Started then goes out in this turn's Record, not START_DELAY later. The memory store
    keeps nothing across a death: its workers never wait."""

    enabled: bool
    unsent: list[tuple[Waiter, list[Job]]] = attrs.field(factory=list)
    sent: deque[tuple[object, list[tuple[Waiter, list[Job]]]]] = attrs.field(factory=deque)

    def hold(self, waiter: Waiter, jobs: list[Job]) -> bool:
        """Keep this answer until its Started is committed (False: answer it now)."""
        if self.enabled:
            self.unsent.append((waiter, jobs))
        return self.enabled

    def token(self) -> object | None:
        """The token for the Record about to go out: the answers held so far wait for it."""
        if not self.unsent:
            return None
        token = object()
        self.sent.append((token, self.unsent))
        self.unsent = []
        return token

    def holds(self, task_id: str) -> bool:
        """Whether an answer held here (its Started not committed yet) hands out ``task_id``:
        its worker has not got it, so a cancel drops it from the answer, no interrupt needed."""
        held = [self.unsent, *(answers for _, answers in self.sent)]
        return any(job.id == task_id for answers in held for _, jobs in answers for job in jobs)

    def recorded(self, token: object) -> list[tuple[Waiter, list[Job]]]:
        """The answers that waited for ``token``'s Record (and any before it); none for a
        token of an earlier scheduler (it answers nobody here)."""
        if not any(sent is token for sent, _ in self.sent):
            return []
        answers: list[tuple[Waiter, list[Job]]] = []
        while self.sent:
            sent, held = self.sent.popleft()
            answers.extend(held)
            if sent is token:
                break
        return answers


@attrs.define
class Retention:
    """The purge timer: every retention / 10 (within PURGE_EVERY), delete what finished more
    than ``retention`` seconds ago. None: keep finished tasks forever."""

    retention: float | None
    purge_at: float = math.inf
    every: float = math.inf
    wall_epoch: float = 0.0  # the wall clock minus the scheduler's clock, at start

    def start(self, now: float, wall: float) -> None:
        """Arm the timer at ``now`` (the scheduler's clock; ``wall``: the wall clock then). The
        cutoff is the wall clock at start plus the scheduler's clock since, so it moves with
        that clock (a MockClock in tests), never with the system's."""
        if self.retention is None:
            return
        self.wall_epoch = wall - now
        self.every = min(max(self.retention / 10, PURGE_EVERY[0]), PURGE_EVERY[1])
        self.purge_at = now + self.every

    def due(self, now: float) -> Purge | None:
        """The purge to send at ``now``, if the timer fired (it is then armed again)."""
        if now < self.purge_at or self.retention is None:
            return None
        self.purge_at = now + self.every
        return Purge(self.wall_epoch + now - self.retention, PURGE_BATCH)
