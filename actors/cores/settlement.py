"""What a job's outcome becomes: the transition the store records, and what is queued again.

Pure (no trio): :func:`settle` maps one outcome a worker reported to a decision, a value the
scheduler's core applies. The retry policy (backoff with full jitter, max_retries, Fatal) is
decided here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from ..messages import (
    Completed,
    Failed,
    Job,
    JobCancelled,
    JobFailed,
    JobInterrupted,
    JobReturned,
    JobSucceeded,
    JobTimedOut,
    Outcome,
    Requeued,
    Retrying,
)
from ..task import TaskError, TaskState
from .queues import backoff_delay, should_retry

if TYPE_CHECKING:
    from ..registry import RetryPolicy
    from .record import TaskRecord

logger = logging.getLogger(__name__)


class Requeue(NamedTuple):
    """Back to pending (record ``transition``), and ready again as ``job`` (its attempts
    counted) unless the engine is draining."""

    job: Job
    transition: Requeued


class RetryLater(NamedTuple):
    """Record ``transition`` (retrying) and queue ``job`` (its next attempt) in ``delay`` s."""

    job: Job
    delay: float
    transition: Retrying


# Completed and Failed are recorded as they are; None: nothing to record (cancelled).
Decision: TypeAlias = Completed | Failed | Requeue | RetryLater | None


def settle(
    outcome: Outcome,
    wall: Callable[[], float],
    policy: Callable[[str], RetryPolicy],
    rng: random.Random,
) -> Decision:
    """Decide what ``outcome`` means for its task. ``wall`` reads the wall clock (for outcomes
    that carry no time); ``policy`` gives a task type's retry policy."""
    if type(outcome) is JobSucceeded:  # the common case first
        return Completed(outcome.job.id, outcome.result, outcome.finished_at)
    if isinstance(outcome, JobFailed):
        return _fail(outcome.job, outcome, outcome.finished_at, policy, rng)
    if isinstance(outcome, JobTimedOut):
        return _fail(outcome.job, outcome, outcome.finished_at, policy, rng)
    if isinstance(outcome, JobCancelled):
        return None
    if isinstance(outcome, JobInterrupted):
        return lost(outcome.job, started=True, at=outcome.finished_at or wall())
    assert isinstance(outcome, JobReturned)
    return lost(outcome.job, started=False, at=wall())


def _fail(
    job: Job,
    outcome: JobFailed | JobTimedOut,
    now: float,
    policy: Callable[[str], RetryPolicy],
    rng: random.Random,
) -> Failed | RetryLater:
    """A failed attempt: retry after a backoff, or fail for good."""
    attempt = job.attempts + 1
    fatal = isinstance(outcome, JobFailed) and outcome.fatal
    if not should_retry(job, attempt, fatal=fatal):
        return Failed(job.id, outcome.error, now)
    delay = outcome.retry_delay if isinstance(outcome, JobFailed) else None
    if delay is None:
        delay = backoff_delay(policy(job.type), attempt, rng)
    run_at = now + delay
    logger.info(
        "task.retry",
        extra={"task_id": job.id, "task_type": job.type, "attempt": attempt, "delay": delay},
    )
    retry = job._replace(attempts=attempt, run_at=run_at)
    return RetryLater(retry, delay, Retrying(job.id, outcome.error, run_at, now))


def lost(job: Job, *, started: bool, at: float) -> Requeue:
    """Back to pending: ``job`` will not finish where it was (``started``: it had begun, so
    the attempt counts)."""
    return Requeue(job._replace(attempts=job.attempts + started), Requeued(job.id, started, at))


def attempts_exhausted(job: Job) -> bool:
    """Whether a task found running at recovery (``job.attempts`` counts the attempt its
    lost node had started) has no attempt left: the node died every time it ran it.

    A node lost during a task's last attempt grants it one more (at-least-once: a node killed
    by a deploy is not the task's fault), so a task starts at most max_retries + 2 times.
    """
    return job.max_retries != -1 and job.attempts > job.max_retries + 1


def poisoned(records: list[TaskRecord]) -> tuple[list[TaskRecord], list[TaskRecord]]:
    """Split what a shared store's claim got into the tasks to run and the poison ones:
    pending with more starts than max_retries + 1, each lost with its node (a failure is
    settled as retrying or failed). On a shared store such a task comes back by lease expiry
    and a claim, never by recovery (issue 17)."""
    run: list[TaskRecord] = []
    spent: list[TaskRecord] = []
    for record in records:
        if record.state is TaskState.PENDING and attempts_exhausted(record.job()):
            spent.append(record)
        else:
            run.append(record)
    return run, spent


def ended_as_poison(record: TaskRecord, now: float) -> TaskRecord:
    """A copy of a poison task's record, failed (``NodeLost``) at ``now``."""
    ended = record.copy()  # its history is a tuple: move() adds to the copy's alone
    ended.error = node_lost(record.job())
    ended.finished_at = now
    ended.move(TaskState.FAILED, now, None, ended.error.summary)
    return ended


def node_lost(job: Job) -> TaskError:
    """The error a task ends with when its node died running its last attempts."""
    return TaskError(
        "NodeLost",
        f"the node running this task stopped during its last attempts ({job.attempts} started,"
        f" max_retries {job.max_retries}); a task that takes its node down (a poison task)"
        " is not run again",
    )
