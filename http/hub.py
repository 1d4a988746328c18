"""The app's one subscription to the engine's task events, shared by every event stream, held
only while a stream is open (or the task log is on).

With one engine subscription per SSE client, the store would hand each event to every client's
channel and each client's task would wake once per event: 50 clients at 3,000 events/s fell
behind and were dropped (bench/sse.py). The hub subscribes once (this node's events and, on a
shared store, the other nodes'), takes them in batches, encodes each event's SSE frame once,
and hands each stream one `Delivery` per batch: the frames it wants, already joined (a stream
that wants every event gets the same bytes object as all the others: no per-client work but
the write). Under load it delivers at most once every `LINGER` seconds (what arrived meanwhile
goes in one batch), so a client costs one write per batch, not one per store commit; a quiet
engine's events go out at once.

A stream that falls more than its capacity behind is dropped (its writer then sends
`event: dropped`); the hub itself, if the engine drops it, tells every stream so and subscribes
again when one joins. The store never waits for any of them. The task log, when on, is fed
from the same batches of this node's events (`log`), and keeps the hub subscribed.

With no stream open and the log off, the hub holds no subscription, and the store builds no
events at all: following every transition cost the served batch route a fifth of its CPU
(the task metrics read the engine's tally at scrape time instead). The first stream to join
waits until the hub has subscribed; when the last one leaves, the hub lets go.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable

import attrs
import trio
import trio.lowlevel

from oncue.actors import ActorError, ActorStopped, Engine, EngineClosed, EventsDropped, TaskEvent
from oncue.actors.engine.subscription import EventStream
from oncue.actors.engine.watch import FeedStream
from oncue.actors.errors import OncueError

from .sse import EventFilter, task_frame

logger = logging.getLogger(__name__)

LOG_CHECK = 1.0  # seconds: how often an idle hub asks whether the task log wants events now
HUB_CAPACITY = 100_000  # events the hub may fall behind the engine before it is dropped
BATCH = 5000  # events taken at once
LINGER = 0.05  # seconds: under load, the hub delivers at most this often

Observe = Callable[[list[TaskEvent]], None]


@attrs.frozen
class Delivery:
    """What one stream gets of a batch: its events and their frames, joined (`events` None:
    a frame of another kind, such as a supervision event)."""

    events: list[TaskEvent] | None
    data: bytes


@attrs.define(eq=False)
class Listener:
    """One stream's share of the hub: deliveries of the events it wants, at most `capacity`
    events behind."""

    wanted: EventFilter
    capacity: int
    _send: trio.MemorySendChannel[Delivery | str]
    receive: trio.MemoryReceiveChannel[Delivery | str]
    pending: int = 0  # events handed over, not yet taken by the writer

    def offer(self, events: list[TaskEvent], frames: list[bytes], whole: bytes) -> bool:
        """Hand over what it wants of a batch (`frames`: each event's; `whole`: all of them,
        joined); False once it is dropped."""
        if self.wanted.everything:
            delivery = Delivery(events, whole)
        else:
            matches = self.wanted.matches
            picked = [index for index, event in enumerate(events) if matches(event)]
            if not picked:
                return True
            chosen = [events[index] for index in picked]
            delivery = Delivery(chosen, b"".join([frames[index] for index in picked]))
        count = len(delivery.events or ())
        if self.pending + count > self.capacity:
            self.end(f"fell {self.capacity} events behind")
            return False
        self.pending += count
        return self.push(delivery)

    def push(self, delivery: Delivery) -> bool:
        """Queue a delivery for the writer; False if its stream has ended."""
        try:
            self._send.send_nowait(delivery)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    def taken(self, count: int) -> None:
        self.pending -= count

    def end(self, reason: str) -> None:
        """The last item it gets: why it ends (then its channel closes)."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            self._send.send_nowait(reason)
        self._send.close()


Stream = EventStream | FeedStream[TaskEvent]


@attrs.define(eq=False)
class EventHub:
    engine: Engine
    log: Observe | None = None  # fed every batch of this node's events (the task log)
    log_wanted: Callable[[], bool] = lambda: True  # whether `log` wants events (each LOG_CHECK)
    _listeners: set[Listener] = attrs.field(factory=set)
    _streams: list[tuple[Stream, Observe | None]] = attrs.field(factory=list)
    _dropped: EventsDropped | None = None  # met by a flush: the pumps raise it
    _subscribed: trio.Event = attrs.field(factory=trio.Event)  # set while it follows
    _changed: trio.Event = attrs.field(factory=trio.Event)  # the first joined, the last left
    _stopped: bool = False  # the engine stopped: nothing more will come

    async def join(self, wanted: EventFilter, capacity: int) -> Listener:
        """A new listener: it gets every event published from now on that `wanted` matches
        (what the hub has not taken yet goes to the others first). The first one waits until
        the hub has subscribed to the engine."""
        send, receive = trio.open_memory_channel[Delivery | str](math.inf)
        listener = Listener(wanted, capacity, send, receive)
        if self._stopped:
            listener.end("the engine stopped")
            return listener
        if self._subscribed.is_set():
            self.flush()
            self._listeners.add(listener)
            return listener
        self._listeners.add(listener)
        self._changed.set()
        joined = False
        try:
            await self._subscribed.wait()  # (ended meanwhile if the engine stopped)
            joined = True
        finally:
            if not joined:  # cancelled while waiting
                self.leave(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        self._listeners.discard(listener)
        listener.receive.close()
        if not self._listeners:
            self._changed.set()

    def _wanted(self) -> bool:
        return bool(self._listeners) or (self.log is not None and self.log_wanted())

    def flush(self) -> None:
        """Hand out now what the engine has published and the hub not taken yet (a batch may
        be lingering): before a listener joins."""
        for stream, log in self._streams:
            try:
                while batch := stream.ready(BATCH):
                    self._handle(batch, log)
            except EventsDropped as dropped:
                self._dropped = dropped

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the engine while a listener (or the log) wants its events, until the engine
        stops. Started at once when nothing wants them yet, else once subscribed."""
        self._stopped = False  # (an app served again starts afresh)
        self._subscribed, self._changed = trio.Event(), trio.Event()
        try:
            while True:
                if not self._wanted():
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED
                    await self._until_changed()
                    continue
                await self._follow(task_status)
                task_status = trio.TASK_STATUS_IGNORED
                if self._stopped:
                    self._end_all("the engine stopped")
                    return
        finally:
            self._stopped = True
            self._end_all("the engine stopped")  # (no listener is left without an end)
            self._subscribed.set()  # one still waiting to join returns: ended

    async def _until_changed(self) -> None:
        """Until a stream joins or the last leaves (or, with a log, LOG_CHECK passes)."""
        with trio.move_on_after(LOG_CHECK if self.log is not None else math.inf):
            await self._changed.wait()
            self._changed = trio.Event()

    async def _follow(self, task_status: trio.TaskStatus[None]) -> None:
        """One subscription: hand out what comes until nothing wants it, the engine stops, or
        the engine drops the hub for falling behind (its streams are ended). A subscribe the
        store refuses (an outage) ends the streams waiting: they reconnect."""
        retry_after = 0.0
        try:
            await self._hand_out(task_status)
        except* EventsDropped:
            logger.warning("http.hub_dropped", extra={"capacity": HUB_CAPACITY})
            self._end_all(f"the server fell {HUB_CAPACITY} events behind")
        except* (OncueError, ActorError) as refused:  # the subscribe itself (an outage...)
            retry_after = self._refused(refused)
        finally:
            self._streams = []
            if not self._stopped and self._subscribed.is_set():
                self._subscribed = trio.Event()
        await trio.sleep(retry_after)

    async def _hand_out(self, task_status: trio.TaskStatus[None]) -> None:
        """Subscribe, and pump both streams to the listeners while they are wanted."""
        async with (
            self.engine.events(HUB_CAPACITY) as local,
            self.engine.remote_events(HUB_CAPACITY) as remote,
            trio.open_nursery() as nursery,
        ):
            self._dropped = None
            self._streams = [(local, self.log), (remote, None)]
            self._subscribed.set()
            task_status.started()
            nursery.start_soon(self._pump, remote, None, nursery.cancel_scope.cancel)
            nursery.start_soon(self._pump, local, self.log, nursery.cancel_scope.cancel)
            while self._wanted():
                await self._until_changed()
            self._subscribed = trio.Event()  # one joining from now on waits for the next
            nursery.cancel_scope.cancel()

    def _refused(self, refused: BaseExceptionGroup[OncueError | ActorError]) -> float:
        """The store refused the subscribe: the engine stopped, or ask again after a while
        (the streams waiting are ended and their joiners let go); the seconds to wait."""
        if refused.subgroup((EngineClosed, ActorStopped)) is not None:
            self._stopped = True  # the engine stopped while the hub was idle
            return 0.0
        error = refused.exceptions[0]
        logger.warning("http.hub_subscribe_failed", extra={"error": repr(error)})
        self._end_all(f"the store did not take the subscription ({error})")
        waited, self._subscribed = self._subscribed, trio.Event()
        waited.set()  # those waiting to join return, their streams ended
        return LOG_CHECK  # the task log would ask again at once

    async def _pump(self, stream: Stream, log: Observe | None, done: Callable[[], None]) -> None:
        """Take batches from `stream` and hand them out: at once when quiet, under load at
        most once every LINGER (what arrives meanwhile makes one batch, one write a client).

        All that arrived goes out each time, BATCH events at a time with a checkpoint between:
        taking one BATCH a LINGER would cap the hub at 100,000 events/s (33,000 tasks/s), and
        past that it fell behind until the engine dropped it.
        """
        delivered = -math.inf
        while True:
            await trio.sleep_until(delivered + LINGER)
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                if self._dropped is not None:  # a flush met the end of the subscription
                    raise self._dropped from None
                self._stopped = True  # the engine stopped
                break
            delivered = trio.current_time()
            batch = [first, *stream.ready(BATCH - 1)]
            while batch:
                self._handle(batch, log)
                if len(batch) < BATCH:
                    break
                await trio.lowlevel.checkpoint()  # others run between two full batches
                batch = stream.ready(BATCH)
        done()

    def _handle(self, batch: list[TaskEvent], log: Observe | None) -> None:
        if log is not None:
            log(batch)
        if not self._listeners:
            return
        frames = [task_frame(event) for event in batch]  # once for every listener
        whole = b"".join(frames)
        for listener in list(self._listeners):
            if not listener.offer(batch, frames, whole):
                self._listeners.discard(listener)

    def _end_all(self, reason: str) -> None:
        for listener in self._listeners:
            listener.end(f"{reason}; reconnect with Last-Event-ID")
        self._listeners.clear()
