"""Who waits on the store: wait()ers, wait_idle()ers and events() subscribers.

Owned by the store actor and used only from it; told after each commit what finished and what
happened, it answers the waiters and feeds the subscribers, never blocking: a subscriber that
falls ``capacity`` events behind is dropped with a notice.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, TypeVar

import trio

from ..cores.record import TaskRecord
from ..messages import SubscriptionEnded
from ..runtime.mailbox import Envelope
from ..task import TaskEvent
from .waiters import Waiter, Watch


class Listeners:
    def __init__(self) -> None:
        self._task_waiters: dict[str, list[Waiter]] = defaultdict(list)
        self._idle_waiters: list[Envelope] = []
        self._subscribers: list[tuple[trio.MemorySendChannel[Any], int]] = []

    @property
    def subscribed(self) -> bool:
        """Whether anyone wants events (so the store builds them only then)."""
        return bool(self._subscribers)

    @property
    def idle_waiting(self) -> bool:
        return bool(self._idle_waiters)

    def waited_ids(self) -> set[str]:
        """The tasks somebody waits on."""
        return {task_id for task_id, waiters in self._task_waiters.items() if waiters}

    def wait_for(self, task_id: str, waiter: Waiter) -> None:
        """Answer ``waiter`` (a wait's ask, or a Gather or Watch of many tasks) once the task's
        end is committed."""
        waiters = self._task_waiters.get(task_id)
        if not waiters:  # the usual case: nobody else waits on it
            self._task_waiters[task_id] = [waiter]
            return
        waiters[:] = _live(waiters)
        waiters.append(waiter)

    def wait_idle(self, envelope: Envelope) -> None:
        self._idle_waiters = _live(self._idle_waiters)
        self._idle_waiters.append(envelope)

    def subscribe(self, capacity: int) -> trio.MemoryReceiveChannel[Any]:
        # One slot more than the capacity, kept for the notice that the subscriber was dropped.
        send, receive = trio.open_memory_channel[Any](capacity + 1)
        self._subscribers.append((send, capacity))
        return receive

    def committed(
        self, finished: Iterable[TaskRecord], idle: bool, events: list[TaskEvent]
    ) -> None:
        """After a commit: answer the waiters of what finished, and of idleness; publish."""
        task_waiters = self._task_waiters
        for record in finished if task_waiters else ():
            waiters = task_waiters.pop(record.id, ())
            if waiters:
                snapshot = record.snapshot()
                for waiter in waiters:
                    waiter.reply(snapshot)
        if idle and self._idle_waiters:
            for waiter in self._idle_waiters:
                waiter.reply(None)
            self._idle_waiters.clear()
        if events and self._subscribers:
            self._publish(events)

    def _publish(self, events: list[TaskEvent]) -> None:
        keep: list[tuple[trio.MemorySendChannel[Any], int]] = []
        for channel, capacity in self._subscribers:
            try:
                # Nobody receives while we send, so the room is counted once, not per event
                # (statistics() builds an object): the buffer's, plus one item for each
                # receiver waiting, which takes it straight from send_nowait.
                statistics = channel.statistics()
                room = capacity - statistics.current_buffer_used + statistics.tasks_waiting_receive
                for event in events:
                    if room <= 0:
                        channel.send_nowait(SubscriptionEnded(f"fell {capacity} events behind"))
                        raise trio.BrokenResourceError
                    channel.send_nowait(event)
                    room -= 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                channel.close()
                continue
            keep.append((channel, capacity))
        self._subscribers = keep

    def end_subscriptions(self, reason: str) -> None:
        """Close every events() stream: plainly at a stop, with a notice after a crash; and
        every as_completed() stream (its reader asks the next store for what is left)."""
        for waiters in self._task_waiters.values():
            for waiter in waiters:
                if isinstance(waiter, Watch):
                    waiter.close()
        for channel, _ in self._subscribers:
            if reason:
                with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                    channel.send_nowait(SubscriptionEnded(reason))
            channel.close()
        self._subscribers = []


W = TypeVar("W", bound=Waiter)


def _live(waiters: list[W]) -> list[W]:
    """The waiters whose askers still wait; forget the rest (their waits timed out)."""
    live = []
    for waiter in waiters:
        if waiter.abandoned:
            waiter.drop()
        else:
            live.append(waiter)
    return live
