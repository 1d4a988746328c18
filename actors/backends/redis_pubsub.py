"""What Redis nodes tell each other over pub/sub, each listener on a connection of its own.

Two channels per prefix: ``{prefix}:notices`` carries the notices the scripts publish to wake
idle nodes (JSON ``[kind, origin node, ids...]``), ``{prefix}:events`` the task events the
relay spreads (relay.py encodes them). A listener reconnects after an error with a doubling
backoff; the notices' listener pings after a silence, so a dead peer is found.

A node's events listener also subscribes to ``{prefix}:events:<node>``, on which nothing is
published, in the same SUBSCRIBE: ``PUBSUB NUMSUB`` of both then tells at one instant how many
listen to the events besides this node, and the relay publishes nothing while nobody does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

import trio

from .base import Notice
from .redis_wire import Address, Connection, RedisError

logger = logging.getLogger(__name__)

SILENCE = 5.0  # seconds without a message before the listener pings; as long again: reconnect
RETRY = (0.05, 5.0)  # seconds between reconnects of a listener, doubling
FAILURES = (OSError, RedisError, trio.TooSlowError, trio.BrokenResourceError)


async def listen(
    address: Address, channel: str, name: str, node: str, deliver: Callable[[Notice], None]
) -> None:
    """Subscribe to the notices on ``channel`` over a connection of its own (named ``name``),
    handing ``deliver`` those of nodes other than ``node``; after an error, reconnect with
    backoff (started over once subscribed)."""
    delay = RETRY[0]
    while True:
        try:
            connection = await Connection.open(address, name)
        except (OSError, RedisError, trio.TooSlowError) as error:
            logger.warning("redis.listen_failed", extra={"error": repr(error), "retry_in": delay})
        else:
            try:
                await _subscribe(connection, channel, node, deliver)
            except (OSError, RedisError, trio.BrokenResourceError) as error:
                logger.warning("redis.listen_lost", extra={"error": repr(error), "retry_in": delay})
                delay = RETRY[0] if connection.subscribed else delay
            finally:
                await connection.aclose()
        await trio.sleep(delay)
        delay = min(delay * 2, RETRY[1])


async def _subscribe(
    connection: Connection, channel: str, node: str, deliver: Callable[[Notice], None]
) -> None:
    """Read notices until the connection fails; a ping after SILENCE finds a dead peer."""
    await connection.send("SUBSCRIBE", channel)
    pinged = False
    while True:
        with trio.move_on_after(SILENCE) as quiet:
            reply = await connection.receive()
        if quiet.cancelled_caught:
            if pinged:
                raise RedisError(f"no answer from Redis for {2 * SILENCE:.0f} s")
            await connection.send("PING")
            pinged = True
            continue
        pinged = False
        if isinstance(reply, RedisError):
            raise reply
        if reply[0] == "subscribe":
            connection.subscribed = True
            deliver(Notice("listening"))
        elif reply[0] == "message":
            kind, origin, *ids = json.loads(reply[2])
            if origin != node:  # what this node did, it knows
                deliver(Notice(kind, tuple(ids)))


class Publisher:
    """Publishes task events over a connection of its own (the store's is the store's alone),
    opened at the first publish and again after a failure."""

    def __init__(self, address: Address, keys: str) -> None:
        self.address = address
        self.channel = f"{keys}events"
        self._connection: Connection | None = None

    async def _connect(self, name: str) -> Connection:
        if self._connection is None or self._connection.broken:
            if self._connection is not None:
                await self._connection.aclose()
            self._connection = await Connection.open(self.address, name)
        return self._connection

    async def others_listening(self, name: str, own: str) -> bool:
        """Whether anyone but the listener of ``own`` (a channel only it subscribes to, in the
        same SUBSCRIBE as the events) listens to the events; True after an error (publish
        then tries, and logs)."""
        try:
            counts = await (await self._connect(name)).call("PUBSUB", "NUMSUB", self.channel, own)
        except FAILURES:
            return True
        return bool(int(counts[1]) - int(counts[3]) > 0)

    async def publish(self, payloads: Sequence[str], name: str) -> None:
        """Best effort: after an error it logs, drops these and reconnects next time."""
        try:
            connection = await self._connect(name)
            await connection.pipeline([["PUBLISH", self.channel, p] for p in payloads])
        except FAILURES as error:
            logger.warning(
                "redis.publish_failed",
                extra={"events_lost": len(payloads), "error": repr(error)},
            )
            if self._connection is not None:
                self._connection.broken = True

    async def aclose(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.aclose()


async def listen_events(
    address: Address,
    channels: tuple[str, str],
    name: str,
    deliver: Callable[[str], None],
    task_status: trio.TaskStatus[None],
) -> None:
    """Hand each payload published on the first of ``channels`` (the events; the second is
    this node's own, see above) to ``deliver``, for as long as it runs; reconnect with backoff
    after an error. Started once it first listens."""
    delay = RETRY[0]
    started: list[Callable[[], None]] = [lambda: task_status.started()]
    while True:
        try:
            connection = await Connection.open(address, name)
            try:
                await connection.send("SUBSCRIBE", *channels)  # both at one instant
                while True:
                    reply = await connection.receive()
                    if isinstance(reply, RedisError):
                        raise reply
                    if reply[0] == "message" and reply[1] == channels[0]:
                        deliver(reply[2])
                    elif reply[0] == "subscribe" and started:
                        started.pop()()
            finally:
                await connection.aclose()
        except FAILURES as error:
            logger.warning("redis.events_failed", extra={"error": repr(error), "retry_in": delay})
        await trio.sleep(delay)
        delay = min(delay * 2, RETRY[1])
