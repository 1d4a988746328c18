"""The submit routes answered on ASGI directly, without Quart's request machinery.

A minimal Quart-Trio POST route costs ~40% of what bare Hypercorn serves on this machine (two
tasks and a nursery per request, the request and app contexts, werkzeug's routing and
response objects); a submit is small enough that this is most of its cost. So the gateway
answers `POST /api/v1/tasks` and `POST /api/v1/tasks/batch` itself with `DirectRoute`: it reads
the body the way Quart would (same size limit, same timeout, same errors) and calls the very
function the Quart view calls (routes_tasks.py's `accept_task` / `accept_batch`), so the
answer is the same bytes. The Quart views stay registered: the OpenAPI spec lists them, and the
equivalence tests compare the two paths.
"""

from __future__ import annotations

import contextlib
import math

import attrs
import trio
from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

from .errors import reply_for
from .gate import Direct, Exchange
from .keepalive import receive_nowait
from .reply import ASGIReceive, ASGISend, Message
from .routes_tasks import TASKS, Accept, Render, direct_routes
from .service import Service
from .tenancy import owner_of


class Disconnected(Exception):
    """The client went away before its request body was complete: nothing to answer."""


@attrs.frozen
class DirectRoute:
    """One submit route, answered by `accept` with the body read from ASGI."""

    accept: Accept
    render: Render
    service: Service
    max_body_size: int
    body_timeout: float | None

    async def __call__(self, exchange: Exchange, receive: ASGIReceive, send: ASGISend) -> None:
        try:
            data = await self._read_body(exchange.content_length, receive)
            exchange.body.complete = True
            owner = owner_of(exchange.principal)
            reply = await self.accept(self.service, owner, data, self.render)
        except Disconnected:
            return  # as Quart does: a request whose client left gets no answer, and no log line
        except Exception as error:  # this route's error boundary, like Quart's error handler
            reply = reply_for(error, exchange.path)
            exchange.body.drain_ready(receive)  # a 413 read none of it; say whether we close
        await reply.send(send)

    async def _read_body(self, expected: int | None, receive: ASGIReceive) -> bytes:
        """The whole body, bounded as Quart bounds it (MAX_CONTENT_LENGTH, BODY_TIMEOUT).

        Raises werkzeug's RequestEntityTooLarge (413) and RequestTimeout (408), as Quart does,
        or Disconnected.
        """
        if expected is not None and expected > self.max_body_size:
            raise RequestEntityTooLarge()  # before reading any of it, as Quart does
        body = _Body(self.max_body_size)
        ready = receive_nowait(receive)
        if ready is not None:
            with contextlib.suppress(trio.WouldBlock):  # the rest is still on its way
                while not body.add(ready()):
                    pass
                return body.data()
        timeout = math.inf if self.body_timeout is None else self.body_timeout
        with trio.move_on_after(timeout):
            while not body.add(await receive()):
                pass
            return body.data()
        raise RequestTimeout()


@attrs.define
class _Body:
    """A request body as its messages arrive, at most `limit` bytes."""

    limit: int
    chunks: list[bytes] = attrs.field(factory=list)
    size: int = 0

    def add(self, message: Message) -> bool:
        """Take one ASGI message; True once the body is complete. Raises
        RequestEntityTooLarge past the limit, Disconnected if the client left."""
        if message["type"] == "http.disconnect":
            raise Disconnected()
        chunk = message.get("body", b"")
        self.size += len(chunk)
        if self.size > self.limit:
            raise RequestEntityTooLarge()
        self.chunks.append(chunk)
        return not message.get("more_body", False)

    def data(self) -> bytes:
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)


def submit_routes(
    service: Service, max_body_size: int, body_timeout: float | None
) -> dict[tuple[str, str], tuple[str, Direct]]:
    """The gateway's direct routes: (method, path) -> (URL rule, route)."""
    return {
        (method, rule): (rule, DirectRoute(accept, render, service, max_body_size, body_timeout))
        for method, rule, accept, render in direct_routes(TASKS)
    }
