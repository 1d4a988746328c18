"""What a supervisor is told: child specs, strategies, restart types, and its commands."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TypeVar

import attrs

from .actor import Actor
from .mailbox import ActorRef, Mailbox


class Strategy(enum.Enum):
    """Which children restart when one of them must."""

    ONE_FOR_ONE = "one_for_one"  # only the one that exited
    ONE_FOR_ALL = "one_for_all"  # every child
    REST_FOR_ONE = "rest_for_one"  # the one that exited and every child started after it


class Restart(enum.Enum):
    """When a child that exited is restarted."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after a crash
    TEMPORARY = "temporary"  # never; the child is removed when it exits


class ChildState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"


E = TypeVar("E", bound=enum.Enum)


def enum_converter(enum_type: type[E], field: str) -> Callable[[object], E]:
    def convert(value: object) -> E:
        if isinstance(value, enum_type):
            return value
        try:
            return enum_type(value)
        except ValueError:
            known = ", ".join(repr(member.value) for member in enum_type)
            raise ValueError(f"{field} must be one of {known}, got {value!r}") from None

    return convert


def _to_restart(value: object) -> Restart:
    return enum_converter(Restart, "restart")(value)


def _check_name(_: object, __: object, name: str) -> None:
    if not name or "/" in name:
        raise ValueError(f"name must be a non-empty string without '/', got {name!r}")


def _check_shutdown(_: object, __: object, shutdown: float) -> None:
    if not shutdown >= 0:
        raise ValueError(f"shutdown must be a number of seconds >= 0, got {shutdown!r}")


@attrs.frozen
class ChildSpec:
    """How to start one child: a factory making a fresh actor for every (re)start.

    ``shutdown`` is the grace in seconds a graceful stop gives the child to finish what its
    mailbox holds before it is cancelled. ``mailbox`` is made from ``mailbox_size`` unless given,
    and ``spec.ref`` is valid before the child starts, so siblings can be wired to each other.
    """

    name: str = attrs.field(validator=_check_name)
    factory: Callable[[], Actor]
    restart: Restart = attrs.field(default=Restart.PERMANENT, converter=_to_restart)
    shutdown: float = attrs.field(default=5.0, validator=_check_shutdown)
    mailbox_size: float = 1000
    mailbox: Mailbox = attrs.field(
        default=attrs.Factory(lambda self: Mailbox(self.name, self.mailbox_size), takes_self=True)
    )

    @property
    def ref(self) -> ActorRef:
        return self.mailbox.ref


@attrs.frozen
class ChildInfo:
    """What a supervisor reports about one child."""

    name: str
    path: str
    state: ChildState
    restarts: int
    last_error: BaseException | None


# -- commands a supervisor answers -------------------------------------------------------------


@attrs.frozen
class StartChild:
    spec: ChildSpec


@attrs.frozen
class StopChild:
    name: str


@attrs.frozen
class WhichChildren:
    pass
