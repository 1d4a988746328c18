"""Supervisors: OTP's restart strategies, restart intensity and ordered shutdown, on trio.

A supervisor is an actor whose children run in its own nursery, one task per child, each under
its own cancel scope. When a child exits, the supervisor decides by the child's restart type
whether to restart it, and by its strategy which siblings restart with it. Too many restarts
within the intensity window and it gives up: it stops every child in reverse start order and
raises :class:`SupervisorGaveUp`, which its own parent treats as a crash of one child.

Mailboxes live in the child specs, so they survive restarts of the child and of its supervisor;
a mailbox closes only when its child stops for good (and with it every mailbox below it), or when
the whole tree exits. A static child stopped for good is not started again by a restarted
supervisor; dynamic children end with the supervisor incarnation that started them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from ..errors import ActorCrashed, ActorStopped, ChildNotFound, SupervisorGaveUp
from .actor import Actor, Context
from .events import EventKind, LifecycleEvent
from .mailbox import ActorRef, Envelope
from .restarts import Intensity, restart_group, should_restart
from .spec import (
    ChildInfo,
    ChildSpec,
    ChildState,
    Restart,
    StartChild,
    StopChild,
    Strategy,
    WhichChildren,
    enum_converter,
)


@attrs.define(eq=False)
class _Slot:
    spec: ChildSpec
    path: str
    state: ChildState = ChildState.STARTING
    restarts: int = 0
    incarnation: int = 0
    last_error: BaseException | None = None
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)


@attrs.frozen
class _ChildExited:
    slot: _Slot
    incarnation: int
    error: Exception | None


_MAILBOX_ENDED = object()


class Supervisor(Actor):
    """An actor that starts, watches and restarts its children.

    Raises ValueError at construction for a bad configuration, naming the field.
    """

    reply_errors = (ValueError, LookupError)

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        within: float = 5.0,
    ) -> None:
        self.strategy = enum_converter(Strategy, "strategy")(strategy)
        if not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
        if not within > 0:
            raise ValueError(f"within must be a number of seconds > 0, got {within!r}")
        names = [spec.name for spec in children]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"children names must be unique, got duplicates {duplicates}")
        self.max_restarts = max_restarts
        self.within = within
        self._specs = list(children)
        self._slots: list[_Slot] = []
        self._intensity = Intensity(max_restarts, within)

    async def run(self, context: Context) -> None:
        self._context = context
        inbox_send, inbox = trio.open_memory_channel[Any](math.inf)
        self._exits = inbox_send
        gave_up: SupervisorGaveUp | None = None
        try:
            async with trio.open_nursery() as nursery:
                for spec in self._specs:
                    if not spec.mailbox.closed:  # a child stopped for good stays stopped
                        await self._start(nursery, self._add_slot(spec))
                context.started()
                nursery.start_soon(self._forward_commands, inbox_send)
                gave_up = await self._serve(nursery, inbox)
                nursery.cancel_scope.cancel()
        finally:
            self._stop_dynamic_for_good()
        if gave_up is not None:
            raise gave_up

    # -- the loop --------------------------------------------------------------------------------

    async def _forward_commands(self, inbox: trio.MemorySendChannel[Any]) -> None:
        async for envelope in self._context.mailbox:
            inbox.send_nowait(envelope)
        inbox.send_nowait(_MAILBOX_ENDED)

    async def _serve(
        self, nursery: trio.Nursery, inbox: trio.MemoryReceiveChannel[Any]
    ) -> SupervisorGaveUp | None:
        async for item in inbox:
            if isinstance(item, _ChildExited):
                gave_up = await self._child_exited(nursery, item)
                if gave_up is not None:
                    await self._stop_all(graceful=False)
                    return gave_up
            elif isinstance(item, Envelope):
                await self._command(nursery, item)
            else:
                await self._stop_all(graceful=True)
                return None
        raise AssertionError("unreachable: the supervisor holds its own inbox open")

    async def _command(self, nursery: trio.Nursery, envelope: Envelope) -> None:
        message = envelope.message
        try:
            if isinstance(message, StartChild):
                envelope.reply(await self._start_dynamic(nursery, message.spec))
            elif isinstance(message, StopChild):
                slot = self._find(message.name)
                await self._stop(slot, graceful=True)
                self._slots.remove(slot)
                envelope.reply(None)
            elif isinstance(message, WhichChildren):
                envelope.reply([self._info(slot) for slot in self._slots])
            else:
                raise ValueError(f"a supervisor does not understand {message!r}")
        except (ValueError, LookupError) as error:
            envelope.fail(error)

    # -- starting and stopping children ------------------------------------------------------------

    def _add_slot(self, spec: ChildSpec) -> _Slot:
        slot = _Slot(spec, path=f"{self._context.path}/{spec.name}")
        spec.mailbox.path = slot.path
        self._context.system.adopt(spec.mailbox, self._context.path)
        self._slots.append(slot)
        return slot

    async def _start_dynamic(self, nursery: trio.Nursery, spec: ChildSpec) -> ActorRef:
        if any(slot.spec.name == spec.name for slot in self._slots):
            raise ValueError(f"supervisor {self._context.path} already has a child {spec.name!r}")
        if spec.mailbox.closed:
            raise ValueError(f"child {spec.name!r} was stopped for good; make a new ChildSpec")
        await self._start(nursery, self._add_slot(spec))
        return spec.ref

    async def _start(self, nursery: trio.Nursery, slot: _Slot) -> None:
        slot.incarnation += 1
        slot.state = ChildState.STARTING
        slot.done = trio.Event()
        slot.scope = trio.CancelScope()
        await nursery.start(self._run_child, slot, slot.incarnation)
        if slot.state is ChildState.STARTING:
            slot.state = ChildState.RUNNING
        kind = EventKind.RESTARTED if slot.restarts else EventKind.STARTED
        self._emit(kind, slot)

    async def _run_child(
        self, slot: _Slot, incarnation: int, *, task_status: trio.TaskStatus[None]
    ) -> None:
        mailbox = slot.spec.mailbox
        context = Context(
            name=slot.spec.name,
            path=slot.path,
            mailbox=mailbox,
            system=self._context.system,
            on_started=task_status.started,
            incarnation=incarnation,
        )
        error: Exception | None = None
        try:
            with slot.scope:
                try:
                    await slot.spec.factory().run(context)
                except* Exception as group:  # a crash: the supervisor decides what next
                    # A crash can arrive grouped with the Cancelled of a stop we ordered;
                    # the Cancelled part goes on to our scope, the rest is the error.
                    error = group.exceptions[0] if len(group.exceptions) == 1 else group
        finally:
            if error is None:
                mailbox.fail_in_flight(lambda: ActorStopped(slot.path, "it stopped first"))
            else:
                mailbox.fail_in_flight(lambda: ActorCrashed(slot.path, error))
            context.started()
            slot.done.set()
        self._exits.send_nowait(_ChildExited(slot, incarnation, error))

    async def _stop(self, slot: _Slot, *, graceful: bool) -> None:
        """Stop one child: gracefully (close its mailbox, wait its grace, cancel) or at once."""
        if slot.state is ChildState.STOPPED:
            return
        slot.state = ChildState.STOPPING
        if graceful:
            slot.spec.mailbox.close()
            with trio.move_on_after(slot.spec.shutdown):
                await slot.done.wait()
        slot.scope.cancel()
        await slot.done.wait()
        if graceful:
            self._context.system.stop_for_good(slot.spec.mailbox, self._context.path)
        slot.state = ChildState.STOPPED
        self._emit(EventKind.STOPPED, slot)

    async def _stop_all(self, *, graceful: bool) -> None:
        for slot in reversed(self._slots):
            await self._stop(slot, graceful=graceful)

    def _stop_dynamic_for_good(self) -> None:
        """This incarnation is over: a restart starts only the static children again."""
        static = {id(spec) for spec in self._specs}
        for slot in self._slots:
            if id(slot.spec) not in static:
                self._context.system.stop_for_good(slot.spec.mailbox, self._context.path)

    # -- deciding restarts -----------------------------------------------------------------------

    async def _child_exited(
        self, nursery: trio.Nursery, exited: _ChildExited
    ) -> SupervisorGaveUp | None:
        slot = exited.slot
        if slot.incarnation != exited.incarnation or slot.state in (
            ChildState.STOPPING,
            ChildState.STOPPED,
            ChildState.RESTARTING,
        ):
            return None  # we stopped it ourselves, or it was restarted since
        crashed = exited.error is not None
        if crashed:
            slot.last_error = exited.error
            self._emit(EventKind.CRASHED, slot, exited.error)
        if not should_restart(slot.spec.restart, crashed=crashed):
            self._retire(slot)
            return None
        # A restart the child asked for (`deliberate`) is not a crash: it never counts.
        deliberate = getattr(exited.error, "deliberate", False)
        if not deliberate and self._intensity.exceeded(trio.current_time()):
            gave_up = SupervisorGaveUp(
                self._context.path, self._intensity.count - 1, self.within, exited.error
            )
            self._context.system.emit(
                LifecycleEvent(EventKind.GAVE_UP, self._context.path, error=gave_up)
            )
            return gave_up
        await self._restart(nursery, slot)
        return None

    def _retire(self, slot: _Slot) -> None:
        slot.state = ChildState.STOPPED
        self._context.system.stop_for_good(slot.spec.mailbox, self._context.path)
        self._emit(EventKind.STOPPED, slot)
        if slot.spec.restart is Restart.TEMPORARY:
            self._slots.remove(slot)

    async def _restart(self, nursery: trio.Nursery, failed: _Slot) -> None:
        running = [s for s in self._slots if s.state is ChildState.RUNNING or s is failed]
        group = restart_group(self.strategy, running, failed)
        for slot in reversed(group):
            slot.state = ChildState.RESTARTING
            slot.scope.cancel()
            await slot.done.wait()
        for slot in group:
            slot.restarts += 1
            await self._start(nursery, slot)

    # -- reporting -------------------------------------------------------------------------------

    def _find(self, name: str) -> _Slot:
        for slot in self._slots:
            if slot.spec.name == name:
                return slot
        raise ChildNotFound(self._context.path, name)

    @staticmethod
    def _info(slot: _Slot) -> ChildInfo:
        return ChildInfo(slot.spec.name, slot.path, slot.state, slot.restarts, slot.last_error)

    def _emit(self, kind: EventKind, slot: _Slot, error: BaseException | None = None) -> None:
        self._context.system.emit(LifecycleEvent(kind, slot.path, slot.restarts, error))
