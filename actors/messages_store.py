"""The messages to the store: from callers (the Engine handle), from the scheduler (Record and
its transitions, Purge, Claim), from workers (ProgressReported) and from the node actor.

Part of the protocol messages.py gathers; import them from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

if TYPE_CHECKING:  # annotations only: the scheduler's core imports this module without trio
    from .task import TaskError, TaskState

# -- to the store ------------------------------------------------------------------------------


@attrs.frozen
class Submit:
    """Admit these tasks, all or none (ask -> list[Admitted])."""

    tasks: list[Any]  # list[TaskRecord], as admission built them


@attrs.frozen
class KeyRef:
    """Names a task by its idempotency key."""

    key: str


@attrs.define(eq=False)
class SubmitNowait:
    """Admit these tasks, ids already given (tell: nobody waits). One the store cannot admit
    (queue full, shutting down) is recorded failed with that error: never silently dropped.

    Mutable (as TasksReady is): until the store sets ``taken``, submit_nowait() appends to the
    last one it sent instead of sending another, so a burst costs one envelope per batch."""

    tasks: list[Any]  # list[TaskRecord], as admission built them
    taken: bool = False
    # Set by the store once it has admitted them: (queue_size, unfinished) as it saw them then,
    # so submit_nowait() raises QueueFull for a full queue (an empty message asks again).
    admission: tuple[int, int] | None = None


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
    """Ask for the counts by type and state, and the queued tasks by priority."""


@attrs.frozen
class GetTally:
    """Ask for the transitions and run times counted since the engine started (tally.py)."""


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
    # Not None: answer StartsRecorded(confirm) once committed (durable stores: the workers
    # wait for it, so an attempt is counted before it runs; cores/recording.py)
    confirm: object | None = None


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
