"""The scheduler's linger: a trickle of ready tasks held back for company (pure, no trio).

A producer awaiting each ``submit()`` hands the scheduler one task at a time; run as they come,
the scheduler, a worker and the store's recording of outcomes each wake once per task. A
linger holds ready work back briefly so that it goes out as one batch, to one worker.
"""

from __future__ import annotations

import math

import attrs

LINGER = 0.001  # seconds ready work may wait for company when tasks trickle in (the default)
# The default on a durable store of one engine (SQLite). There a trickle is slower (a commit
# a submit: a task every ~0.25-0.35 ms from one producer, 3-5 a 1 ms linger), and each batch
# costs more than on the memory store: its start is committed before the worker gets it
# (StartsRecorded), its outcome in another commit. 2 ms doubles the batch: 16% less CPU a
# task measured for one producer awaiting each submit (4 ms: ~17%; docs/performance.md).
# Shared stores keep LINGER (docs/engine.md, "Linger").
DURABLE_LINGER = 0.002
LINGER_BATCH = 32  # ready jobs that end a linger at once (at most; see Linger.batch)
MAX_LINGER = 0.1  # seconds: the most open_engine(linger=) accepts (latency stays sane)


@attrs.define
class Linger:
    """When to hold ready work back: ``seconds`` (0: never) at most, until ``batch`` jobs."""

    seconds: float = 0.0
    batch: int = LINGER_BATCH
    until: float = math.inf  # while work is held back: until when, at most
    gathered: bool = False  # one just ended: what it gathered goes out together
    dispatched_at: float = -math.inf  # the scheduler's clock when work last went out

    @property
    def active(self) -> bool:
        """Ready work is held back until :attr:`until` (or more arrives)."""
        return self.until != math.inf

    def hold(self, now: float, ready: int, *, can_start: bool) -> bool:
        """Whether to hold the ``ready`` jobs back at ``now``.

        A linger begins when a task is ready again within ``seconds`` of the last dispatch
        and ``can_start`` (a worker waits, dispatch is on): tasks trickle in one at a time. It
        ends ``seconds`` later, or once ``batch`` jobs are ready; then :attr:`gathered` is set
        for the dispatch. A task after a quiet spell goes out at once: no linger, no latency.
        """
        if self.until != math.inf:
            if now < self.until and ready < self.batch:
                return True
            self.until = math.inf  # over: what gathered goes out now, together
            self.gathered = True
            return False
        trickle = ready and ready < self.batch and now - self.dispatched_at < self.seconds
        if trickle and can_start:
            self.until = now + self.seconds
            return True
        return False
