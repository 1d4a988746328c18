"""The open event streams the clients' `events()` return: blocking and async.

Each opens `GET /api/v1/events` on first use (or on entering its `with`), feeds the text to an
`EventDecoder` (client_events.py) and yields its values; it closes the connection when the
server ends the stream, when it raises, and on leaving the `with` (or `close()`).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Self

import httpx

from .client_events import Ended, EventDecoder, StreamEvent, broke_off


class EventStream:
    """The server's events as they happen (`Client.events()`): iterate it, in a `with`.

    Yields TaskEvent, ActorEvent and EventsReset values; stops when the server ends the
    stream; raises EventsDropped when the server dropped it (it fell behind), and
    ServerUnreachable when the connection broke: resume with ``events(last_event_id=
    stream.last_event_id)``.
    """

    def __init__(
        self, url: str, open: Callable[[], httpx.Response], last_event_id: str | None
    ) -> None:
        self.url = url
        self._open = open
        self._decoder = EventDecoder(last_event_id)
        self._ready: deque[StreamEvent | Ended] = deque()
        self._response: httpx.Response | None = None
        self._chunks: Iterator[str] | None = None
        self._done = False

    @property
    def last_event_id(self) -> str | None:
        """The id of the last task event yielded (or the one resumed after)."""
        return self._decoder.last_event_id

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
            chunks = self._start()
            try:
                chunk = next(chunks, None)
                if chunk is None:
                    raise broke_off(self.url, self.last_event_id)
                self._ready.extend(self._decoder.feed(chunk))
            except httpx.TransportError:
                self.close()
                raise broke_off(self.url, self.last_event_id) from None
            except BaseException:
                self.close()
                raise
        value = self._ready.popleft()
        if isinstance(value, Ended):
            self.close()
            raise StopIteration
        return value

    def close(self) -> None:
        """Close the connection; the iteration stops."""
        self._done = True
        self._ready.clear()
        if self._response is not None:
            self._response.close()

    def _start(self) -> Iterator[str]:
        if self._chunks is None:
            self._response = self._open()
            self._chunks = self._response.iter_text()
        return self._chunks


class AsyncEventStream:
    """The server's events as they happen (`AsyncClient.events()`): ``async for`` over it,
    in an ``async with`` (which closes the connection). As :class:`EventStream`."""

    def __init__(
        self, url: str, open: Callable[[], Awaitable[httpx.Response]], last_event_id: str | None
    ) -> None:
        self.url = url
        self._open = open
        self._decoder = EventDecoder(last_event_id)
        self._ready: deque[StreamEvent | Ended] = deque()
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[str] | None = None
        self._done = False

    @property
    def last_event_id(self) -> str | None:
        """The id of the last task event yielded (or the one resumed after)."""
        return self._decoder.last_event_id

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
            chunks = await self._start()
            try:
                chunk = await anext(chunks, None)
                if chunk is None:
                    raise broke_off(self.url, self.last_event_id)
                self._ready.extend(self._decoder.feed(chunk))
            except httpx.TransportError:
                await self.aclose()
                raise broke_off(self.url, self.last_event_id) from None
            except Exception:  # a cancellation leaves the closing to the `async with`
                await self.aclose()
                raise
        value = self._ready.popleft()
        if isinstance(value, Ended):
            await self.aclose()
            raise StopAsyncIteration
        return value

    async def aclose(self) -> None:
        """Close the connection; the iteration stops."""
        self._done = True
        self._ready.clear()
        if self._response is not None:
            await self._response.aclose()
        if self._chunks is not None:  # run httpx's generators to their end on the closed
            chunks, self._chunks = self._chunks, None  # stream (trio warns of unfinished ones)
            with contextlib.suppress(Exception):
                async for _ in chunks:
                    pass

    async def _start(self) -> AsyncIterator[str]:
        if self._chunks is None:
            self._response = await self._open()
            self._chunks = self._response.aiter_text()
        return self._chunks
