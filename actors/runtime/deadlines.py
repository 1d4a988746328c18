"""Asks bounded in time without a cancel scope each: one sweeper fails those past their deadline.

A caller that must not wait on an actor for ever (an HTTP route answering 503 when the store
does not answer) would open a cancel scope with a deadline around each call: ~5 µs of trio's
bookkeeping here, a tenth of what the app spends on a submit. ``AskDeadlines`` does the same
for asks: inside ``with deadlines.bound():`` every ask (``ActorRef.ask``) registers its reply
slot (a deque append), and one sweeper task fails the slots still unanswered at their deadline
with :class:`AskTimedOut`, marking them abandoned as a cancelled ask is. One bound's seconds
are fixed, so its deadlines come in order and the deque's head is always the next one due.

Only asks are bounded: code inside the block that waits on something else is not (an ask that
waits for room in a full mailbox is, by a cancel scope of its own: the rare case).
"""

from __future__ import annotations

from collections import deque
from contextvars import ContextVar
from types import TracebackType
from typing import Protocol

import trio

from ..errors import ActorError

SWEEP_EVERY = 1.0  # seconds: how often the sweeper forgets the answered asks at the front


class _Reply(Protocol):
    """An ask's reply slot (mailbox.py), as the sweeper sees it."""

    done: trio.Event
    error: BaseException | None
    abandoned: bool


class AskTimedOut(ActorError, trio.TooSlowError):
    """An ask inside ``AskDeadlines.bound()`` got no answer within its seconds; the actor
    may still handle the message (as after a cancelled ask)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g}s")
        self.seconds = seconds


BOUND: ContextVar[AskDeadlines | None] = ContextVar("oncue_ask_deadlines", default=None)


class AskDeadlines:
    """The deadlines of the asks made inside ``bound()``, ``seconds`` after each; ``run`` is
    the sweeper (start it in a nursery that outlives the asks)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._due: deque[tuple[float, _Reply]] = deque()
        self._woken = trio.Event()  # an ask came while none was due
        self.running = False  # the sweeper runs: bound() may be used

    def bound(self) -> Bound:
        """A ``with`` block whose asks fail with AskTimedOut past ``seconds``."""
        return Bound(self)

    def watch(self, reply: _Reply) -> float:
        """Note an ask's reply slot; its deadline."""
        deadline = trio.current_time() + self.seconds
        due = self._due
        if not due:
            self._woken.set()  # the sweeper may be waiting for one
        due.append((deadline, reply))
        return deadline

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fail each ask still unanswered at its deadline; forget answered ones as it goes.

        It looks at the front of the queue only: after ``seconds`` is lowered, an ask behind
        one made before the change waits for that one's deadline at most. When it stops (the
        app's lifespan ends), every ask still waiting fails at once: none is left unbounded."""
        self.running = True
        task_status.started()
        due = self._due
        try:
            await self._sweep(due)
        finally:
            self.running = False
            while due:
                _expire(due.popleft()[1], self.seconds)

    async def _sweep(self, due: deque[tuple[float, _Reply]]) -> None:
        while True:
            now = trio.current_time()
            while due and (due[0][1].done.is_set() or due[0][0] <= now):
                _expire(due.popleft()[1], self.seconds)
            if not due:
                await self._woken.wait()
                self._woken = trio.Event()
            else:
                await trio.sleep_until(min(due[0][0], now + SWEEP_EVERY))


def _expire(reply: _Reply, seconds: float) -> None:
    """Fail an ask still unanswered: timed out, abandoned (the actor may drop it)."""
    if not reply.done.is_set():
        reply.error = AskTimedOut(seconds)
        reply.abandoned = True
        reply.done.set()


class Bound:
    """``AskDeadlines.bound()``'s block: sets which deadlines the asks inside it join."""

    __slots__ = ("_deadlines", "_token")

    def __init__(self, deadlines: AskDeadlines) -> None:
        if not deadlines.running:
            raise RuntimeError("AskDeadlines.run() is not running: start it in a nursery first")
        self._deadlines = deadlines

    def __enter__(self) -> None:
        self._token = BOUND.set(self._deadlines)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        BOUND.reset(self._token)
