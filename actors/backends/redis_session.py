"""The Redis store's connection: opened again after a failure, reads resent, scripts sent once.

One connection (redis_wire.py), used by the store actor alone, one command at a time. A
command interrupted (cancelled at the store's deadline, failed) breaks its connection, and the
next call opens another, loading the scripts (redis_lua.py) into it. Commands that change
nothing are sent again, once, on a new connection if theirs had failed; a script that changes
things is never sent twice for one call: a commit retried after an unknown outcome could apply
twice (the store's outage handling reloads instead).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from typing import Any

import trio

from .redis_lua import PRELUDE, SCRIPTS, wrapped
from .redis_wire import Address, Connection, RedisError

logger = logging.getLogger(__name__)

PROBE_BYTES = 64 * 1024  # what the health probe writes: memory a full Redis has no room for
BODIES = {name: PRELUDE + wrapped(body) for name, body in SCRIPTS.items()}
SHA = {name: hashlib.sha1(body.encode()).hexdigest() for name, body in BODIES.items()}


class Session:
    """Commands and scripts on the keys of one prefix (``keys``: ``{prefix}:``), over a
    connection named ``name`` (CLIENT LIST shows it)."""

    def __init__(self, address: Address, keys: str) -> None:
        self.address = address
        self.keys = keys
        self.name = ""
        self._connection: Connection | None = None
        self._open = False

    def open(self, name: str) -> None:
        """Allow calls; the connection opens at the first."""
        self.name = name
        self._open = True

    async def close(self) -> None:
        self._open = False
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.aclose()

    async def _connect(self) -> Connection:
        """The connection, opened again if the last one broke."""
        if not self._open:
            raise RuntimeError("the Redis backend is not open")
        connection = self._connection
        if connection is None or connection.broken:
            self._connection = None
            if connection is not None:
                await connection.aclose()
            connection = await Connection.open(self.address, self.name)
            try:
                await self._load_scripts(connection)
            except BaseException:  # a Redis still loading its data: close it, then fail
                with trio.CancelScope(shield=True):
                    await connection.aclose()
                raise
            self._connection = connection
        return connection

    async def _load_scripts(self, connection: Connection) -> None:
        loads = [["SCRIPT", "LOAD", body] for body in BODIES.values()]
        for reply in await connection.pipeline(loads):
            if isinstance(reply, RedisError):
                raise reply

    async def read(self, commands: Sequence[Sequence[object]]) -> list[Any]:
        """Replies to commands that change nothing: sent again, once, on a new connection if
        the one they went out on had failed (Redis restarted, an idle connection was closed)."""
        connection = await self._connect()
        try:
            return await connection.pipeline(commands)
        except RedisError as error:
            if not connection.broken:  # an error reply, not a failed connection
                raise
            logger.info("redis.reconnect", extra={"error": repr(error)})
        return await (await self._connect()).pipeline(commands)

    async def call(self, *args: object) -> Any:
        """One command that changes nothing (or may safely run twice); raises its error."""
        [reply] = await self.read([args])
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def script(self, name: str, *args: object, read: bool = False) -> Any:
        """Run a script; one that changes things is sent at most once (``read``: it changes
        nothing, so it may be sent again on a new connection)."""
        command = ("EVALSHA", SHA[name], 1, self.keys, *args)
        [reply] = await self.read([command]) if read else await self._write(command)
        if isinstance(reply, RedisError) and str(reply).startswith("NOSCRIPT"):
            await self._load_scripts(await self._connect())  # it did not run: send it again
            [reply] = await (await self._connect()).pipeline([command])
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def probe(self, node: str) -> None:
        """Write something real: SET a 64 KiB key the probe owns (expiring in a minute anyway),
        then DEL it. A script that writes nothing runs on a Redis out of memory, unable to
        persist (MISCONF) or a read-only replica; this is refused there."""
        key = f"{self.keys}probe:{node}"
        written = ("SET", key, secrets.token_bytes(PROBE_BYTES), "PX", 60_000)
        for reply in await (await self._connect()).pipeline([written, ("DEL", key)]):
            if isinstance(reply, RedisError):
                raise reply

    async def _write(self, command: Sequence[object]) -> list[Any]:
        return await (await self._connect()).pipeline([command])
