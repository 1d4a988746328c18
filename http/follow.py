"""What the app does with the engine's task transitions besides streaming them: task metrics
and the task log, fed by the event hub (hub.py) while the app is served (in the ASGI lifespan,
which Hypercorn and Quart's `test_app()` both run), so `/metrics` counts tasks however the app
is served.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from oncue.actors import TaskEvent

from .metrics import Metrics

task_logger = logging.getLogger("oncue.task")


def observer(metrics: Metrics, log_tasks: Callable[[], bool]) -> Callable[[list[TaskEvent]], None]:
    """What the hub (hub.py) calls with each batch of this node's task transitions: they feed
    the metrics, and the log when `log_tasks()` says so (asked once a batch). The hub takes
    the events in batches from its one subscription, so following them costs no subscription
    and no wake-up of its own; when the hub falls too far behind and is dropped, the counts
    miss what was dropped (the hub logs it)."""

    def observe(events: list[TaskEvent]) -> None:
        metrics.observe_events(events)
        if log_tasks() and task_logger.isEnabledFor(logging.INFO):
            for event in events:
                log_transition(event)

    return observe


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
