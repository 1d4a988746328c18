"""The scheduler's queues: the ready and timer heaps, and the retry arithmetic (pure, no trio)."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from typing import TYPE_CHECKING

import attrs

from .messages import Job

if TYPE_CHECKING:
    from .registry import RetryPolicy


@attrs.define
class Queues:
    """The ready heap (priority, then FIFO) and the timer heap; pure, no trio.

    Removal is lazy: ``queued`` maps id -> job, and heap entries whose job is no longer there
    are skipped when they surface.
    """

    ready: list[tuple[int, int, Job]] = attrs.field(factory=list)
    timers: list[tuple[float, int, Job]] = attrs.field(factory=list)
    queued: dict[str, Job] = attrs.field(factory=dict)
    _sequence: itertools.count[int] = attrs.field(factory=itertools.count)

    def push(self, job: Job, deadline: float | None = None) -> None:
        """Queue ``job``: ready now, or once the clock reaches ``deadline``."""
        self.queued[job.id] = job
        if deadline is None:
            heapq.heappush(self.ready, (-job.priority, next(self._sequence), job))
        else:
            heapq.heappush(self.timers, (deadline, next(self._sequence), job))

    def remove(self, task_id: str) -> bool:
        return self.queued.pop(task_id, None) is not None

    def release_due(self, now: float) -> None:
        """Move every timer whose deadline has come to the ready heap."""
        timers = self.timers
        while timers and timers[0][0] <= now:
            _, _, job = heapq.heappop(timers)
            if self.queued.get(job.id) is job:
                heapq.heappush(self.ready, (-job.priority, next(self._sequence), job))

    def next_deadline(self) -> float:
        timers = self.timers
        while timers and self.queued.get(timers[0][2].id) is not timers[0][2]:
            heapq.heappop(timers)
        return timers[0][0] if timers else math.inf

    def peek(self) -> Job | None:
        ready = self.ready
        while ready and self.queued.get(ready[0][2].id) is not ready[0][2]:
            heapq.heappop(ready)
        return ready[0][2] if ready else None

    def pop(self) -> Job:
        _, _, job = heapq.heappop(self.ready)
        del self.queued[job.id]
        return job

    def ready_count(self) -> int:
        return len(self.ready)


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform between 0 and the policy's ceiling for this attempt."""
    return rng.uniform(0, policy.ceiling(attempt))


def should_retry(job: Job, attempt: int, *, fatal: bool) -> bool:
    """True if ``job`` failing ends in another attempt (``attempt`` is the one that would run):
    not if the failure was ``fatal``, nor once ``max_retries`` (-1: no limit) are spent."""
    if fatal:
        return False
    return job.max_retries == -1 or attempt <= job.max_retries
