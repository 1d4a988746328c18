"""The workers a scheduler knows: which there are, which wait for work, what each finished.

One job: the scheduler's bookkeeping of its workers (pure, no trio). A worker joins with its
first ask and leaves when it stops; while it waits for work its ask is queued here with the
waiter that answers it, oldest first; ``done`` counts the tasks each finished (for ``Load``).
What the workers hold is holdings.py's; who gets which work is SchedulerCore's dispatch.
"""

from __future__ import annotations

from collections import deque
from typing import Generic

from .recording import Waiter


class Roster(Generic[Waiter]):
    """``workers``: every worker that asked; ``idle``: (waiter, worker) of each waiting ask;
    ``done``: worker -> how many tasks it finished."""

    def __init__(self) -> None:
        self.workers: set[str] = set()
        self.idle: deque[tuple[Waiter, str]] = deque()
        self.done: dict[str, int] = {}

    def asked(self, worker: str, *, fresh: bool) -> None:
        """``worker`` asks for work; ``fresh``: a new incarnation, whose old ask is void."""
        self.workers.add(worker)
        if fresh:
            self._forget_ask(worker)

    def wait(self, waiter: Waiter, worker: str) -> None:
        """``worker``'s ask waits for work, answered through ``waiter``."""
        self.idle.append((waiter, worker))

    def left(self, worker: str) -> None:
        """``worker`` stopped for good."""
        self._forget_ask(worker)
        self.workers.discard(worker)

    def finished(self, worker: str) -> None:
        """``worker`` finished a task (succeeded, failed for good, or to retry later)."""
        self.done[worker] = self.done.get(worker, 0) + 1

    def dismiss(self) -> list[Waiter]:
        """Every waiting ask, removed (the engine drains: they get no work)."""
        waiters = [waiter for waiter, _ in self.idle]
        self.idle.clear()
        return waiters

    def _forget_ask(self, worker: str) -> None:
        self.idle = deque(item for item in self.idle if item[1] != worker)
