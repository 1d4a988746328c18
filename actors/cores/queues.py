"""The scheduler's queues: the ready queue, the timer heap, the retry arithmetic (pure, no trio)."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs

from ..messages import Job

SHRINK_ABOVE = 4096  # a ``queued`` dict this big is copied when it drains below a quarter

if TYPE_CHECKING:
    from ..registry import RetryPolicy


@attrs.define
class Queues:
    """The ready queue (priority, then FIFO) and the timer heap; pure, no trio.

    The ready heap holds one entry per priority present, ``[-priority, sequence, jobs]``, its
    jobs in arrival order (one Job alone, or a deque once a second arrives): popping the next
    job is a popleft, not a heap pop, so a backlog of a million tasks of one priority drains as
    fast as a short one (a heap of a million entries cost ~7 us a pop, 10x a short one's), and
    a queued job costs a deque slot instead of a heap tuple. A distinct priority per job stays
    a plain heap of single jobs (no deque each).

    Removal is lazy: ``queued`` maps id -> job, and jobs no longer there are skipped when they
    surface. ``queued`` is copied once a drain leaves it under a quarter of its peak (a dict
    never shrinks its table: a drained backlog of a million held ~40 MB of empty slots).
    """

    ready: list[list[Any]] = attrs.field(factory=list)
    timers: list[tuple[float, int, Job]] = attrs.field(factory=list)
    queued: dict[str, Job] = attrs.field(factory=dict)
    _sequence: itertools.count[int] = attrs.field(factory=itertools.count)
    _entries: dict[int, list[Any]] = attrs.field(factory=dict)  # priority -> its ready entry
    _ready_size: int = 0  # jobs in the ready entries (removed ones too, until skipped)
    _peak: int = 0  # the most jobs ``queued`` held since it was built

    def push(self, job: Job, deadline: float | None = None) -> None:
        """Queue ``job``: ready now, or once the clock reaches ``deadline``."""
        queued = self.queued
        queued[job.id] = job
        if len(queued) > self._peak:
            self._peak = len(queued)
        if deadline is None:
            self._make_ready(job)
        else:
            heapq.heappush(self.timers, (deadline, next(self._sequence), job))

    def push_ready(self, jobs: list[Job]) -> None:
        """Queue those of ``jobs`` not queued already, all ready now (what ``push`` does for
        each, in one call: a store batch of a thousand tasks is a thousand pushes)."""
        queued, entries = self.queued, self._entries
        entry: list[Any] | None = None
        pushed = 0
        for job in jobs:
            if job.id in queued:
                continue
            queued[job.id] = job
            pushed += 1
            if entry is None or entry[0] != -job.priority:
                entry = entries.get(job.priority)
                if entry is None:
                    entry = [-job.priority, next(self._sequence), job]
                    heapq.heappush(self.ready, entry)
                    entries[job.priority] = entry
                    continue
            if type(entry[2]) is deque:
                entry[2].append(job)
            else:
                entry[2] = deque((entry[2], job))
        self._ready_size += pushed
        if len(queued) > self._peak:
            self._peak = len(queued)

    def _make_ready(self, job: Job) -> None:
        entry = self._entries.get(job.priority)
        if entry is None:
            entry = [-job.priority, next(self._sequence), job]
            heapq.heappush(self.ready, entry)
            self._entries[job.priority] = entry
        elif type(entry[2]) is deque:
            entry[2].append(job)
        else:
            entry[2] = deque((entry[2], job))
        self._ready_size += 1

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
        """The next job to run (None if none), skipping removed ones."""
        ready, queued = self.ready, self.queued
        while ready:
            jobs = ready[0][2]
            if type(jobs) is deque:
                while jobs:
                    if queued.get(jobs[0].id) is jobs[0]:
                        return jobs[0]
                    jobs.popleft()
                    self._ready_size -= 1
            elif queued.get(jobs.id) is jobs:
                return jobs
            else:
                self._ready_size -= 1
            del self._entries[-heapq.heappop(ready)[0]]
        return None

    def pop(self) -> Job:
        """Take the job peek() returned (call peek first)."""
        entry = self.ready[0]
        jobs = entry[2]
        if type(jobs) is deque:
            job: Job = jobs.popleft()
            if not jobs:
                del self._entries[-heapq.heappop(self.ready)[0]]
        else:
            job = jobs
            del self._entries[-heapq.heappop(self.ready)[0]]
        queued = self.queued
        del queued[job.id]
        self._ready_size -= 1
        if len(queued) < self._peak >> 2 and self._peak > SHRINK_ABOVE:
            self.queued = dict(queued)
            self._peak = len(queued)
        return job

    def pop_run(self, limit: int, task_type: str) -> list[Job]:
        """Up to ``limit`` jobs as peek()/pop() would give them, while they are of
        ``task_type`` and of the front priority (one call, not two a job: dispatch takes a
        batch of a hundred fast tasks a pull)."""
        if limit <= 0:
            return []
        head = self.peek()  # skips removed jobs at the front
        if head is None or head.type != task_type:
            return []
        jobs = self.ready[0][2]
        if type(jobs) is not deque:
            return [self.pop()]
        queued = self.queued
        taken: list[Job] = []
        while jobs and len(taken) < limit:
            job: Job = jobs[0]
            if job is not queued.get(job.id):  # removed: skipped, as peek() does
                jobs.popleft()
                self._ready_size -= 1
            elif job.type != task_type:
                break
            else:
                jobs.popleft()
                del queued[job.id]
                taken.append(job)
        if not jobs:  # the next entry is another priority: the run ends here
            del self._entries[-heapq.heappop(self.ready)[0]]
        self._ready_size -= len(taken)
        if len(queued) < self._peak >> 2 and self._peak > SHRINK_ABOVE:
            self.queued = dict(queued)
            self._peak = len(queued)
        return taken

    def ready_count(self) -> int:
        """Jobs in the ready queue (removed ones too, until they surface)."""
        return self._ready_size


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform between 0 and the policy's ceiling for this attempt."""
    return rng.uniform(0, policy.ceiling(attempt))


def should_retry(job: Job, attempt: int, *, fatal: bool) -> bool:
    """True if ``job`` failing ends in another attempt (``attempt`` is the one that would run):
    not if the failure was ``fatal``, nor once ``max_retries`` (-1: no limit) are spent."""
    if fatal:
        return False
    return job.max_retries == -1 or attempt <= job.max_retries
