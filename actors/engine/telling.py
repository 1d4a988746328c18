"""The store's line to the scheduler: what it is told once a batch has committed.

One job: send the scheduler, in order, the facts a committed batch produced (the work that
became ready, the tasks cancelled, then StartsRecorded for each Record whose worker waits) and
anything else the store tells it, never blocking (its mailbox is unbounded). Ready work joins the
TasksReady the scheduler has not taken yet when that was the last thing told, so a stream of
small batches reaches it as one message and the order of what it hears stays as it was.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ActorStopped
from ..messages import Job, StartsRecorded, TaskCancelled, TasksReady
from ..runtime.mailbox import ActorRef

logger = logging.getLogger(__name__)


class SchedulerLine:
    def __init__(self, scheduler: ActorRef) -> None:
        self._scheduler = scheduler
        self._last_ready: TasksReady | None = None  # the last thing told the scheduler, if so

    def committed(self, confirms: list[object], ready: list[Job], cancelled: list[str]) -> None:
        """A batch committed: its Records' ``confirms`` tokens, its ``ready`` work, the ids it
        ``cancelled``."""
        if ready:
            self.tell_ready(ready)
        for task_id in cancelled:
            self.tell(TaskCancelled(task_id))
        # Committed: the workers may run what started. After the cancels: a task whose cancel
        # this batch committed with its start is then kept from its worker, never begun.
        for token in confirms:
            self.tell(StartsRecorded(token))

    def tell_ready(self, jobs: list[Job]) -> None:
        """Add ``jobs`` to the TasksReady the scheduler has not taken yet, if it was the last
        thing told (so the order of what it hears stays as it was), or send a new one."""
        last = self._last_ready
        if last is not None and not last.taken and len(last.jobs) < last.limit:
            last.jobs.extend(jobs)
            return
        message = TasksReady(jobs)
        self.tell(message)
        self._last_ready = message

    def tell(self, message: Any) -> None:
        self._last_ready = None
        try:
            self._scheduler.try_tell(message)  # the scheduler's mailbox is unbounded
        except ActorStopped:
            logger.debug("store.scheduler_gone", extra={"reply": type(message).__name__})
