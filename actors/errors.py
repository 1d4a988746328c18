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
            f"supervisor {path} gave up after {restarts} restarts within {within:g}s;"
            f" last error: {error!r}"
        )
        self.path = path
        self.error = error


class ChildNotFound(ActorError, LookupError):
    """A supervisor has no child by that name."""

    def __init__(self, path: str, name: str) -> None:
        super().__init__(f"supervisor {path} has no child named {name!r}")
        self.path = path
        self.name = name
