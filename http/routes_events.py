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
from .hub import Delivery, EventHub, Listener
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
DRAIN = 256  # deliveries one write takes at most


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
    """One client's stream: one task takes the hub's deliveries and writes them (all those
    waiting in one write), a heartbeat when idle; admins' supervision events join the same
    queue. Each delivery's frames come encoded and joined by the hub."""

    service: Service
    settings: StreamSettings
    hub: EventHub
    wanted: EventFilter
    send: ASGISend
    ending: bytes | None = None  # the final frame, once the stream must end
    _waiting: trio.CancelScope | None = None  # the writer's wait for the next delivery

    def end(self, kind: str, reason: str) -> None:
        """End the stream after the frames already queued, with this final event."""
        if self.ending is None:
            self.ending = frame(kind, {"reason": reason})
        if self._waiting is not None:
            self._waiting.cancel()  # never a write under way: only the wait

    async def run(self, after: str | None) -> None:
        """Subscribe, answer 200, replay what came after `after`, then stream until the end.

        Raises ClientGone when a write times out (nothing more can be said to that client).
        """
        engine = self.service.engine
        listener = await self.hub.join(self.wanted, self.settings.capacity)
        try:
            async with _supervision(engine, self.settings.capacity, self.wanted) as actors:
                await self.send({"type": "http.response.start", "status": 200, "headers": HEADERS})
                await self._write(GREETING)
                replay = await start_replay(engine, self.wanted, after)
                async with trio.open_nursery() as nursery:
                    if actors is not None:
                        nursery.start_soon(self._pump_actors, actors, listener)
                    await self._stream(listener, replay)
                    nursery.cancel_scope.cancel()
        finally:
            self.hub.leave(listener)
        await self._write(self.ending or b"", more=False)

    async def _stream(self, listener: Listener, replay: Replay) -> None:
        """The replay, then the deliveries as they come, until the stream must end; then
        what is queued already."""
        if replay.frames:
            await self._write(b"".join(replay.frames))
        receive = listener.receive
        while self.ending is None:
            with trio.CancelScope(deadline=trio.current_time() + self.settings.heartbeat) as wait:
                self._waiting = wait
                try:
                    items = [await receive.receive()]
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
                finally:
                    self._waiting = None
            if wait.cancelled_caught:
                if self.ending is None:
                    await self._write(HEARTBEAT)
                continue
            await self._write_items(items, listener, replay)
        await self._write_items([], listener, replay)

    async def _write_items(
        self, items: list[Delivery | str], listener: Listener, replay: Replay
    ) -> None:
        """Write these deliveries and those waiting behind them, in one write."""
        while len(items) < DRAIN:
            try:
                items.append(listener.receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        chunks = []
        for item in items:
            if isinstance(item, str):  # the hub dropped this stream, or stopped
                self.end("end" if item.startswith("the engine stopped") else "dropped", item)
                break
            events = item.events
            if events is None:
                chunks.append(item.data)
                continue
            listener.taken(len(events))
            if replay.after is not None and any(replay.covers(event) for event in events):
                fresh = [task_frame(event) for event in events if not replay.covers(event)]
                chunks.append(b"".join(fresh))
            else:
                chunks.append(item.data)
        body = b"".join(chunks)
        if body:
            await self._write(body)

    async def _pump_actors(self, stream: FeedStream[LifecycleEvent], listener: Listener) -> None:
        try:
            async for event in stream:
                if event.kind in SUPERVISION:
                    listener.push(Delivery(None, actor_frame(event)))
        except EventsDropped as dropped:
            self.end("dropped", f"{dropped.reason}; reconnect with Last-Event-ID")

    async def _write(self, body: bytes, more: bool = True) -> None:
        # The last write is shielded from the stream's own cancellation (its client left, the
        # server drains): Hypercorn ends or closes the connection inside it (keepalive.py).
        with trio.CancelScope(shield=not more), trio.move_on_after(self.settings.write_timeout):
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
