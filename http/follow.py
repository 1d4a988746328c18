"""The app's subscription to the engine's task transitions: task metrics and the task log.

`create_app` starts it while the app is served (in the ASGI lifespan, which Hypercorn and
Quart's `test_app()` both run), so `/metrics` counts tasks however the app is served.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from oncue.actors import Engine, EventsDropped, TaskEvent

from .metrics import Metrics

logger = logging.getLogger(__name__)
task_logger = logging.getLogger("oncue.task")

EVENTS_CAPACITY = 10_000


async def follow_events(
    engine: Engine,
    metrics: Metrics,
    log_tasks: Callable[[], bool],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Feed every task transition to the metrics (and the log) until the engine stops.

    Reports started once subscribed: no transition after that is missed. A stream that falls
    too far behind is dropped by the engine; it subscribes again (the counts then miss what
    was dropped, and the log says so). `log_tasks()` is asked at each transition.
    """
    while True:
        try:
            async with engine.events(EVENTS_CAPACITY) as stream:
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                async for event in stream:
                    metrics.observe_event(event)
                    if log_tasks():
                        log_transition(event)
            return
        except EventsDropped:
            logger.warning("http.events_dropped", extra={"capacity": EVENTS_CAPACITY})


def log_transition(event: TaskEvent) -> None:
    """One line per task transition, with the worker that ran it."""
    task_logger.info(
        f"task.{event.state.value}",
        extra={
            "task_id": event.task_id,
            "task_type": event.type,
            "worker": event.worker,
            "attempts": event.attempts,
        },
    )
