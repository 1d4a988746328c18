"""Reading `GET /api/v1/events` in tests: parse SSE frames off a Quart test connection.

Imported by test modules as `from sse_client import ...` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from quart.testing.connections import HTTPDisconnectError
from quart.typing import TestClientProtocol


@attrs.frozen
class Frame:
    kind: str  # the `event:` field; "comment" for a `:` line
    data: Any = None
    id: str | None = None


@attrs.define
class Stream:
    """Frames as they arrive on one open event stream."""

    connection: Any
    buffer: bytes = b""
    ended: bool = False

    async def next(self) -> Frame:
        """The next frame (a comment counts as one); raises EOFError at the end."""
        while b"\n\n" not in self.buffer:
            if self.ended:
                raise EOFError("the stream ended")
            try:
                chunk = await self.connection.receive()
            except (HTTPDisconnectError, trio.EndOfChannel):
                chunk = b""
            if not chunk:
                self.ended = True
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\n\n")
        return parse(raw.decode())

    async def until(self, event: str, **data: Any) -> Frame:
        """Skip frames until an `event` one whose data holds `data`."""
        while True:
            frame = await self.next()
            if frame.kind == event and all(frame.data.get(k) == v for k, v in data.items()):
                return frame

    async def rest(self) -> list[Frame]:
        """Every frame until the stream ends."""
        frames = []
        while True:
            try:
                frames.append(await self.next())
            except EOFError:
                return frames


def parse(raw: str) -> Frame:
    kind, data, event_id = "message", None, None
    for line in raw.split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            kind = "comment"
        elif name == "event":
            kind = value
        elif name == "data":
            data = json.loads(value)
        elif name == "id":
            event_id = value
    return Frame(kind, data, event_id)


@asynccontextmanager
async def open_stream(
    client: TestClientProtocol, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    """An open `GET /api/v1/events?{query}`, past its greeting; disconnects on exit."""
    path = "/api/v1/events" + (f"?{query}" if query else "")
    async with client.request(path, headers=headers) as connection:
        await connection.send_complete()
        stream = Stream(connection)
        greeting = await stream.next()
        assert greeting.kind == "comment", greeting
        try:
            yield stream
        finally:
            if not stream.ended:
                await connection.disconnect()
                # The route sends nothing after a disconnect (Hypercorn refuses it), so end
                # the test connection's side as a server would have.
                connection._client_send.close()
