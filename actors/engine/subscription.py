"""EventStream: the async iterator engine.events() returns."""

from __future__ import annotations

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
        receive = await self._subscribe()
        try:
            item = await receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        if isinstance(item, SubscriptionEnded):
            receive.close()
            raise EventsDropped(item.reason)
        event: TaskEvent = item
        return event

    def ready(self, most: int) -> list[TaskEvent]:
        """Up to ``most`` more events that are already here, without waiting (none before the
        first ``__anext__``); raises EventsDropped like it."""
        found: list[TaskEvent] = []
        receive = self._receive
        while receive is not None and len(found) < most:
            try:
                item = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if isinstance(item, SubscriptionEnded):
                receive.close()
                raise EventsDropped(item.reason)
            found.append(item)
        return found

    async def aclose(self) -> None:
        if self._receive is not None:
            self._receive.close()
