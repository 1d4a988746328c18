"""The scheduler's pure parts: the ready and timer heaps, and the retry decision (no trio)."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque

import attrs

from .messages import Job, Outcome
from .registry import RetryPolicy


@attrs.define
class Queues:
    """The ready queue (priority, then FIFO) and the timer heap; pure, no trio.

    Ready jobs wait in one FIFO per priority, the priorities present kept in a heap: a push
    or a pop costs O(1) for the few priorities tasks use, where one heap of every ready job
    cost O(log n) tuple comparisons (~1 us a task with 100,000 queued).

    Removal is lazy: ``queued`` maps id -> job, and entries whose job is no longer there
    are skipped when they surface.
    """

    timers: list[tuple[float, int, Job]] = attrs.field(factory=list)
    queued: dict[str, Job] = attrs.field(factory=dict)
    _fifos: dict[int, deque[Job]] = attrs.field(factory=dict)  # priority -> ready jobs
    _levels: list[int] = attrs.field(factory=list)  # -priority of each FIFO, a heap
    _ready_entries: int = 0  # in the FIFOs, the lazily removed ones included
    _sequence: itertools.count[int] = attrs.field(factory=itertools.count)

    def push(self, job: Job, deadline: float | None = None) -> None:
        """Queue ``job``: ready now, or once the clock reaches ``deadline``."""
        self.queued[job.id] = job
        if deadline is None:
            self._make_ready(job)
        else:
            heapq.heappush(self.timers, (deadline, next(self._sequence), job))

    def _make_ready(self, job: Job) -> None:
        fifo = self._fifos.get(job.priority)
        if fifo is None:
            fifo = self._fifos[job.priority] = deque()
            heapq.heappush(self._levels, -job.priority)
        fifo.append(job)
        self._ready_entries += 1

    def remove(self, task_id: str) -> bool:
        return self.queued.pop(task_id, None) is not None

    def release_due(self, now: float) -> None:
        """Move every timer whose deadline has come to the ready queue."""
        timers = self.timers
        while timers and timers[0][0] <= now:
            _, _, job = heapq.heappop(timers)
            if self.queued.get(job.id) is job:
                self._make_ready(job)

    def next_deadline(self) -> float:
        timers = self.timers
        while timers and self.queued.get(timers[0][2].id) is not timers[0][2]:
            heapq.heappop(timers)
        return timers[0][0] if timers else math.inf

    def peek(self) -> Job | None:
        """The best ready job, or None; drops the removed jobs (and empty FIFOs) before it."""
        queued = self.queued
        levels = self._levels
        while levels:
            fifo = self._fifos[-levels[0]]
            while fifo:
                job = fifo[0]
                if queued.get(job.id) is job:
                    return job
                fifo.popleft()
                self._ready_entries -= 1
            del self._fifos[-heapq.heappop(levels)]
        return None

    def pop(self) -> Job:
        """Take the best ready job; raises IndexError if there is none."""
        if self.peek() is None:
            raise IndexError("no ready job")
        job = self._fifos[-self._levels[0]].popleft()
        self._ready_entries -= 1
        del self.queued[job.id]
        return job

    def ready_count(self) -> int:
        return self._ready_entries


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform between 0 and the policy's ceiling for this attempt."""
    return rng.uniform(0, policy.ceiling(attempt))


def should_retry(job: Job, attempt: int, outcome: Outcome) -> bool:
    if outcome.fatal:
        return False
    return job.max_retries == -1 or attempt <= job.max_retries
