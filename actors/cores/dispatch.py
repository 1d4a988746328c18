"""Who gets which work: ready jobs handed to idle workers, in batches (pure, no trio).

One job: SchedulerCore's hand-out of work. Each idle worker, oldest ask first, takes its fair
share of the ready jobs, as its batch budget allows (durations.py), except what a linger
gathered, which one worker takes whole (linger.py); the start of each batch goes to the next
Record, at once when the worker waits for its confirmation (recording.py), else held back
briefly to travel with the outcome. Dispatch shares the core's parts (the queues, holdings,
roster, Record, outbox), given once; it keeps no state of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic

from ..messages import Started
from .durations import Durations, fair_share
from .holdings import Holdings
from .linger import Linger
from .queues import Queues
from .recording import Changes, Confirmations, Outbox, Waiter
from .roster import Roster


class Dispatch(Generic[Waiter]):
    """``gone``: whether a waiter's asker gave up; ``label_prefix``: put before a worker's
    name in what is recorded (``node/``, on a shared store)."""

    def __init__(
        self,
        *,
        queues: Queues,
        holdings: Holdings,
        durations: Durations,
        roster: Roster[Waiter],
        linger: Linger,
        changes: Changes,
        confirmations: Confirmations[Waiter],
        outbox: Outbox[Waiter],
        clock: Callable[[], float],
        wall: Callable[[], float],
        gone: Callable[[Waiter], bool],
        label_prefix: str,
    ) -> None:
        self._queues = queues
        self._holdings = holdings
        self._durations = durations
        self._roster = roster
        self._linger = linger
        self._changes = changes
        self._confirmations = confirmations
        self._outbox = outbox
        self._clock = clock
        self._wall = wall
        self._gone = gone
        self._label_prefix = label_prefix

    def hold(self, now: float, *, accepting: bool) -> bool:
        """Whether to hold ready work back for company now (linger.py)."""
        can_start = bool(self._roster.idle) and accepting
        return self._linger.hold(now, self._queues.ready_count(), can_start=can_start)

    def run(self, now: float, *, gathered: bool) -> None:
        """Hand the ready jobs to the idle workers (``gathered``: a linger gathered them)."""
        queues = self._queues
        idle = self._roster.idle
        if idle and queues.peek() is not None:
            self._linger.dispatched_at = now
        while idle and queues.peek() is not None:
            waiter, worker = idle.popleft()
            if self._gone(waiter):  # handing it work would hold that work for nobody
                continue
            # Spread the ready jobs over the idle workers (each its fair share), except what a
            # linger gathered: one worker takes it all (as its batch budget allows), one wake.
            share = fair_share(queues.ready_count(), 1 if gathered else len(idle) + 1)
            jobs = self._durations.take(queues, share)
            self._holdings.hold(worker, jobs)
            label = self._label_prefix + worker
            started = Started([job.id for job in jobs], label, self._wall())
            if self._confirmations.hold(waiter, jobs):
                self._changes.add(started)  # the worker waits for it: this turn's Record
            else:
                self._changes.add_started(started, self._clock())
                self._outbox.replies.append((waiter, jobs))
