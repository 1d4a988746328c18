"""The logger a handler gets as `ctx.logger`: every record carries the task it ran for."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

TASK_LOGGER = "oncue.task"


class TaskLogger(logging.LoggerAdapter[logging.Logger]):
    """A LoggerAdapter that adds its task fields to the `extra=` of each call.

    The standard adapter replaces a call's `extra=` with its own; this one merges them, the
    task's fields winning (a handler cannot make a line claim another task).
    """

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Merge the bound task fields into the call's `extra=`."""
        bound: Mapping[str, object] = self.extra or {}
        kwargs["extra"] = {**(kwargs.get("extra") or {}), **bound}
        return msg, kwargs


def task_logger(
    task_id: str, task_type: str, attempt: int, worker: str, node: str | None
) -> TaskLogger:
    """The `oncue.task` logger bound to one attempt of one task."""
    fields = {
        "task_id": task_id,
        "task_type": task_type,
        "attempt": attempt,
        "worker": worker,
        "node": node,
    }
    return TaskLogger(logging.getLogger(TASK_LOGGER), fields)
