"""The messages to the scheduler and its workers: the Job they run, what the store, the
callers and the workers tell the scheduler, what it tells a worker, and the Outcome a worker
reports for each job.

Part of the protocol messages.py gathers; import them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import attrs

if TYPE_CHECKING:  # annotations only: the scheduler's core imports this module without trio
    from .runtime.mailbox import ActorRef
    from .task import TaskError

# -- what the scheduler holds and workers run ---------------------------------------------------


class Job(NamedTuple):
    """The part of a task the scheduler and a worker need to run one attempt."""

    id: str
    type: str
    payload: Any
    priority: int
    timeout: float
    attempts: int  # attempts started before this one
    max_retries: int
    run_at: float | None  # wall clock; None = now
    headers: Mapping[str, str] | None = None  # the task's, for the attempt's trace span


# -- to the scheduler --------------------------------------------------------------------------


@attrs.frozen
class Claimed:
    """From the store: what a Claim got (possibly nothing); ``limit`` is what was asked."""

    jobs: list[Job]
    limit: int


@attrs.frozen
class StartsRecorded:
    """From the store: the Record that carried ``confirm`` is committed, its starts counted."""

    confirm: object


@attrs.frozen
class Wake:
    """Claimable tasks may be waiting in the shared store (a notice, or a local submit)."""


@attrs.define(eq=False)
class TasksReady:
    """From the store, after commit: these jobs may run (at their run_at).

    Mutable, as SubmitNowait is: until the scheduler sets ``taken``, the store adds the next
    batch's jobs to it (if it told the scheduler nothing else since, and it holds fewer than
    ``limit``) instead of sending another. The scheduler leaves the one it read open while it
    lingers, so a trickle of tasks reaches it without waking it, until ``limit`` is reached."""

    jobs: list[Job]
    taken: bool = False
    limit: int = 2**31  # jobs past which the store sends a new one (the scheduler sets it)


@attrs.frozen
class TaskCancelled:
    """From the store: drop this task from the queues, or interrupt the worker running it."""

    id: str


@attrs.frozen
class RequestWork:
    """From a worker (ask -> list[Job], or None to stop asking): it is idle.

    ``outcomes`` reports how the jobs of its previous batch ended; ``fresh`` says this is the
    first ask of a new incarnation, so any job the scheduler thinks it holds was lost.
    """

    worker: str
    ref: ActorRef
    outcomes: list[Outcome]
    fresh: bool


@attrs.frozen
class WorkerStopped:
    """From a worker leaving for good (resize or shutdown), with what it finished."""

    worker: str
    outcomes: list[Outcome]


@attrs.frozen
class SetPaused:
    paused: bool


@attrs.frozen
class Drain:
    """Hand out no more work; interrupt running jobs too if ``interrupt``."""

    interrupt: bool


@attrs.frozen
class WaitDrained:
    """Reply once no job is running on any worker."""


@attrs.frozen
class GetLoad:
    """Ask for worker load: busy and idle counts, and what each worker runs."""


@attrs.frozen
class Load:
    busy: int
    idle: int
    paused: bool
    current: dict[str, str]  # worker -> task id
    done: dict[str, int]  # worker -> tasks finished


# -- to a worker -------------------------------------------------------------------------------


@attrs.frozen
class Interrupt:
    """Cancel the job with this id if it is running here (a cancel, or shutdown)."""

    id: str | None  # None: whatever is running
    reason: str  # "cancelled" or "shutdown"
    # The hand-out it is about (the Job the worker got): a later hand-out of the same task,
    # a new Job, is not cancelled by an interrupt heard late. None: whichever holds the id.
    job: Job | None = attrs.field(default=None, eq=False, repr=False)


# -- what a worker reports per job: one type for each way a job can end ----------------------


class JobSucceeded(NamedTuple):
    """The handler returned ``result``."""

    job: Job
    started_at: float
    finished_at: float
    result: Any


class JobFailed(NamedTuple):
    """The handler raised. ``fatal``: never retry (Fatal, an unknown type); ``retry_delay``:
    the handler raised Retry(delay=)."""

    job: Job
    started_at: float
    finished_at: float
    error: TaskError
    fatal: bool = False
    retry_delay: float | None = None


class JobTimedOut(NamedTuple):
    """The job outlasted its timeout; ``error`` says so (a TaskTimeout)."""

    job: Job
    finished_at: float
    error: TaskError


class JobCancelled(NamedTuple):
    """The task was cancelled while the worker held it (skipped, or cut short)."""

    job: Job
    finished_at: float | None = None


class JobInterrupted(NamedTuple):
    """Cut short by a shutdown or a lost lease: back to pending, this attempt counted."""

    job: Job
    finished_at: float | None = None


class JobReturned(NamedTuple):
    """Never started (the worker stopped first): back to pending, no attempt counted."""

    job: Job


Outcome: TypeAlias = (
    JobSucceeded | JobFailed | JobTimedOut | JobCancelled | JobInterrupted | JobReturned
)
