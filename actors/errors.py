"""Every exception oncue raises on purpose, in one place, under four separate roots.

- ``OncueError``: what a caller of the engine (or of the HTTP API) is told: a bad option, a
  task not found, a full queue, a store that is down. ``except OncueError`` catches only these.
- ``ActorError``: the actor runtime (a stopped or crashed actor, a full mailbox, a supervisor
  that gave up). Not an OncueError: it is about the runtime, not about tasks.
- ``TaskSignal``: raised by task code to steer its own retries (``Retry``, ``Fatal``). Not an
  OncueError, so a handler's ``except OncueError`` around an engine call never swallows one.
- ``BackendError``: a backend's driver error, translated at the backend boundary, so the store
  catches these and never a bare ``Exception``. Not an OncueError: callers see
  ``StoreUnavailable``, which carries the BackendError as ``error``.
"""

from __future__ import annotations

import trio


class OncueError(Exception):
    """Base of the errors the engine's callers are told about."""


# -- the actor runtime --------------------------------------------------------------------------


class ActorError(Exception):
    """Something went wrong talking to an actor (the runtime's root, apart from OncueError)."""


class ActorStopped(ActorError):
    """The actor has stopped for good (or stopped before it replied): nothing will answer."""

    def __init__(self, path: str, reason: str = "it has stopped") -> None:
        super().__init__(f"actor {path} cannot answer: {reason}")
        self.path = path


class ActorCrashed(ActorError):
    """The actor crashed while it held this message; the original exception is ``error``."""

    def __init__(self, path: str, error: BaseException) -> None:
        super().__init__(f"actor {path} crashed while handling the message: {error!r}")
        self.path = path
        self.error = error


class MailboxFull(ActorError, trio.WouldBlock):
    """``try_tell`` found the mailbox full; ``tell`` would have waited."""

    def __init__(self, path: str) -> None:
        super().__init__(f"mailbox of actor {path} is full; use tell() to wait for room")
        self.path = path


class SupervisorGaveUp(ActorError):
    """A supervisor exceeded its restart intensity and stopped; its parent sees a crash."""

    def __init__(self, path: str, restarts: int, within: float, error: BaseException | None):
        super().__init__(
            f"supervisor {path} gave up after {restarts} restart{'' if restarts == 1 else 's'}"
            f" within {within:g}s;"
            f" last error: {error!r}"
        )
        self.path = path
        self.error = error


class StoreUnavailable(OncueError):
    """The store's backend is failing; the store answers this until it recovers. Retry later.

    A submit that got this may still have been committed (a commit that outlived its deadline):
    retry it with the same idempotency key to be sure it is admitted once.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"the task store is unavailable ({error}); retry later")
        self.error = error


class BackendRecovered(ActorError):
    """Raised by the store on purpose once its backend answers again after an outage, so its
    supervisor restarts it, the scheduler and the workers from what the backend holds."""

    deliberate = True  # a restart asked for, not a crash: no supervisor gives up over it


class ChildNotFound(ActorError, LookupError):
    """A supervisor has no child by that name."""

    def __init__(self, path: str, name: str) -> None:
        super().__init__(f"supervisor {path} has no child named {name!r}")
        self.path = path
        self.name = name


# -- the task engine ----------------------------------------------------------------------------


class EngineClosed(OncueError):
    """The engine is shutting down or has stopped: it admits no new work."""

    def __init__(self) -> None:
        super().__init__("the engine is shutting down and admits no new tasks")


class InvalidField(OncueError, ValueError):
    """A submission or query option is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.index: int | None = None  # in submit_many / admit: which submission


class DatabaseInUse(OncueError):
    """Another engine (another process) already uses this SQLite database."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"the SQLite database {path!r} is in use by another oncue process; stop it, or give"
            " this one its own --store (a SQLite store belongs to one process)"
        )
        self.path = path


class NodeNameInUse(OncueError):
    """A live engine on this shared store already has this node name."""

    def __init__(self, node: str) -> None:
        super().__init__(
            f"node name {node!r} is in use by a live engine on this store; names must be"
            " unique among live nodes (unset --node / ONCUE_NODE for a generated one)"
        )
        self.node = node


class QueueFull(OncueError, trio.WouldBlock):
    """Admitting these tasks would exceed ``queue_size`` unfinished tasks; nothing was added.

    Also a ``trio.WouldBlock``: what ``submit_nowait`` raises when it cannot take a task now.
    """

    def __init__(self, queue_size: int, unfinished: int, requested: int) -> None:
        super().__init__(
            f"queue is full: {unfinished} of {queue_size} unfinished tasks,"
            f" cannot add {requested}; retry later or raise queue_size"
        )
        self.queue_size = queue_size

    # Seconds to wait before trying again, when a server said so (its Retry-After header).
    retry_after: float | None = None


class UnknownTaskType(OncueError, LookupError):
    """No handler is registered under that name."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown task type {name!r}; known types: {', '.join(sorted(known))}")
        self.name = name
        self.known = sorted(known)
        self.index: int | None = None  # in submit_many / admit: which submission


class TaskNotFound(OncueError, LookupError):
    def __init__(self, task_id: object) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


class TaskStateError(OncueError):
    """The task is not in a state that allows this operation."""

    def __init__(self, task_id: str, state: str, operation: str, allowed: str) -> None:
        super().__init__(f"cannot {operation} task {task_id!r}: it is {state}; {allowed}")
        self.task_id = task_id
        self.state = state


class TaskAlreadyFinished(TaskStateError):
    def __init__(self, task_id: str, state: str) -> None:
        super().__init__(task_id, state, "cancel", "only unfinished tasks can be cancelled")


class TaskNotFinished(TaskStateError):
    def __init__(self, task_id: str, state: str) -> None:
        super().__init__(task_id, state, "delete", "cancel it first")


class TaskNotFailed(TaskStateError):
    def __init__(self, task_id: str, state: str) -> None:
        super().__init__(task_id, state, "retry", "only failed tasks can be retried")


class NoThreadLeft(OncueError):
    """Every thread for sync handlers is taken by handlers still running past their timeout."""

    def __init__(self, threads: int) -> None:
        super().__init__(
            f"all {threads} threads for sync handlers are held by handlers that ran past"
            " their timeout and are still running; make them return, or raise open_engine's"
            " threads="
        )


class EventsDropped(OncueError):
    """An events() stream was ended by the store (it fell behind, or the store restarted);
    subscribe again, knowing some transitions were missed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"event stream ended: {reason}; subscribe again")
        self.reason = reason


# -- raised by task code ------------------------------------------------------------------------


class TaskSignal(Exception):
    """Raised by task code to steer what happens to its task (the root of Retry and Fatal)."""


class Retry(TaskSignal):
    """Raised by a handler to ask for another attempt, after ``delay`` seconds if given."""

    def __init__(self, message: str = "retry requested", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Fatal(TaskSignal):
    """Raised by a handler for a failure no retry can fix: the task fails at once."""


class TaskTimeout(OncueError, TimeoutError):
    """The attempt ran past the task's timeout and was cancelled."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"attempt timed out after {timeout:g}s")


# -- backends -----------------------------------------------------------------------------------


class BackendError(Exception):
    """A backend's driver failed; raised by backends only, in place of the driver's own errors.

    ``cause`` is the driver's exception (also chained as ``__cause__``).
    """

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class BackendUnavailable(BackendError):
    """The backend cannot be reached or did not answer: try again later."""


class BackendReadOnly(BackendUnavailable):
    """The backend answers reads but refuses writes (a read-only PostgreSQL or standby, a
    Redis replica or one that cannot persist): until it takes them again."""


class BackendFull(BackendError):
    """The backend is out of space (a full disk, Redis out of memory): free some, then retry."""


class BadQuery(BackendError, ValueError):
    """The backend refused a query for its values (a number out of range): the caller's fault,
    not the backend's; never a reason to treat the backend as failing."""
