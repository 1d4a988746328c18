"""An HTTP answer as plain data, sent the same way by the Quart routes and the ASGI gateway.

Routes and error handlers build a `Reply`; `Reply.response()` makes the Quart `Response` of it,
and `Reply.start()`/`Reply.send()` the ASGI messages Quart would send for that response (the
same headers in the same order), so an answer does not depend on which path produced it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import msgspec
from quart import Response
from werkzeug.datastructures import Headers as HeaderMap

JSON = "application/json"

# ASGI, as plainly as this package uses it.
Scope = dict[str, Any]
Message = dict[str, Any]
ASGIReceive = Callable[[], Awaitable[Message]]
ASGISend = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, ASGIReceive, ASGISend], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


def _unencodable(value: Any) -> Any:
    """What JSON cannot hold (a handler may return any object in memory) goes out as its
    repr, the way the SQLite store keeps it: never a 500."""
    return {"__repr__": repr(value)}


_encoder = msgspec.json.Encoder(enc_hook=_unencodable)


@attrs.frozen
class Reply:
    """Status, body and the headers besides Content-Type and Content-Length."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = JSON

    def response(self) -> Response:
        """The Quart response for this reply."""
        response = Response(self.body, status=self.status, headers=HeaderMap(list(self.headers)))
        if self.content_type is None:
            del response.headers["Content-Type"]
        else:
            response.content_type = self.content_type
        return response

    def start(self) -> Message:
        """The `http.response.start` message: the headers as Quart orders them (its own, then
        Content-Type, then Content-Length)."""
        headers: Headers = [(name.lower().encode(), value.encode()) for name, value in self.headers]
        if self.content_type is not None:
            headers.append((b"content-type", self.content_type.encode()))
        headers.append((b"content-length", b"%d" % len(self.body)))
        return {"type": "http.response.start", "status": self.status, "headers": headers}

    async def send(self, send: ASGISend) -> None:
        """Send this reply on ASGI (one body message: on the wire it is what Quart sends)."""
        await send(self.start())
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """A JSON reply encoded with msgspec (fast, and handles attrs and structs)."""
    return Reply(status, _encoder.encode(body), tuple((headers or {}).items()))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`json_reply(...)` as a Quart response."""
    return json_reply(body, status, headers).response()
