"""Every message the engine's actors exchange: the whole protocol on one screen.

Calls point one way (see docs/engine.md): callers ask the store and the scheduler; the scheduler
tells the store; workers ask the scheduler for work and tell the store progress; the store tells
the scheduler, without ever waiting, that tasks became ready or were cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import attrs

if TYPE_CHECKING:  # annotations only: the scheduler's core imports this module without trio
    from .runtime.mailbox import ActorRef
    from .task import TaskError, TaskState

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


# -- to the store ------------------------------------------------------------------------------


@attrs.frozen
class Submit:
    """Admit these tasks, all or none (ask -> list[Admitted])."""

    tasks: list[Any]  # list[NewTask]


@attrs.frozen
class KeyRef:
    """Names a task by its idempotency key."""

    key: str


@attrs.define(eq=False)
class SubmitNowait:
    """Admit these tasks, ids already given (tell: nobody waits). One the store cannot admit
    (queue full, shutting down) is recorded failed with that error: never silently dropped.

    The one mutable message: until the store sets ``taken``, submit_nowait() appends to the
    last one it sent instead of sending another, so a burst costs one envelope per batch."""

    tasks: list[Any]  # list[NewTask]
    taken: bool = False


@attrs.frozen
class GetTask:
    id: str | int | KeyRef  # a task id, its number, or its key


@attrs.frozen
class ListTasks:
    state: TaskState | None
    type: str | None
    limit: int
    before: int | None  # list tasks numbered below this
    owner: str | None = None


@attrs.frozen
class ChangedSince:
    """Tasks that may have a transition after ``after`` (wall clock): every unfinished one
    and those finished since, up to ``limit`` of each kind (the event stream's replay)."""

    after: float
    limit: int
    owner: str | None = None


@attrs.frozen
class CancelTask:
    id: str


@attrs.frozen
class DeleteTask:
    id: str


@attrs.frozen
class RetryTask:
    id: str


@attrs.frozen
class WaitTask:
    """Reply once the task is finished (the reply may come much later)."""

    id: str


@attrs.frozen
class GetMany:
    """Several tasks in one message (ask -> list[Task], in the order given; TaskNotFound
    naming the first id that names no task)."""

    ids: tuple[str, ...]


@attrs.frozen
class WaitMany:
    """Reply once every task named is finished, with them in the order given (ask ->
    list[Task]; TaskNotFound as GetMany). One message however many tasks it names."""

    ids: tuple[str, ...]


@attrs.frozen
class WatchMany:
    """Send each task named into ``channel`` once it is finished, at once if it already is
    (ask -> None once every id is found; TaskNotFound as GetMany). ``channel`` has room for
    every task, so the store never waits on it; closing it is the watcher giving up."""

    ids: tuple[str, ...]  # no repeats
    channel: Any  # trio.MemorySendChannel[Task]


@attrs.frozen
class WaitIdle:
    """Reply once no task is unfinished."""


@attrs.frozen
class GetCounts:
    """Ask for the counts by type and state."""


@attrs.frozen
class Subscribe:
    capacity: int


@attrs.frozen
class SubscriptionEnded:
    """The last item an events() subscriber receives when the store drops it."""

    reason: str


@attrs.frozen
class CloseAdmission:
    """Refuse every later Submit with EngineClosed (shutdown has begun)."""


@attrs.frozen
class LoadQueue:
    """The scheduler (re)starting: reply with a Job for every unfinished task."""


@attrs.frozen
class Purge:
    """Retention (tell, from the scheduler's timer): delete up to ``limit`` tasks that finished
    before ``before`` (wall clock), after this batch commits; a full batch asks for another."""

    before: float
    limit: int


@attrs.frozen
class Record:
    """Transitions decided by the scheduler, applied in order in one batch (tell)."""

    changes: list[Any]  # the Started/Completed/... values below


@attrs.frozen
class ProgressReported:
    id: str
    fraction: float
    message: str


# Transitions inside a Record. `at` is wall-clock time.


class Started(NamedTuple):
    """The jobs of one dispatched batch: they started on ``worker`` (one value a batch)."""

    ids: list[str]
    worker: str
    at: float


class Completed(NamedTuple):
    id: str
    result: Any
    at: float


class Retrying(NamedTuple):
    id: str
    error: TaskError
    run_at: float
    at: float


class Failed(NamedTuple):
    id: str
    error: TaskError
    at: float


class Requeued(NamedTuple):
    """Back to pending: the worker holding it is gone. ``started`` says if it had begun."""

    id: str
    started: bool
    at: float


# -- shared stores (several engines on one backend; see backends/base.py) ------------------------


@attrs.frozen
class Claim:
    """From the scheduler (tell): own up to ``limit`` tasks due within ``within`` seconds; the
    store answers with Claimed, after its batch commits. ``limit`` 0: no room (paused or
    draining), so keep nothing submitted here for us; no answer."""

    limit: int
    within: float


@attrs.frozen
class Renew:
    """From the node actor (tell): extend the leases of every task this engine owns."""


@attrs.frozen
class Reap:
    """From the node actor (tell): release tasks whose owner stopped renewing their lease."""


@attrs.frozen
class RemoteFinished:
    """From the node actor: these tasks finished somewhere (None: anything may have; recheck
    every waiter), so wake who waits on them here."""

    ids: tuple[str, ...] | None


@attrs.frozen
class RemoteCancelled:
    """From the node actor: another engine cancelled these tasks; drop the ones we own."""

    ids: tuple[str, ...]


# -- to the scheduler --------------------------------------------------------------------------


@attrs.frozen
class Claimed:
    """From the store: what a Claim got (possibly nothing); ``limit`` is what was asked."""

    jobs: list[Job]
    limit: int


@attrs.frozen
class Wake:
    """Claimable tasks may be waiting in the shared store (a notice, or a local submit)."""


@attrs.frozen
class TasksReady:
    """From the store, after commit: these jobs may run (at their run_at)."""

    jobs: list[Job]


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
