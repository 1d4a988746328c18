"""The actor base class and the context each incarnation runs with."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from .mailbox import ActorRef, Mailbox
from .system import System

logger = logging.getLogger(__name__)


@attrs.define(eq=False)
class Context:
    """What one incarnation of an actor knows about its place in the tree.

    ``started()`` tells the supervisor the actor is ready; it waits for that before it starts the
    next sibling. :meth:`Actor.run` calls it for you; a custom ``run`` must call it itself.
    """

    name: str
    path: str
    mailbox: Mailbox
    system: System
    _on_started: Callable[[], None]
    incarnation: int = 0
    is_started: bool = False

    @property
    def ref(self) -> ActorRef:
        return self.mailbox.ref

    def started(self) -> None:
        """Signal readiness (once; later calls do nothing)."""
        if not self.is_started:
            self.is_started = True
            self._on_started()


class Actor:
    """Subclass and implement :meth:`handle`, or override :meth:`run` for a custom loop.

    ``handle`` returns the reply to an ask (ignored for a tell). An exception it raises is a
    crash: the actor's supervisor decides what happens next, and the asker gets ActorCrashed.
    Exceptions listed in ``reply_errors`` are answers instead: they re-raise in the asker and the
    actor carries on (a tell that raises one is logged and dropped).
    """

    reply_errors: ClassVar[tuple[type[Exception], ...]] = ()

    async def run(self, context: Context) -> None:
        """Call :meth:`on_start`, signal readiness, then handle messages until the mailbox ends."""
        await self.on_start(context)
        context.started()
        async for envelope in context.mailbox:
            try:
                result = await self.handle(envelope.message)
            except self.reply_errors as error:
                if not envelope.is_ask:
                    logger.warning(
                        "actor.tell_refused", extra={"path": context.path, "error": repr(error)}
                    )
                envelope.fail(error)
            else:
                envelope.reply(result)

    async def on_start(self, context: Context) -> None:
        """Prepare before the first message; runs at every (re)start. Default: nothing."""

    async def handle(self, message: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement handle() or run()")
