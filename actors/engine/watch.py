"""Watching the supervision tree: its lifecycle events as a stream, and a snapshot of its actors.

open_engine() feeds every LifecycleEvent of its tree to a `Feed`; `engine.supervision_events()`
subscribes to it and `engine.tree()` lists the actors (see handle.py). Like the store's task
events, the feed never blocks the supervisor that publishes: a subscriber that falls
``capacity`` events behind is dropped with a notice (EventsDropped).
"""

from __future__ import annotations

import contextlib
from typing import Any, Generic, TypeVar

import attrs
import trio

from ..errors import EventsDropped
from ..messages import SubscriptionEnded
from ..runtime.spec import ChildInfo

T = TypeVar("T")


@attrs.frozen
class ActorInfo:
    """One actor of the engine's tree: where it is, its state and how often it restarted."""

    path: str
    name: str
    state: str
    restarts: int
    last_error: str | None

    @classmethod
    def of(cls, child: ChildInfo) -> ActorInfo:
        error = None if child.last_error is None else repr(child.last_error)
        return cls(child.path, child.name, child.state.value, child.restarts, error)


@attrs.define
class Feed:
    """Fans published events out to bounded subscriber channels, never blocking."""

    _subscribers: list[tuple[trio.MemorySendChannel[Any], int]] = attrs.field(factory=list)

    def subscribe(self, capacity: int) -> trio.MemoryReceiveChannel[Any]:
        # One slot more than the capacity, for the notice that the subscriber was dropped.
        send, receive = trio.open_memory_channel[Any](capacity + 1)
        self._subscribers.append((send, capacity))
        return receive

    def publish(self, event: Any) -> None:
        """Hand ``event`` to every subscriber with room; drop those without (with a notice)."""
        keep = []
        for channel, capacity in self._subscribers:
            statistics = channel.statistics()
            room = capacity - statistics.current_buffer_used + statistics.tasks_waiting_receive
            try:
                if room <= 0:
                    channel.send_nowait(SubscriptionEnded(f"fell {capacity} events behind"))
                    raise trio.BrokenResourceError
                channel.send_nowait(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.WouldBlock):
                channel.close()
                continue
            keep.append((channel, capacity))
        self._subscribers = keep

    def close(self) -> None:
        """End every subscription (the engine stopped)."""
        for channel, _ in self._subscribers:
            with contextlib.suppress(trio.ClosedResourceError):
                channel.close()
        self._subscribers = []


class FeedStream(Generic[T]):
    """An async iterator of what a Feed publishes (LifecycleEvent, TaskEvent); subscribed
    when made."""

    def __init__(self, feed: Feed, capacity: int) -> None:
        self._receive = feed.subscribe(capacity)

    async def __aenter__(self) -> FeedStream[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._receive.close()

    def ready(self, most: int) -> list[T]:
        """Up to ``most`` more items already here, without waiting; raises EventsDropped when
        it meets the notice that this stream was dropped."""
        found: list[T] = []
        while len(found) < most:
            try:
                item = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if isinstance(item, SubscriptionEnded):
                self._receive.close()
                raise EventsDropped(item.reason)
            found.append(item)
        return found

    def __aiter__(self) -> FeedStream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            item = await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        if isinstance(item, SubscriptionEnded):
            self._receive.close()
            raise EventsDropped(item.reason)
        event: T = item
        return event
