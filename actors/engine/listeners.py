"""Who waits on the store: wait()ers, wait_idle()ers and events() subscribers.

Owned by the store actor and used only from it; told after each commit what finished and what
happened, it answers the waiters and feeds the subscribers, never blocking: a subscriber that
falls ``capacity`` events behind is dropped with a notice. A commit's events go to a
subscriber as one item, the list (the same list to every subscriber: read it, never change
it), not one item an event: a channel's send and receive cost more than most events.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any, TypeVar

import attrs
import trio

from ..cores.record import TaskRecord
from ..messages import SubscriptionEnded
from ..runtime.mailbox import Envelope
from ..task import TaskEvent
from .waiters import Waiter, Watch


@attrs.define(eq=False)
class Subscriber:
    """One events() subscription: its channel of event lists, and how far behind it is."""

    channel: trio.MemorySendChannel[Any]
    capacity: int  # events it may fall behind before it is dropped
    sizes: deque[int] = attrs.field(factory=deque)  # of the lists sent, oldest first
    behind: int = 0  # events in the lists it has not taken yet

    def offer(self, events: list[TaskEvent]) -> bool:
        """Send ``events`` as one item; False if that would put it more than ``capacity``
        events behind: then what fits goes, and the notice after it (as when a channel held
        one event an item: a receiver waiting takes one more than the capacity)."""
        sizes = self.sizes
        statistics = self.channel.statistics()  # one object, not one a look
        while len(sizes) > statistics.current_buffer_used:  # lists taken, oldest first
            self.behind -= sizes.popleft()
        room = self.capacity - self.behind + statistics.tasks_waiting_receive
        if len(events) <= room:
            self._send(events)
            return True
        if room > 0:
            self._send(events[:room])
        self.channel.send_nowait(SubscriptionEnded(f"fell {self.capacity} events behind"))
        return False

    def _send(self, events: list[TaskEvent]) -> None:
        self.channel.send_nowait(events)
        self.sizes.append(len(events))
        self.behind += len(events)


class Listeners:
    def __init__(self) -> None:
        self._task_waiters: dict[str, list[Waiter]] = defaultdict(list)
        self._idle_waiters: list[Envelope] = []
        self._subscribers: list[Subscriber] = []

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
        """A channel of event lists (each list holds at least one event), then maybe a
        SubscriptionEnded: one slot more than the capacity, kept for that notice."""
        send, receive = trio.open_memory_channel[Any](capacity + 1)
        self._subscribers.append(Subscriber(send, capacity))
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
        keep: list[Subscriber] = []
        for subscriber in self._subscribers:
            try:
                if not subscriber.offer(events):
                    raise trio.BrokenResourceError
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.WouldBlock):
                subscriber.channel.close()
                continue
            keep.append(subscriber)
        self._subscribers = keep

    def end_subscriptions(self, reason: str) -> None:
        """Close every events() stream: plainly at a stop, with a notice after a crash; and
        every as_completed() stream (its reader asks the next store for what is left)."""
        for waiters in self._task_waiters.values():
            for waiter in waiters:
                if isinstance(waiter, Watch):
                    waiter.close()
        for subscriber in self._subscribers:
            channel = subscriber.channel
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
