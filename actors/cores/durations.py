"""How long each task type takes, and what that sizes: dispatch batches and claim prefetch.

Pure (no trio). Durations are a moving average per type of what workers report; a type never
measured counts as long, so its tasks go out one at a time until one has finished.
"""

from __future__ import annotations

import attrs

from ..messages import Job
from .queues import Queues

MAX_BATCH = 128  # jobs one worker may take at once (only fast ones: BATCH_BUDGET bounds the work)
BATCH_BUDGET = 0.001  # seconds of expected work one batch may hold
PREFETCH = (1, 1, 32)  # shared store: claimed tasks held per worker: least, at first, most
PREFETCH_WORK = 0.05  # seconds of expected work the claimed tasks of one worker should hold


def fair_share(ready: int, idle: int) -> int:
    """The most one of ``idle`` waiting workers may take of ``ready`` jobs (rounded up)."""
    return min(MAX_BATCH, -(-ready // idle))


@attrs.define
class Durations:
    """The measured duration of each task type, in seconds (a moving average)."""

    by_type: dict[str, float] = attrs.field(factory=dict)

    def measure(self, task_type: str, started_at: float, finished_at: float) -> None:
        took = finished_at - started_at
        previous = self.by_type.get(task_type)
        self.by_type[task_type] = took if previous is None else 0.8 * previous + 0.2 * took

    def take(self, queues: Queues, share: int) -> list[Job]:
        """Pop the best ready job, then more (up to ``share``) while the batch is expected to
        take at most BATCH_BUDGET. The caller has checked that a job is ready."""
        durations = self.by_type
        jobs = [queues.pop()]
        first = jobs[0].type
        cost = durations.get(first, BATCH_BUDGET)
        budget = BATCH_BUDGET - cost
        fit = 0  # how many more of the first's type the budget holds (the loop's own sums)
        while fit < share - 1 and budget - cost >= 0:
            budget -= cost
            fit += 1
        if fit:  # the common case, one call: a run of the same type at the front
            run = queues.pop_run(fit, first)
            jobs += run
            budget += cost * (fit - len(run))  # what the run did not take
        while len(jobs) < share:
            job = queues.peek()
            if job is None:
                break
            budget -= durations.get(job.type, BATCH_BUDGET)
            if budget < 0:
                break
            jobs.append(queues.pop())
        return jobs

    def per_worker(self) -> int:
        """How many claimed tasks a shared store's engine should hold per worker: many short
        ones (claims are round trips), few long ones (other engines would wait on what this
        one holds)."""
        least, first, most = PREFETCH
        if not self.by_type:
            return first
        typical = sum(self.by_type.values()) / len(self.by_type)
        return int(min(max(PREFETCH_WORK / max(typical, 1e-6), least), most))
