"""A whole supervision tree: open_supervisor(), the handle on a supervisor, and what the tree
shares (its event emitter and every mailbox it has used)."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import attrs
import trio

from .actor import Context
from .errors import ActorStopped
from .events import LifecycleEvent, Observer, make_emitter
from .mailbox import ActorRef, Mailbox
from .spec import ChildInfo, ChildSpec, Restart, StartChild, StopChild, Strategy, WhichChildren
from .supervisor import Supervisor


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


@attrs.define(eq=False)
class System:
    """What a whole tree shares: its event emitter and the mailboxes of its live actors.

    Mailboxes are filed under the path of the supervisor that adopted them, so an actor stopped
    for good takes the mailboxes of its whole subtree with it.
    """

    emit: Callable[[LifecycleEvent], None]
    _mailboxes: dict[str, set[Mailbox]] = attrs.field(factory=dict)  # by supervisor path

    def adopt(self, mailbox: Mailbox, supervisor: str) -> None:
        self._mailboxes.setdefault(supervisor, set()).add(mailbox)

    def stop_for_good(self, mailbox: Mailbox, supervisor: str) -> None:
        """Close ``mailbox`` and every mailbox below it; their queued asks fail ActorStopped."""
        self._mailboxes.get(supervisor, set()).discard(mailbox)
        mailbox.close()
        mailbox.fail_queued()
        for child in self._mailboxes.pop(mailbox.path, set()):
            self.stop_for_good(child, mailbox.path)

    def close_all(self) -> None:
        """When the tree exits: nothing will read these mailboxes again, nor answer what they hold.

        Each child failed its held asks when it exited; the root's are failed here, after the
        block was cancelled, so code inside the block sees the cancellation, not an error.
        """
        for mailboxes in self._mailboxes.values():
            for mailbox in mailboxes:
                mailbox.close()
                mailbox.fail_in_flight(
                    functools.partial(ActorStopped, mailbox.path, "it stopped first")
                )
                mailbox.fail_queued()
