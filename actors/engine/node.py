"""The node actor: what an engine on a shared store does for its place among the others.

It runs only with a shared backend (PostgreSQL, Redis; see backends/base.py), as the last
child of the root supervisor, and changes no task itself: on timers it asks the store to renew
this engine's leases and to reap the leases of engines that stopped renewing theirs (so a task
ten times longer than its lease still runs once, and a dead engine's tasks run elsewhere), and
it turns the backend's notices into messages: ``ready`` wakes the scheduler to claim,
``finished`` and ``cancelled`` go to the store.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ..backends import Notice, SharedBackend
from ..messages import Reap, RemoteCancelled, RemoteFinished, Renew, Wake
from ..runtime.actor import Actor, Context
from ..runtime.mailbox import ActorRef

logger = logging.getLogger(__name__)


class Node(Actor):
    def __init__(
        self, backend: SharedBackend, store: ActorRef, scheduler: ActorRef, lease: float
    ) -> None:
        self._backend = backend
        self._store = store
        self._scheduler = scheduler
        self._every = lease / 3  # renew (and reap) three times per shortest lease
        self._missed = False  # notices were dropped: recheck every waiter

    async def run(self, context: Context) -> None:
        send, receive = trio.open_memory_channel[Any](1000)

        def deliver(notice: Notice) -> None:
            try:
                send.send_nowait(notice)
            except trio.WouldBlock:  # a flood: one recheck of everything covers what we drop
                self._missed = True

        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._backend.listen, deliver)
            nursery.start_soon(self._forward, receive)
            nursery.start_soon(self._tick)
            context.started()
            async for _ in context.mailbox:
                pass  # nobody writes to us; the mailbox ends when we are stopped
            nursery.cancel_scope.cancel()

    async def _tick(self) -> None:
        while True:
            await trio.sleep(self._every)
            await self._store.tell(Renew())
            await self._store.tell(Reap())

    async def _forward(self, notices: trio.MemoryReceiveChannel[Notice]) -> None:
        async for notice in notices:
            if self._missed:
                self._missed = False
                logger.warning("node.notices_dropped", extra={"action": "recheck_every_waiter"})
                notice = Notice("listening")
            if notice.kind == "ready":
                self._scheduler.try_tell(Wake())  # unbounded mailbox
            elif notice.kind == "finished":
                await self._store.tell(RemoteFinished(notice.ids))
            elif notice.kind == "cancelled":
                await self._store.tell(RemoteCancelled(notice.ids))
            elif notice.kind == "listening":  # what happened while we did not listen is unknown
                await self._store.tell(RemoteFinished(None))
                self._scheduler.try_tell(Wake())
