"""The app's one subscription to the engine's task events, shared by every event stream.

With one engine subscription per SSE client, the store would hand each event to every client's
channel and each client's task would wake once per event: 50 clients at 3,000 events/s fell
behind and were dropped (bench/sse.py). The hub subscribes once (this node's events and, on a
shared store, the other nodes'), takes them in batches, and hands each stream one list of the
events it wants per batch. A stream that falls more than its capacity behind is dropped (its
writer then sends `event: dropped`); the hub itself, if the engine drops it, tells every stream
so and subscribes again. The store never waits for any of them.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable

import attrs
import trio

from oncue.actors import Engine, EventsDropped, TaskEvent
from oncue.actors.engine.subscription import EventStream
from oncue.actors.engine.watch import FeedStream

from .sse import EventFilter

logger = logging.getLogger(__name__)

HUB_CAPACITY = 100_000  # events the hub may fall behind the engine before it is dropped
BATCH = 1000  # events taken at once


@attrs.define(eq=False)
class Listener:
    """One stream's share of the hub: batches of the events it wants, at most `capacity` behind."""

    wanted: EventFilter
    capacity: int
    _send: trio.MemorySendChannel[list[TaskEvent] | str]
    receive: trio.MemoryReceiveChannel[list[TaskEvent] | str]
    pending: int = 0  # events handed over, not yet taken by the writer

    def offer(self, events: list[TaskEvent]) -> bool:
        """Hand over the events it wants of a batch; False once it is dropped."""
        wanted = [event for event in events if self.wanted.matches(event)]
        if not wanted:
            return True
        if self.pending + len(wanted) > self.capacity:
            self.end(f"fell {self.capacity} events behind")
            return False
        self.pending += len(wanted)
        try:
            self._send.send_nowait(wanted)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False  # its stream ended
        return True

    def taken(self, count: int) -> None:
        self.pending -= count

    def end(self, reason: str) -> None:
        """The last item it gets: why it ends (then its channel closes)."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            self._send.send_nowait(reason)
        self._send.close()


@attrs.define(eq=False)
class EventHub:
    engine: Engine
    _listeners: set[Listener] = attrs.field(factory=set)

    def join(self, wanted: EventFilter, capacity: int) -> Listener:
        """A new listener: it gets every event published from now on that `wanted` matches."""
        send, receive = trio.open_memory_channel[list[TaskEvent] | str](math.inf)
        listener = Listener(wanted, capacity, send, receive)
        self._listeners.add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        self._listeners.discard(listener)
        listener.receive.close()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Feed the listeners until the engine stops; started once subscribed."""
        while True:
            try:
                async with (
                    self.engine.events(HUB_CAPACITY) as local,
                    self.engine.remote_events(HUB_CAPACITY) as remote,
                    trio.open_nursery() as nursery,
                ):
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED
                    nursery.start_soon(self._pump, remote, nursery.cancel_scope.cancel)
                    await self._pump(local, nursery.cancel_scope.cancel)
                self._end_all("the engine stopped")
                return
            except* EventsDropped:
                logger.warning("http.hub_dropped", extra={"capacity": HUB_CAPACITY})
                self._end_all(f"the server fell {HUB_CAPACITY} events behind")

    async def _pump(
        self, stream: EventStream | FeedStream[TaskEvent], done: Callable[[], None]
    ) -> None:
        async for event in stream:
            batch = [event, *stream.ready(BATCH - 1)]
            for listener in list(self._listeners):
                if not listener.offer(batch):
                    self._listeners.discard(listener)
        done()

    def _end_all(self, reason: str) -> None:
        for listener in self._listeners:
            listener.end(f"{reason}; reconnect with Last-Event-ID")
        self._listeners.clear()
