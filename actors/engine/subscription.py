"""EventStream: the async iterator engine.events() returns."""

from __future__ import annotations

from collections import deque
from typing import Any

import trio

from ..errors import EventsDropped
from ..messages import Subscribe, SubscriptionEnded
from ..runtime.mailbox import ActorRef
from ..task import TaskEvent


class EventStream:
    """An async iterator of TaskEvent; subscribes to the store on its first ``__anext__``."""

    def __init__(self, store: ActorRef, capacity: int) -> None:
        self._store = store
        self._capacity = capacity
        self._receive: trio.MemoryReceiveChannel[Any] | None = None
        self._pending: deque[TaskEvent] = deque()  # of a list taken, not handed out yet

    async def __aenter__(self) -> EventStream:
        await self._subscribe()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _subscribe(self) -> trio.MemoryReceiveChannel[Any]:
        if self._receive is None:
            self._receive = await self._store.ask(Subscribe(self._capacity))
        return self._receive

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> TaskEvent:
        if self._pending:
            return self._pending.popleft()
        receive = await self._subscribe()
        try:
            item = await receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        self._pending.extend(self._events(item))
        return self._pending.popleft()

    def ready(self, most: int) -> list[TaskEvent]:
        """Up to ``most`` more events that are already here, without waiting (none before the
        first ``__anext__``); raises EventsDropped like it."""
        pending = self._pending
        found = [pending.popleft() for _ in range(min(most, len(pending)))]
        receive = self._receive
        while receive is not None and len(found) < most:
            try:
                item = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            events = self._events(item)
            room = most - len(found)
            found += events[:room]
            pending.extend(events[room:])
        return found

    def _events(self, item: Any) -> list[TaskEvent]:
        """A commit's events (a list: the store's, shared, never changed), or EventsDropped."""
        if isinstance(item, SubscriptionEnded):
            assert self._receive is not None
            self._receive.close()
            raise EventsDropped(item.reason)
        events: list[TaskEvent] = item
        return events

    async def aclose(self) -> None:
        if self._receive is not None:
            self._receive.close()
