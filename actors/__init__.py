"""oncue.actors: a supervised actor runtime on trio, and the task engine built from it."""

from .actor import Actor, Context
from .errors import (
    ActorCrashed,
    ActorError,
    ActorStopped,
    AskTimeout,
    ChildNotFound,
    MailboxFull,
    OncueError,
    SupervisorGaveUp,
)
from .events import EventKind, LifecycleEvent
from .mailbox import ActorRef, Envelope, Mailbox
from .supervisor import (
    ChildInfo,
    ChildSpec,
    ChildState,
    Restart,
    Strategy,
    Supervisor,
    SupervisorRef,
    open_supervisor,
    supervisor_spec,
)

__all__ = [
    "Actor",
    "ActorCrashed",
    "ActorError",
    "ActorRef",
    "ActorStopped",
    "AskTimeout",
    "ChildInfo",
    "ChildNotFound",
    "ChildSpec",
    "ChildState",
    "Context",
    "Envelope",
    "EventKind",
    "LifecycleEvent",
    "Mailbox",
    "MailboxFull",
    "OncueError",
    "Restart",
    "Strategy",
    "Supervisor",
    "SupervisorGaveUp",
    "SupervisorRef",
    "open_supervisor",
    "supervisor_spec",
]
