"""The relay: task events across the nodes of a shared store (PostgreSQL, Redis).

Each node's store publishes only the transitions it makes itself (its own workers' runs, the
cancels and retries asked of it). The relay, a child of the engine's tree on shared stores,
subscribes to them like any events() reader and publishes them in batches on the backend's
event channel (NOTIFY, PUBLISH); it also listens there and hands the other nodes' events to
`engine.remote_events()`. Best effort, as the channels are: a node that is not listening
misses what was said meanwhile (a resumed event stream reads the history instead), and a relay
that falls behind its store is dropped like any subscriber and subscribes again. A batch
nobody else listens to (the backend's ``others_listening``: Redis can tell) is not published.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio

from ..backends import SharedBackend
from ..errors import StoreUnavailable
from ..messages import Subscribe, SubscriptionEnded
from ..runtime.actor import Actor, Context
from ..runtime.mailbox import ActorRef
from ..task import TaskEvent, TaskState
from .watch import Feed

logger = logging.getLogger(__name__)

CAPACITY = 10_000  # events the relay may fall behind its store before it is dropped
BATCH = 500  # events gathered into one publish
RETRY_CAP = 2.0  # seconds between subscribes while the store's backend is down
PAYLOAD_BYTES = 7000  # PostgreSQL's NOTIFY takes 8,000 bytes at most


class Relay(Actor):
    def __init__(self, backend: SharedBackend, store: ActorRef, feed: Feed, node: str) -> None:
        self._backend = backend
        self._store = store
        self._feed = feed
        self._node = node
        self._ours = f"[{json.dumps(node)},"  # how payloads() begins ours: not parsed again

    async def run(self, context: Context) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._backend.listen_events, self._deliver)
            nursery.start_soon(self._publish)
            context.started()
            async for _ in context.mailbox:
                pass  # nobody writes to us; the mailbox ends when we are stopped
            nursery.cancel_scope.cancel()

    def _deliver(self, payload: str) -> None:
        """Another node's events: to whoever follows them here."""
        if payload.startswith(self._ours):
            return  # ours: our own subscribers had them from the store
        try:
            origin, *events = json.loads(payload)
            if origin == self._node:
                return
            for event in events:
                self._feed.publish(decode(event))
        except (ValueError, TypeError) as error:  # not ours to understand: say so, go on
            logger.warning("relay.bad_payload", extra={"error": repr(error)})

    async def _publish(self) -> None:
        while True:
            receive = await self._subscribe()
            async with receive:
                await self._publish_from(receive)
            # other nodes missed events
            logger.warning("relay.dropped", extra={"capacity": CAPACITY})

    async def _subscribe(self) -> trio.MemoryReceiveChannel[Any]:
        """Subscribe to the store's events, waiting out an outage of its backend (the store
        answers StoreUnavailable meanwhile: crashing on it would make the tree give up)."""
        delay = 0.05
        while True:
            try:
                receive: trio.MemoryReceiveChannel[Any] = await self._store.ask(Subscribe(CAPACITY))
                return receive
            except StoreUnavailable as error:
                logger.warning(
                    "relay.store_unavailable", extra={"error": repr(error), "retry_in": delay}
                )
            await trio.sleep(delay)
            delay = min(delay * 2, RETRY_CAP)

    async def _publish_from(self, receive: trio.MemoryReceiveChannel[Any]) -> None:
        """Publish batches until the subscription ends (dropped, or the store stopped)."""
        while True:
            try:
                items = [await receive.receive()]  # the store's event lists, one a commit
            except trio.EndOfChannel:
                await trio.sleep_forever()  # the store is stopping: so are we, soon
            events = [] if isinstance(items[0], SubscriptionEnded) else list(items[0])
            while len(events) < BATCH and not isinstance(items[-1], SubscriptionEnded):
                try:
                    items.append(receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                if not isinstance(items[-1], SubscriptionEnded):
                    events += items[-1]
            if events and await self._backend.others_listening():  # else nobody would hear
                await self._backend.publish_events(payloads(self._node, events))
            if isinstance(items[-1], SubscriptionEnded):  # dropped: subscribe again
                return


def payloads(node: str, events: list[TaskEvent]) -> list[str]:
    """The events as JSON payloads of at most PAYLOAD_BYTES (one event bigger than that goes
    alone): `[node, event, event, ...]`, in order. A run of events is encoded in one call and
    split only when it is too big, not encoded one event at a time to be measured."""
    chunks: list[str] = []
    _chunk(json.dumps(node), [encode(event) for event in events], chunks)
    return chunks


def _chunk(head: str, items: list[list[Any]], chunks: list[str]) -> None:
    if not items:
        return
    payload = f"[{head},{json.dumps(items)[1:]}"
    if len(payload) <= PAYLOAD_BYTES or len(items) == 1:
        chunks.append(payload)
        return
    step = max(1, min(len(items) // 2, len(items) * PAYLOAD_BYTES * 9 // (10 * len(payload))))
    for first in range(0, len(items), step):
        _chunk(head, items[first : first + step], chunks)


def encode(event: TaskEvent) -> list[Any]:
    return [
        event.task_id,
        event.type,
        event.state.value,
        event.at,
        event.attempts,
        event.worker,
        event.number,
        event.owner,
        event.error,
    ]


def decode(item: list[Any]) -> TaskEvent:
    task_id, type_, state, at, attempts, worker, number, owner, error = item
    return TaskEvent(task_id, type_, TaskState(state), at, attempts, worker, number, owner, error)
