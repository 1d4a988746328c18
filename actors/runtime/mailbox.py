"""Mailboxes, envelopes and the references other code holds to send to an actor.

A mailbox belongs to a supervised child *slot*, not to one incarnation of the actor: when the
actor crashes and restarts, messages already queued wait for the next incarnation. Envelopes an
incarnation has taken but not answered are its *in-flight* asks; if it crashes they fail with
:class:`ActorCrashed`, if it stops with :class:`ActorStopped`.

Full-mailbox policy: :meth:`ActorRef.tell` and :meth:`ActorRef.ask` wait for room (that is the
backpressure); :meth:`ActorRef.try_tell` raises :class:`MailboxFull` at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import trio

from ..errors import ActorStopped, MailboxFull
from .deadlines import BOUND, AskTimedOut

_UNSET: Any = object()


@attrs.define(eq=False)
class _Reply:
    """Where one ask's answer lands: an event plus the value or the error."""

    done: trio.Event = attrs.field(factory=trio.Event)
    value: Any = _UNSET
    error: BaseException | None = None
    abandoned: bool = False  # the asker gave up (timeout or cancel): nobody reads an answer


@attrs.define(eq=False)
class Envelope:
    """A message in a mailbox, with the reply slot of the ask that sent it (None for a tell)."""

    message: Any
    _reply: _Reply | None
    _mailbox: Mailbox

    @property
    def is_ask(self) -> bool:
        return self._reply is not None

    @property
    def abandoned(self) -> bool:
        """True once the asker stopped waiting: an actor holding the envelope may drop it."""
        return self._reply is not None and self._reply.abandoned

    def drop(self) -> None:
        """Forget an abandoned ask without answering it."""
        self._mailbox._in_flight.discard(self)

    def reply(self, value: Any = None) -> None:
        """Answer the ask with ``value``; does nothing for a tell or an already-answered ask."""
        reply = self._reply
        if reply is None:
            return
        self._mailbox._in_flight.discard(self)  # also when its asker gave up: answered now
        if reply.done.is_set():
            return
        reply.value = value
        reply.done.set()

    def fail(self, error: BaseException) -> None:
        """Answer the ask with an error that re-raises in the caller."""
        reply = self._reply
        if reply is None:
            return
        self._mailbox._in_flight.discard(self)
        if reply.done.is_set():
            return
        reply.error = error
        reply.done.set()


class Mailbox:
    """A bounded memory channel of envelopes, owned by one supervised child slot.

    Create one per child (a :class:`ChildSpec` makes its own unless given one) and pass
    ``mailbox.ref`` to whoever must talk to that actor: the reference stays valid across restarts.
    """

    def __init__(self, path: str = "?", size: float = 1000) -> None:
        if not (size == math.inf or (isinstance(size, int) and size >= 0)):
            raise ValueError(f"mailbox size must be an int >= 0 or math.inf, got {size!r}")
        self.path = path
        self.size = size
        self._send, self._receive = trio.open_memory_channel[Envelope](size)
        self._in_flight: set[Envelope] = set()
        self._closed = False
        self.ref = ActorRef(self)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the owning actor's side ---------------------------------------------------------------

    async def receive(self) -> Envelope:
        """Wait for the next envelope; raises ``trio.EndOfChannel`` once closed and drained."""
        envelope = await self._receive.receive()
        self._taken(envelope)
        return envelope

    def receive_nowait(self) -> Envelope:
        """Take the next envelope if there is one, else raise ``trio.WouldBlock`` (no yield)."""
        envelope = self._receive.receive_nowait()
        self._taken(envelope)
        return envelope

    def __aiter__(self) -> Mailbox:
        return self

    async def __anext__(self) -> Envelope:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def _taken(self, envelope: Envelope) -> None:
        if envelope._reply is not None:
            self._in_flight.add(envelope)

    # -- the supervisor's side -----------------------------------------------------------------

    def close(self) -> None:
        """Refuse new messages; what is already queued can still be received."""
        self._closed = True
        self._send.close()

    def fail_in_flight(self, make_error: Callable[[], BaseException]) -> None:
        """Fail every ask taken by the last incarnation and not yet answered."""
        for envelope in list(self._in_flight):
            envelope.fail(make_error())

    def fail_queued(self) -> None:
        """After close: fail every queued ask with ActorStopped and drop queued tells."""
        while True:
            try:
                envelope = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            envelope.fail(ActorStopped(self.path))

    def statistics(self) -> MailboxStatistics:
        """What this mailbox holds now (trio's ``statistics()`` convention: local, no await)."""
        return MailboxStatistics(
            path=self.path,
            queued=self._receive.statistics().current_buffer_used,
            capacity=self.size,
            in_flight=len(self._in_flight),
            closed=self._closed,
        )


@attrs.frozen
class MailboxStatistics:
    """A snapshot of one actor's mailbox, from :meth:`ActorRef.statistics`."""

    path: str
    queued: int  # messages waiting to be taken
    capacity: float  # the mailbox's bound (math.inf: unbounded)
    in_flight: int  # asks the actor has taken and not answered yet
    closed: bool  # the actor stopped for good: sends raise ActorStopped


@attrs.frozen(eq=False, repr=False)
class ActorRef:
    """The handle to send to an actor; it stays valid while the actor restarts."""

    _mailbox: Mailbox

    @property
    def path(self) -> str:
        return self._mailbox.path

    def __repr__(self) -> str:
        return f"<ActorRef {self.path}>"

    def statistics(self) -> MailboxStatistics:
        """The actor's mailbox now: queued messages, its bound, asks in flight."""
        return self._mailbox.statistics()

    async def tell(self, message: Any) -> None:
        """Send without waiting for a reply; waits while the mailbox is full.

        Raises ActorStopped if the actor has stopped for good.
        """
        await self._put(Envelope(message, None, self._mailbox))

    async def _put(self, envelope: Envelope, deadline: float = math.inf) -> None:
        # send_nowait first: trio's send() yields even when there is room, and a yield costs
        # more than most messages' handling. A full mailbox still waits (backpressure), until
        # the ask's deadline if it has one (deadlines.py).
        send = self._mailbox._send
        try:
            try:
                send.send_nowait(envelope)
            except trio.WouldBlock:
                with trio.move_on_at(deadline):
                    await send.send(envelope)
                    return
                raise AskTimedOut(BOUND.get().seconds) from None  # type: ignore[union-attr]
        except trio.ClosedResourceError:
            raise ActorStopped(self.path) from None

    def try_tell(self, message: Any) -> None:
        """Send without waiting at all; raises MailboxFull or ActorStopped instead of blocking."""
        try:
            self._mailbox._send.send_nowait(Envelope(message, None, self._mailbox))
        except trio.WouldBlock:
            raise MailboxFull(self.path) from None
        except trio.ClosedResourceError:
            raise ActorStopped(self.path) from None

    async def ask(self, message: Any) -> Any:
        """Send and wait for the reply; the reply's error, if any, re-raises here.

        Raises ActorCrashed if the actor crashed while holding it, ActorStopped if it stopped
        first. Bound it with a cancel scope (``with trio.fail_after(5): await ref.ask(m)``): an
        ask given up on is marked abandoned, and the actor may still handle the message.
        Inside ``AskDeadlines.bound()`` (deadlines.py) it raises AskTimedOut past its deadline.
        """
        reply = _Reply()
        bound = BOUND.get()
        deadline = math.inf if bound is None else bound.watch(reply)
        try:
            await self._put(Envelope(message, reply, self._mailbox), deadline)
            await reply.done.wait()
        finally:
            if not reply.done.is_set():  # cancelled (a deadline's sweeper marks its own)
                reply.abandoned = True
        if reply.error is not None:
            raise reply.error
        value = reply.value
        if bound is not None:  # the sweeper holds the slot a while yet: not the answer
            reply.value = None
        return value
