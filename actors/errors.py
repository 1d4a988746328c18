"""Every exception oncue raises on purpose, in one place."""

from __future__ import annotations

import trio


class OncueError(Exception):
    """Base of every error oncue raises on purpose."""


# -- the actor runtime --------------------------------------------------------------------------


class ActorError(OncueError):
    """Something went wrong talking to an actor."""


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


class AskTimeout(ActorError, TimeoutError):
    """No reply came within the ask's timeout."""

    def __init__(self, path: str, message: object, timeout: float) -> None:
        kind = type(message).__name__
        super().__init__(f"actor {path} did not reply to {kind} within {timeout:g}s")
        self.path = path


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


class StoreUnavailable(ActorError):
    """The store's backend is failing; the store answers this until it recovers. Retry later.

    A submit that got this may still have been committed (a commit that outlived its deadline):
    retry it with the same idempotency key to be sure it is admitted once.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"the task store is unavailable ({error!r}); retry later")
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


class QueueFull(OncueError):
    """Admitting these tasks would exceed ``queue_size`` unfinished tasks; nothing was added."""

    def __init__(self, queue_size: int, unfinished: int, requested: int) -> None:
        super().__init__(
            f"queue is full: {unfinished} of {queue_size} unfinished tasks,"
            f" cannot add {requested}; retry later or raise queue_size"
        )
        self.queue_size = queue_size


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


class WaitTimeout(OncueError, TimeoutError):
    def __init__(self, task_id: str, timeout: float) -> None:
        super().__init__(f"task {task_id!r} did not finish within {timeout:g}s")
        self.task_id = task_id


class EventsDropped(OncueError):
    """An events() stream was ended by the store (it fell behind, or the store restarted);
    subscribe again, knowing some transitions were missed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"event stream ended: {reason}; subscribe again")
        self.reason = reason


# -- raised by task code ------------------------------------------------------------------------


class Retry(OncueError):
    """Raised by a handler to ask for another attempt, after ``delay`` seconds if given."""

    def __init__(self, message: str = "retry requested", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Fatal(OncueError):
    """Raised by a handler for a failure no retry can fix: the task fails at once."""


class TaskTimeout(OncueError, TimeoutError):
    """The attempt ran past the task's timeout and was cancelled."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"attempt timed out after {timeout:g}s")
