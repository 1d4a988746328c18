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

import attrs
import trio
from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

from .app import Service
from .errors import reply_for
from .gate import Direct, Exchange
from .reply import ASGIReceive, ASGISend
from .routes_tasks import TASKS, Accept, Render, direct_routes
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
            owner = owner_of(exchange.principal)
            reply = await self.accept(self.service, owner, data, self.render)
        except Disconnected:
            return  # as Quart does: a request whose client left gets no answer, and no log line
        except Exception as error:  # this route's error boundary, like Quart's error handler
            reply = reply_for(error, exchange.path)
        await reply.send(send)

    async def _read_body(self, expected: int | None, receive: ASGIReceive) -> bytes:
        """The whole body, bounded as Quart bounds it (MAX_CONTENT_LENGTH, BODY_TIMEOUT).

        Raises werkzeug's RequestEntityTooLarge (413) and RequestTimeout (408), as Quart does,
        or Disconnected.
        """
        if expected is not None and expected > self.max_body_size:
            raise RequestEntityTooLarge()  # before reading any of it, as Quart does
        chunks: list[bytes] = []
        size = 0
        with trio.move_on_after(float("inf") if self.body_timeout is None else self.body_timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Disconnected()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_size:
                    raise RequestEntityTooLarge()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        raise RequestTimeout()


def submit_routes(
    service: Service, max_body_size: int, body_timeout: float | None
) -> dict[tuple[str, str], tuple[str, Direct]]:
    """The gateway's direct routes: (method, path) -> (URL rule, route)."""
    return {
        (method, rule): (rule, DirectRoute(accept, render, service, max_body_size, body_timeout))
        for method, rule, accept, render in direct_routes(TASKS)
    }
