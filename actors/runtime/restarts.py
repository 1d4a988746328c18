"""A supervisor's restart decisions, with no I/O: whether an exited child restarts, which
siblings restart with it, and whether the restarts within the intensity window are too many.

supervisor.py carries them out (stopping and starting children in its nursery); these are
plain values and functions, tested without trio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TypeVar

from .spec import Restart, Strategy

T = TypeVar("T")


def should_restart(restart: Restart, *, crashed: bool) -> bool:
    """A permanent child always restarts, a transient one only after a crash, a temporary
    one never."""
    if restart is Restart.PERMANENT:
        return True
    return crashed and restart is Restart.TRANSIENT


def restart_group(strategy: Strategy, running: Sequence[T], failed: T) -> list[T]:
    """The children that restart with ``failed`` (``running``: in start order, ``failed``
    among them): itself alone, all of them, or itself and those started after it."""
    if strategy is Strategy.ONE_FOR_ONE:
        return [failed]
    if strategy is Strategy.ONE_FOR_ALL:
        return list(running)
    return list(running[list(running).index(failed) :])


class Intensity:
    """The restarts of the last ``within`` seconds: more than ``max_restarts`` is too many."""

    def __init__(self, max_restarts: int, within: float) -> None:
        self.max_restarts = max_restarts
        self.within = within
        self._times: deque[float] = deque()

    def exceeded(self, now: float) -> bool:
        """Count a restart at ``now``; whether the window now holds too many."""
        self._times.append(now)
        while self._times[0] < now - self.within:
            self._times.popleft()
        return len(self._times) > self.max_restarts

    @property
    def count(self) -> int:
        """The restarts in the window, the one just counted included."""
        return len(self._times)
