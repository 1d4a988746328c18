"""`GET /api/v1/events`: the engine's task transitions (and supervision events) as SSE.

Answered by the gateway directly on ASGI (like the submit routes, see direct.py), not through a
Quart streaming response, so that this route owns its writes: each one is bounded by
`write_timeout`, and a client that reads slower than the engine publishes is dropped by the
engine's bounded subscription (`capacity` events), never slowing the store. A dropped stream
ends with an explicit `event: dropped`; a stream the server ends says so with `event: end`.
Idle streams carry a heartbeat comment every `heartbeat` seconds so proxies keep them open.

The gateway applies auth first; tenancy is the filter's (sse.py). A `Last-Event-ID` header
resumes after that event (replay.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

import attrs
import trio
from quart import Blueprint, Response
from quart_schema import hide

from oncue.actors import Engine, EventsDropped
from oncue.actors.engine.watch import FeedStream
from oncue.actors.runtime.events import LifecycleEvent

from .errors import ApiError, reply_for
from .gate import Direct, Exchange
from .hub import EventHub, Listener
from .replay import Replay, start_replay
from .reply import ASGIReceive, ASGISend
from .service import Service
from .sse import (
    HEARTBEAT,
    SUPERVISION,
    EventFilter,
    actor_frame,
    frame,
    task_frame,
)

logger = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
]
GREETING = b"retry: 2000\n: connected\n\n"  # browsers reconnect after 2 s
FRAMES_BUFFER = 64  # frames between the event pumps and the writer (one write takes them all)


@attrs.frozen
class StreamSettings:
    """The bounds of every event stream."""

    heartbeat: float = 15.0  # seconds of silence before a keep-alive comment
    capacity: int = 1000  # events a client may fall behind before it is dropped
    write_timeout: float = 10.0  # seconds one write may wait for a client that stopped reading


class ClientGone(Exception):
    """A write did not complete within the write timeout: the client stopped reading."""


@attrs.frozen
class EventsRoute:
    """The gateway's direct route for `GET /api/v1/events`."""

    service: Service
    settings: StreamSettings
    hub: EventHub

    async def __call__(self, exchange: Exchange, receive: ASGIReceive, send: ASGISend) -> None:
        try:
            args = dict(parse_qsl(exchange.query.decode("latin-1"), keep_blank_values=True))
            wanted = EventFilter.parse(args, exchange.principal)
            after = exchange.last_event_id
        except Exception as error:  # the route's error boundary, as Quart's handler would be
            await reply_for(error, exchange.path).send(send)
            return
        stream = EventStreamWriter(self.service, self.settings, self.hub, wanted, send)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            nursery.start_soon(_end_on, self.service.draining, stream)
            gone = False
            try:
                await stream.run(after)
            except* ClientGone:
                gone = True
            nursery.cancel_scope.cancel()
        if gone:  # its connection is stuck: nothing more can be sent on it
            logger.info("http.events_client_gone", extra={"remote": exchange.remote})
        # A client that left (http.disconnect) is sent nothing more: the server closed it.


@attrs.define
class EventStreamWriter:
    """One client's stream: pumps put frames on a channel, a writer writes them out."""

    service: Service
    settings: StreamSettings
    hub: EventHub
    wanted: EventFilter
    send: ASGISend
    ending: bytes | None = None  # the final frame, once the stream must end
    _pumps: trio.CancelScope | None = None

    def end(self, kind: str, reason: str) -> None:
        """End the stream after the frames already queued, with this final event."""
        if self.ending is None:
            self.ending = frame(kind, {"reason": reason})
        if self._pumps is not None:
            self._pumps.cancel()

    async def run(self, after: str | None) -> None:
        """Subscribe, answer 200, replay what came after `after`, then stream until the end.

        Raises ClientGone when a write times out (nothing more can be said to that client).
        """
        engine = self.service.engine
        frames_send, frames = trio.open_memory_channel[bytes](FRAMES_BUFFER)
        listener = self.hub.join(self.wanted, self.settings.capacity)
        try:
            async with _supervision(engine, self.settings.capacity, self.wanted) as actors:
                await self.send({"type": "http.response.start", "status": 200, "headers": HEADERS})
                await self._write(GREETING)
                replay = await start_replay(engine, self.wanted, after)
                async with trio.open_nursery() as writer:
                    writer.start_soon(self._write_frames, frames)
                    async with frames_send, trio.open_nursery() as pumps:
                        self._pumps = pumps.cancel_scope
                        if self.ending is not None:
                            pumps.cancel_scope.cancel()
                        pumps.start_soon(self._pump_tasks, listener, replay, frames_send.clone())
                        if actors is not None:
                            pumps.start_soon(self._pump_actors, actors, frames_send.clone())
        finally:
            self.hub.leave(listener)
        await self._write(self.ending or b"", more=False)

    async def _pump_tasks(
        self, listener: Listener, replay: Replay, out: trio.MemorySendChannel[bytes]
    ) -> None:
        """The replay, then the events the hub hands over, a batch at a time."""
        async with out:
            for chunk in replay.frames:
                await out.send(chunk)
            async for item in listener.receive:
                if isinstance(item, str):  # the hub dropped this stream, or stopped
                    ended = "end" if item.startswith("the engine stopped") else "dropped"
                    self.end(ended, item)
                    return
                listener.taken(len(item))
                chunk = b"".join(task_frame(event) for event in item if not replay.covers(event))
                if chunk:
                    await out.send(chunk)

    async def _pump_actors(
        self, stream: FeedStream[LifecycleEvent], out: trio.MemorySendChannel[bytes]
    ) -> None:
        async with out:
            try:
                async for event in stream:
                    if event.kind in SUPERVISION:
                        await out.send(actor_frame(event))
            except EventsDropped as dropped:
                self.end("dropped", f"{dropped.reason}; reconnect with Last-Event-ID")

    async def _write_frames(self, frames: trio.MemoryReceiveChannel[bytes]) -> None:
        """Write frames as they come (all those waiting in one write), a heartbeat when idle,
        until every pump is done."""
        async with frames:
            while True:
                with trio.move_on_after(self.settings.heartbeat) as idle:
                    try:
                        chunks = [await frames.receive()]
                    except trio.EndOfChannel:
                        return
                if idle.cancelled_caught:
                    await self._write(HEARTBEAT)
                    continue
                while len(chunks) < FRAMES_BUFFER:
                    try:
                        chunks.append(frames.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._write(b"".join(chunks))

    async def _write(self, body: bytes, more: bool = True) -> None:
        with trio.move_on_after(self.settings.write_timeout):
            await self.send({"type": "http.response.body", "body": body, "more_body": more})
            return
        raise ClientGone()


@asynccontextmanager
async def _supervision(
    engine: Engine, capacity: int, wanted: EventFilter
) -> AsyncIterator[FeedStream[LifecycleEvent] | None]:
    """For admins, the supervision events (subscribed before anything is sent)."""
    if not wanted.admin:
        yield None
        return
    async with engine.supervision_events(capacity) as actors:
        yield actors


async def _cancel_on_disconnect(receive: ASGIReceive, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _end_on(event: trio.Event, stream: EventStreamWriter) -> None:
    await event.wait()
    stream.end("end", "the server is shutting down")


def events_routes(
    service: Service, settings: StreamSettings, hub: EventHub
) -> dict[tuple[str, str], tuple[str, Direct]]:
    """The gateway's direct route for the event stream: (method, path) -> (rule, route)."""
    return {("GET", EVENTS_PATH): (EVENTS_PATH, EventsRoute(service, settings, hub))}


events_doc = Blueprint("events", __name__)


@events_doc.get(EVENTS_PATH)
@hide  # documented by hand (openapi.py): its answer is text/event-stream
async def events() -> Response:
    """Never reached: the gateway answers this route (EventsRoute)."""
    raise ApiError(500, "internal", "the event stream is answered by the gateway")
