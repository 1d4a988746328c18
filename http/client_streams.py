"""The open event streams the clients' `events()` return: blocking and async.

Each opens `GET /api/v1/events` on first use (or on entering its `with`), feeds the text to an
`EventDecoder` (client_events.py) and yields its values; it closes the connection when the
server ends the stream, when it raises, and on leaving the `with` (or `close()`). When the
connection breaks (the server restarted, a proxy cut it), it opens it again by itself with
`Last-Event-ID`, so the server replays what was missed, backing off (`Reconnects`) and giving
up with ServerUnreachable after RECONNECT_TRIES in a row with nothing read. The first opening
is not tried that way: a wrong URL fails at once (after the calls' own retries).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Self

import anyio
import httpx

from oncue.actors import EventsDropped, TaskEvent

from .client_errors import ServerUnreachable
from .client_events import Ended, EventDecoder, Frame, Reconnects, StreamEvent, broke_off

Opener = Callable[[str | None], httpx.Response]  # opens the stream after that event id
AsyncOpener = Callable[[str | None], Awaitable[httpx.Response]]


class EventStream:
    """The server's events as they happen (`Client.events()`): iterate it, in a `with`.

    Yields TaskEvent, ActorEvent and EventsReset values; stops when the server ends the
    stream; raises EventsDropped when the server dropped it (it fell behind). A broken
    connection is opened again (``reconnect``, see the module); ServerUnreachable once that
    fails: resume with ``events(last_event_id=stream.last_event_id)``.
    """

    def __init__(
        self, url: str, open: Opener, last_event_id: str | None, reconnect: bool = True
    ) -> None:
        self.url = url
        self._open = open
        self._reconnects = Reconnects(tries=Reconnects().tries if reconnect else 0)
        self._opened = False
        self._decoder = EventDecoder(last_event_id)
        self._ready: deque[Frame] = deque()
        self._yielded = last_event_id  # the id of the last task event yielded
        self._response: httpx.Response | None = None
        self._chunks: Iterator[str] | None = None
        self._done = False

    @property
    def last_event_id(self) -> str | None:
        """The id of the last task event yielded (or the one resumed after)."""
        return self._yielded

    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> StreamEvent:
        while not self._ready:
            if self._done:
                raise StopIteration
            try:
                chunk = next(self._start(), None)
                if chunk is None:
                    raise broke_off(self.url, self.last_event_id)
                self._reconnects.read()
                self._ready.extend(self._decoder.frames(chunk))
            except (httpx.TransportError, ServerUnreachable) as error:
                delay = self._broke(error)
                time.sleep(delay)
            except BaseException:
                self.close()
                raise
        value, event_id = self._ready.popleft()
        if isinstance(value, Ended | EventsDropped):
            self.close()
            if isinstance(value, EventsDropped):
                raise value
            raise StopIteration
        if isinstance(value, TaskEvent) and event_id is not None:
            self._yielded = event_id
        return value

    def _broke(self, error: Exception) -> float:
        """The connection broke (or would not open again): the pause before the next try;
        raises ServerUnreachable (closed) when not to try again."""
        if self._response is not None:
            self._response.close()
        self._response = self._chunks = None
        delay = self._reconnects.next_delay() if self._opened else None
        if delay is None:
            self.close()
            if isinstance(error, ServerUnreachable) and not self._opened:
                raise error
            raise broke_off(self.url, self.last_event_id, self._reconnects.tries) from None
        return delay

    def close(self) -> None:
        """Close the connection; the iteration stops."""
        self._done = True
        self._ready.clear()
        if self._response is not None:
            self._response.close()

    def _start(self) -> Iterator[str]:
        if self._chunks is None:
            self._decoder.restart()
            self._response = self._open(self.last_event_id)
            self._opened = True
            self._chunks = self._response.iter_text()
        return self._chunks


class AsyncEventStream:
    """The server's events as they happen (`AsyncClient.events()`): ``async for`` over it,
    in an ``async with`` (which closes the connection). As :class:`EventStream`."""

    def __init__(
        self, url: str, open: AsyncOpener, last_event_id: str | None, reconnect: bool = True
    ) -> None:
        self.url = url
        self._open = open
        self._reconnects = Reconnects(tries=Reconnects().tries if reconnect else 0)
        self._opened = False
        self._decoder = EventDecoder(last_event_id)
        self._ready: deque[Frame] = deque()
        self._yielded = last_event_id  # the id of the last task event yielded
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[str] | None = None
        self._done = False

    @property
    def last_event_id(self) -> str | None:
        """The id of the last task event yielded (or the one resumed after)."""
        return self._yielded

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamEvent:
        while not self._ready:
            if self._done:
                raise StopAsyncIteration
            try:
                chunk = await anext(await self._start(), None)
                if chunk is None:
                    raise broke_off(self.url, self.last_event_id)
                self._reconnects.read()
                self._ready.extend(self._decoder.frames(chunk))
            except (httpx.TransportError, ServerUnreachable) as error:
                delay = await self._broke(error)
                await anyio.sleep(delay)
            except Exception:  # a cancellation leaves the closing to the `async with`
                await self.aclose()
                raise
        value, event_id = self._ready.popleft()
        if isinstance(value, Ended | EventsDropped):
            await self.aclose()
            if isinstance(value, EventsDropped):
                raise value
            raise StopAsyncIteration
        if isinstance(value, TaskEvent) and event_id is not None:
            self._yielded = event_id
        return value

    async def _broke(self, error: Exception) -> float:
        """As EventStream._broke."""
        await self._close_connection()
        delay = self._reconnects.next_delay() if self._opened else None
        if delay is None:
            await self.aclose()
            if isinstance(error, ServerUnreachable) and not self._opened:
                raise error
            raise broke_off(self.url, self.last_event_id, self._reconnects.tries) from None
        return delay

    async def aclose(self) -> None:
        """Close the connection; the iteration stops."""
        self._done = True
        self._ready.clear()
        await self._close_connection()

    async def _close_connection(self) -> None:
        if self._response is not None:
            response, self._response = self._response, None
            await response.aclose()
        if self._chunks is not None:  # run httpx's generators to their end on the closed
            chunks, self._chunks = self._chunks, None  # stream (trio warns of unfinished ones)
            with contextlib.suppress(Exception):
                async for _ in chunks:
                    pass

    async def _start(self) -> AsyncIterator[str]:
        if self._chunks is None:
            self._decoder.restart()
            self._response = await self._open(self.last_event_id)
            self._opened = True
            self._chunks = self._response.aiter_text()
        return self._chunks
