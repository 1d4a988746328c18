"""Lifecycle events supervisors emit: logged, and handed to an observer if one is given."""

from __future__ import annotations

import enum
import logging
import traceback
from collections.abc import Callable

import attrs
import trio

logger = logging.getLogger("oncue.actors.runtime.supervisor")


class EventKind(enum.Enum):
    STARTED = "started"
    STOPPED = "stopped"
    CRASHED = "crashed"
    RESTARTED = "restarted"
    GAVE_UP = "gave_up"


@attrs.frozen
class LifecycleEvent:
    """One thing that happened to an actor: ``kind`` at ``path``, with the error if any."""

    kind: EventKind
    path: str
    restarts: int = 0
    error: BaseException | None = None
    time: float = attrs.field(factory=trio.current_time)

    @property
    def traceback(self) -> str:
        """The formatted traceback of ``error`` ('' when there is none)."""
        if self.error is None:
            return ""
        return "".join(traceback.format_exception(self.error))


Observer = Callable[[LifecycleEvent], None]


def log_event(event: LifecycleEvent) -> None:
    """Log an event once, at a level that matches how bad it is."""
    if event.kind is EventKind.CRASHED:
        logger.error(
            "actor.crashed",
            extra={"path": event.path, "restarts": event.restarts, "error": repr(event.error)},
            exc_info=event.error,
        )
    elif event.kind is EventKind.GAVE_UP:
        logger.error("actor.gave_up", extra={"path": event.path, "error": repr(event.error)})
    elif event.kind is EventKind.RESTARTED:
        logger.warning("actor.restarted", extra={"path": event.path, "restarts": event.restarts})
    else:
        logger.debug(f"actor.{event.kind.value}", extra={"path": event.path})


def make_emitter(observer: Observer | None) -> Callable[[LifecycleEvent], None]:
    """Return the function supervisors call for every event: log it, then tell the observer.

    The observer runs synchronously inside the supervisor; it must not block (to feed a channel,
    use ``send_nowait``). An observer that raises is logged and otherwise ignored.
    """

    def emit(event: LifecycleEvent) -> None:
        log_event(event)
        if observer is None:
            return
        try:
            observer(event)
        except Exception:
            logger.exception("actor.observer_failed", extra={"path": event.path})

    return emit
