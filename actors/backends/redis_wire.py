"""Talking to Redis on trio's own streams: commands out in RESP, replies parsed by hiredis.

The Redis backend needs a handful of commands (EVALSHA, a few reads, SUBSCRIBE), one caller at
a time per connection. Doing them in the event loop costs a round trip on loopback (~0.1-0.2 ms
here); a sync client in a worker thread costs a thread hop and, while the trio thread is busy,
a wait for the GIL (~2.5 ms a call measured under load). hiredis (C) parses the replies.

A connection interrupted mid-command (cancelled, timed out, failed) is closed: what is left
in its stream is unknown. The caller opens a new one.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs
import trio

if TYPE_CHECKING:  # the redis extra (hiredis): imported when a connection opens
    import hiredis

CONNECT_TIMEOUT = 5.0


class RedisError(Exception):
    """Redis answered with an error (``-ERR ...``), or the connection failed."""


@attrs.frozen
class Address:
    """Where a Redis database is and how to log in: parsed from a store URL."""

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)
    tls: bool = False


def parse_url(url: str) -> tuple[Address, str]:
    """``redis[s]://[[user]:password@]host[:port][/db][?prefix=name]``: the address and the
    key prefix (default oncue). Raises ValueError for anything else."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - {"prefix"}
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"not a redis:// URL with a host: {url!r}")
    if unknown:
        raise ValueError(f"unknown redis store option(s) {sorted(unknown)} in {url!r}")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the path of a redis URL is a database number, got {path!r}")
    address = Address(
        host=parts.hostname,
        port=parts.port or 6379,
        db=int(path or 0),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=parts.scheme == "rediss",
    )
    return address, options.get("prefix", "oncue")


def pack(args: Sequence[object]) -> bytes:
    """One command in RESP: an array of bulk strings. hiredis packs it (C: a 1,000-task commit
    has ~36,000 arguments); an argument it does not take (a bool, say) is sent as ``str``."""
    import hiredis

    try:
        packed: bytes = hiredis.pack_command(tuple(args))  # type: ignore[arg-type]
        return packed
    except TypeError:
        return _pack(args)


def _pack(args: Sequence[object]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Connection:
    """One connection; ``call`` and ``pipeline`` send and wait for the replies."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        import hiredis

        self._stream = stream
        self._reader: hiredis.Reader = hiredis.Reader(encoding="utf-8")
        self.broken = False
        self.subscribed = False  # the listener's: its subscription was confirmed

    @classmethod
    async def open(cls, address: Address, name: str | None = None) -> Connection:
        """Connect, log in, select the database; RedisError (or OSError) if that fails."""
        with trio.fail_after(CONNECT_TIMEOUT):
            stream: trio.abc.Stream = await trio.open_tcp_stream(address.host, address.port)
            if address.tls:
                context = ssl.create_default_context()
                stream = trio.SSLStream(stream, context, server_hostname=address.host)
            connection = cls(stream)
            setup: list[list[object]] = []
            if address.username is not None and address.password is not None:
                setup.append(["AUTH", address.username, address.password])
            elif address.password is not None:
                setup.append(["AUTH", address.password])
            if address.db:
                setup.append(["SELECT", address.db])
            if name is not None:
                setup.append(["CLIENT", "SETNAME", name])
            ready = False
            try:
                errors = [r for r in await connection.pipeline(setup) if isinstance(r, Exception)]
                if errors:
                    raise errors[0]
                ready = True
            finally:
                if not ready:
                    await connection.aclose()
        return connection

    async def call(self, *args: object) -> Any:
        """One command's reply; raises RedisError for an error reply."""
        [reply] = await self.pipeline([args])
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def pipeline(self, commands: Sequence[Sequence[object]]) -> list[Any]:
        """Send every command, then read one reply each (error replies as RedisError values)."""
        if self.broken:
            raise RedisError("the connection to Redis is closed")
        self.broken = True  # until the replies are all in: a cancel now leaves it unusable
        try:
            await self._stream.send_all(b"".join(pack(command) for command in commands))
            replies = [await self.receive() for _ in commands]
        except (OSError, trio.BrokenResourceError) as error:
            raise RedisError(f"the connection to Redis failed: {error!r}") from error
        self.broken = False
        return replies

    async def receive(self) -> Any:
        """The next reply (a push message in subscribe mode); RedisError at end of stream."""
        import hiredis

        while True:
            reply = self._reader.gets()
            if reply is not False:
                return RedisError(str(reply)) if isinstance(reply, hiredis.ReplyError) else reply
            data = await self._stream.receive_some(65536)
            if not data:
                raise RedisError("Redis closed the connection")
            self._reader.feed(bytes(data))

    async def send(self, *args: object) -> None:
        """Send a command without waiting for its reply (subscribe mode)."""
        await self._stream.send_all(pack(args))

    async def aclose(self) -> None:
        self.broken = True
        await trio.aclose_forcefully(self._stream)
