"""A whole supervision tree: open_supervisor() and the handle on a supervisor."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import trio

from .actor import Context
from .events import Observer, make_emitter
from .mailbox import ActorRef
from .spec import ChildInfo, ChildSpec, Restart, StartChild, StopChild, Strategy, WhichChildren
from .supervisor import Supervisor
from .system import System


def supervisor_spec(
    name: str,
    children: Sequence[ChildSpec],
    *,
    strategy: Strategy | str = Strategy.ONE_FOR_ONE,
    max_restarts: int = 3,
    within: float = 5.0,
    restart: Restart | str = Restart.PERMANENT,
    shutdown: float = math.inf,
) -> ChildSpec:
    """A ChildSpec for a nested supervisor; its grace defaults to as long as its children need."""
    Supervisor(children, strategy=strategy, max_restarts=max_restarts, within=within)  # validate

    def factory() -> Supervisor:
        return Supervisor(children, strategy=strategy, max_restarts=max_restarts, within=within)

    return ChildSpec(name, factory, restart=restart, shutdown=shutdown, mailbox_size=math.inf)


@attrs.frozen
class SupervisorRef:
    """A handle on a running supervisor: add, stop and list its children."""

    ref: ActorRef

    async def start_child(self, spec: ChildSpec) -> ActorRef:
        """Start a new child; raises ValueError if the name is taken."""
        result: ActorRef = await self.ref.ask(StartChild(spec))
        return result

    async def stop_child(self, name: str) -> None:
        """Stop a child gracefully and forget it; raises ChildNotFound for an unknown name."""
        await self.ref.ask(StopChild(name))

    async def children(self) -> list[ChildInfo]:
        result: list[ChildInfo] = await self.ref.ask(WhichChildren())
        return result


@asynccontextmanager
async def open_supervisor(
    children: Sequence[ChildSpec],
    *,
    name: str = "root",
    strategy: Strategy | str = Strategy.ONE_FOR_ONE,
    max_restarts: int = 3,
    within: float = 5.0,
    observer: Observer | None = None,
    shutdown: float = math.inf,
) -> AsyncIterator[SupervisorRef]:
    """Run a supervision tree for the duration of the block.

    Returns once every child has started. Leaving the block normally stops the tree gracefully,
    children in reverse start order, each within its grace, and all of it within ``shutdown``
    seconds, after which what is left is cancelled. Leaving it with an exception cancels the
    tree at once. If the root supervisor gives up, the block is cancelled and SupervisorGaveUp
    is raised. ``observer`` sees every lifecycle event of the whole tree (it must not block).
    """
    spec = supervisor_spec(
        name, children, strategy=strategy, max_restarts=max_restarts, within=within
    )
    system = System(make_emitter(observer))
    system.adopt(spec.mailbox, "")
    spec.mailbox.path = f"/{name}"
    try:
        async with trio.open_nursery() as nursery:
            root_done = trio.Event()
            await nursery.start(_run_root, spec, system, root_done)
            try:
                yield SupervisorRef(spec.ref)
            finally:
                spec.mailbox.close()
            with trio.move_on_after(shutdown):
                await root_done.wait()
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise
    finally:
        system.close_all()


async def _run_root(
    spec: ChildSpec, system: System, done: trio.Event, *, task_status: trio.TaskStatus[None]
) -> None:
    context = Context(spec.name, spec.mailbox.path, spec.mailbox, system, task_status.started)
    try:
        await spec.factory().run(context)
    finally:
        done.set()


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for error in group.exceptions:
        leaves.extend(_leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    return leaves
