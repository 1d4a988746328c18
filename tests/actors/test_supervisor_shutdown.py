"""Supervisors: ordered, bounded shutdown (reverse start order, grace, then cancel)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from oncue.actors import (
    Actor,
    ActorStopped,
    ChildSpec,
    Context,
    SupervisorGaveUp,
    SupervisorRef,
    open_supervisor,
    supervisor_spec,
)


class Boom(Exception):
    pass


class Worker(Actor):
    """Each message takes ``seconds`` to handle; logs starts, handled messages and stops."""

    def __init__(self, log: list[Any], seconds: float = 0) -> None:
        self.log = log
        self.seconds = seconds

    async def run(self, context: Context) -> None:
        self.name = context.name
        self.log.append(("start", context.name))
        try:
            await super().run(context)
        finally:
            self.log.append(("stop", context.name, trio.current_time()))

    async def handle(self, message: Any) -> Any:
        if message == "crash":
            raise Boom(self.name)
        await trio.sleep(self.seconds)
        self.log.append(("handled", self.name, message))
        return message


class Deaf(Worker):
    """Never reads its mailbox: only cancellation stops it."""

    async def run(self, context: Context) -> None:
        self.log.append(("start", context.name))
        context.started()
        try:
            await trio.sleep_forever()
        finally:
            self.log.append(("stop", context.name, trio.current_time()))


def stops(log: list[Any]) -> list[Any]:
    return [entry[1:] for entry in log if entry[0] == "stop"]


async def test_children_stop_in_reverse_start_order() -> None:
    log: list[Any] = []
    mid = supervisor_spec("mid", [ChildSpec(name, lambda: Worker(log)) for name in ("x", "y")])
    children = [ChildSpec("a", lambda: Worker(log)), mid, ChildSpec("b", lambda: Worker(log))]
    async with open_supervisor(children):
        assert log == [("start", "a"), ("start", "x"), ("start", "y"), ("start", "b")]
    assert [name for name, _ in stops(log)] == ["b", "y", "x", "a"]


async def test_a_child_ignoring_its_closed_mailbox_is_cancelled_after_its_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    async with open_supervisor([ChildSpec("deaf", lambda: Deaf(log), shutdown=3)]):
        pass
    assert stops(log) == [("deaf", 3)]
    assert trio.current_time() == 3


async def test_graces_run_one_after_another_in_reverse_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    children = [
        ChildSpec("first", lambda: Deaf(log), shutdown=1),
        ChildSpec("second", lambda: Deaf(log), shutdown=2),
    ]
    async with open_supervisor(children):
        pass
    assert stops(log) == [("second", 2), ("first", 3)]


async def test_a_draining_child_finishes_its_queued_messages_within_its_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    spec = ChildSpec("worker", lambda: Worker(log, seconds=1), shutdown=10)
    async with open_supervisor([spec]):
        for n in range(3):
            await spec.ref.tell(n)
    handled = [entry[2] for entry in log if entry[0] == "handled"]
    assert handled == [0, 1, 2]
    assert stops(log) == [("worker", 3)]  # stopped when its mailbox ran dry, not at the grace


async def test_when_the_grace_runs_out_the_held_and_queued_asks_fail_with_actor_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    spec = ChildSpec("worker", lambda: Worker(log, seconds=1), shutdown=2.5)
    outcomes: list[Any] = []

    async def ask(n: int) -> None:
        try:
            outcomes.append(await spec.ref.ask(n))
        except ActorStopped as error:
            outcomes.append(error)

    async with trio.open_nursery() as nursery, open_supervisor([spec]):
        for n in range(5):
            nursery.start_soon(ask, n)
        await trio.testing.wait_all_tasks_blocked()
    assert trio.current_time() == 2.5
    answered = [outcome for outcome in outcomes if not isinstance(outcome, ActorStopped)]
    assert len(answered) == 2
    assert len(outcomes) == 5
    assert stops(log) == [("worker", 2.5)]


async def test_giving_up_cancels_the_children_at_once_without_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    deaf = ChildSpec("deaf", lambda: Deaf(log), shutdown=100)
    crasher = ChildSpec("crasher", lambda: Worker(log))

    async def crash() -> None:
        async with open_supervisor([deaf, crasher], max_restarts=0):
            await crasher.ref.tell("crash")
            await trio.sleep_forever()

    with pytest.raises(SupervisorGaveUp):
        await crash()
    assert stops(log) == [("crasher", 0), ("deaf", 0)]


async def test_stopping_a_nested_supervisor_stops_its_children_for_good() -> None:
    log: list[Any] = []
    x, y = (ChildSpec(name, lambda: Worker(log)) for name in ("x", "y"))
    mid = supervisor_spec("mid", [x, y])
    async with open_supervisor([mid]) as root:
        await root.stop_child("mid")
        assert [name for name, _ in stops(log)] == ["y", "x"]
        for spec in (x, y, mid):
            with pytest.raises(ActorStopped):
                await spec.ref.ask("anyone?")


async def test_children_of_a_nested_supervisor_whose_grace_ran_out_are_stopped_for_good(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    x = ChildSpec("x", lambda: Worker(log))
    y = ChildSpec("y", lambda: Deaf(log), shutdown=10)
    mid = supervisor_spec("mid", [x, y], shutdown=1)
    async with open_supervisor([mid]) as root:
        await root.stop_child("mid")
        assert trio.current_time() == 1
        for spec in (x, y):
            with trio.fail_after(1), pytest.raises(ActorStopped):
                await spec.ref.ask("anyone?")


async def test_children_of_a_temporary_nested_supervisor_that_gave_up_are_stopped_for_good(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    leaf = ChildSpec("leaf", lambda: Worker(log))
    mid = supervisor_spec("mid", [leaf], max_restarts=0, restart="temporary")
    async with open_supervisor([mid]) as root:
        await leaf.ref.tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await root.children() == []
        with trio.fail_after(1), pytest.raises(ActorStopped):
            await leaf.ref.ask("anyone?")
        with pytest.raises(ActorStopped):
            await SupervisorRef(mid.ref).children()


async def test_an_ask_held_by_a_root_that_gives_up_fails_instead_of_hanging(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleanup_may_finish = trio.Event()

    class SlowToStop(Actor):
        async def run(self, context: Context) -> None:
            context.started()
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await cleanup_may_finish.wait()

    log: list[Any] = []
    crasher = ChildSpec("crasher", lambda: Worker(log))
    outcome: list[BaseException] = []

    async def ask_from_outside_the_block(root: SupervisorRef) -> None:
        with trio.fail_after(10), pytest.raises(ActorStopped) as info:
            await root.children()
        outcome.append(info.value)

    async def crash_while_an_ask_is_held(outside: trio.Nursery) -> None:
        async with open_supervisor(
            [ChildSpec("slow", SlowToStop), crasher], max_restarts=0
        ) as root:
            await crasher.ref.tell("crash")
            await trio.testing.wait_all_tasks_blocked()  # the root is stopping "slow"
            outside.start_soon(ask_from_outside_the_block, root)
            await trio.testing.wait_all_tasks_blocked()  # the root holds the ask
            cleanup_may_finish.set()
            await trio.sleep_forever()

    async with trio.open_nursery() as outside:
        with pytest.raises(SupervisorGaveUp):
            await crash_while_an_ask_is_held(outside)
    [stopped] = outcome
    assert isinstance(stopped, ActorStopped)
    assert stopped.path == "/root"
