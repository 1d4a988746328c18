"""Early answers that leave a kept-alive connection in a state both ends agree on.

An answer may start before the request's body has all arrived: a refusal (401, 429), a 405 or
404 from Quart's routing, a 413 for a declared size, a 408. HTTP/1.1 can only reuse that
connection once the rest of the body has been read, and Hypercorn then closes it instead. Two
things go wrong unless the app helps (issue 17 items 1 and 6):

- the answer does not say `Connection: close`, so a keep-alive client (httpx) sends its next
  request on a connection that is going away and fails with a protocol error;
- on the Quart path, Hypercorn closes the socket from inside the app's task, right after it
  tells the app the client is gone; Quart-Trio cancels the app's nursery on that news, which
  cancels the close half-way. The connection then stays open, answers nothing more (h11
  waits for a body it will never deliver) and holds its file descriptor until the client
  hangs up: a few idle sockets per attacker hold the server's descriptors.

So the gateway tracks whether the body is complete (`BodyProgress`), takes what of it already
arrived before an early answer (`drain_ready`), says `Connection: close` when it still is not
complete (`close_if_unread`), and sends the end of every answer Quart gives shielded from
cancellation (`send_shielded`), so Hypercorn's close of the socket always finishes. The
gateway's direct routes need no shield: nothing cancels a submit route, and the event stream
shields its own last write from the cancel scope it opens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import attrs
import trio

from .reply import ASGIReceive, ASGISend, Message

CLOSE = (b"connection", b"close")


@attrs.define(slots=True)
class BodyProgress:
    """Whether the request's body has all arrived (an empty body has, from the start)."""

    complete: bool

    @classmethod
    def expecting(cls, content_length: int | None, chunked: bool) -> BodyProgress:
        """A request that declares no body, or an empty one, is complete at once."""
        return cls(complete=not chunked and not content_length)

    def note(self, message: Message) -> None:
        """Take note of one ASGI message the app received."""
        if message["type"] == "http.request" and not message.get("more_body", False):
            self.complete = True

    def tracking(self, receive: ASGIReceive) -> ASGIReceive:
        """`receive`, noting each message it returns."""

        async def receive_noted() -> Message:
            message = await receive()
            self.note(message)
            return message

        return receive_noted

    def drain_ready(self, receive: ASGIReceive) -> None:
        """Take, without waiting, the body messages already there; for an answer given
        without reading the body (nothing else reads them afterwards)."""
        ready = receive_nowait(receive)
        if ready is None:
            return
        with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            while not self.complete:
                message = ready()
                if message["type"] == "http.disconnect":
                    return
                self.note(message)

    def close_if_unread(self, start: Message) -> Message:
        """The `http.response.start` message, saying `Connection: close` if the body is not
        complete (the server will not reuse the connection), and always for a 413: an
        oversized body is never read to its end on purpose, and both paths to a route (the
        gateway's and Quart's, which read different amounts of it) must answer alike."""
        if self.complete and start["status"] != 413:
            return start
        return {**start, "headers": [*start["headers"], CLOSE]}


async def send_shielded(send: ASGISend, message: Message) -> None:
    """Send `message`; the last one of an answer is shielded from cancellation.

    Hypercorn ends or closes the connection inside that call; a cancellation arriving
    meanwhile (Quart-Trio cancels the request's nursery once it hears the client is gone)
    would leave the socket open and unanswered. Hypercorn already shields its socket writes,
    so the shield holds nothing up that was not held up before.
    """
    if message["type"] == "http.response.body" and not message.get("more_body", False):
        with trio.CancelScope(shield=True):
            await send(message)
    else:
        await send(message)


def receive_nowait(receive: ASGIReceive) -> Callable[[], Message] | None:
    """What takes a message already waiting without a yield (`trio.WouldBlock` if none), for a
    `receive` that is a trio memory channel's, as Hypercorn's trio worker hands out; else None.
    """
    channel = getattr(receive, "__self__", None)
    if isinstance(channel, trio.MemoryReceiveChannel):
        return channel.receive_nowait
    return None
