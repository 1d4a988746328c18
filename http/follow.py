"""The task log: one line a task transition, fed by the event hub (hub.py) while the app is
served. The task metrics do not follow the transitions: /metrics reads the engine's tally.
"""

from __future__ import annotations

import logging

from oncue.actors import TaskEvent

task_logger = logging.getLogger("oncue.task")


class TaskLog:
    """What the hub calls with each batch of this node's task transitions to log them, while
    the `oncue.task` logger takes INFO (`wanted`: the hub asks every second, and holds its
    subscription only while the log or an event stream wants one). The hub takes the events in
    batches from its one subscription; when it falls too far behind and is dropped, the log
    misses what was dropped (the hub logs that)."""

    def wanted(self) -> bool:
        return task_logger.isEnabledFor(logging.INFO)

    def __call__(self, events: list[TaskEvent]) -> None:
        if task_logger.isEnabledFor(logging.INFO):
            for event in events:
                log_transition(event)


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
