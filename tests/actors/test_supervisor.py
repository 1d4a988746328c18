"""Supervisors: strategies, restart types, intensity, escalation, configuration, events."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from probes import Boom, Probe

from oncue.actors import (
    Actor,
    ActorCrashed,
    ActorStopped,
    ChildSpec,
    ChildState,
    Context,
    EventKind,
    LifecycleEvent,
    Restart,
    Strategy,
    Supervisor,
    SupervisorGaveUp,
    SupervisorRef,
    open_supervisor,
    supervisor_spec,
)


class CrashOnStart(Actor):
    """Crashes in on_start, at every start."""

    async def on_start(self, context: Context) -> None:
        raise Boom(f"{context.path} cannot start")


def probes(log: list[str], *names: str, **options: Any) -> list[ChildSpec]:
    return [ChildSpec(name, lambda: Probe(log), **options) for name in names]


async def send(spec: ChildSpec, message: str) -> None:
    """Tell a child something and wait until the tree has reacted to it."""
    await spec.ref.tell(message)
    await trio.testing.wait_all_tasks_blocked()


def restarts_by_name(children: list[Any]) -> dict[str, int]:
    return {child.name: child.restarts for child in children}


# -- strategies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected_log", "expected_restarts"),
    [
        ("one_for_one", ["stop b", "start b"], {"a": 0, "b": 1, "c": 0}),
        (
            "one_for_all",
            ["stop b", "stop c", "stop a", "start a", "start b", "start c"],
            {"a": 1, "b": 1, "c": 1},
        ),
        ("rest_for_one", ["stop b", "stop c", "start b", "start c"], {"a": 0, "b": 1, "c": 1}),
    ],
)
async def test_strategy_restarts_exactly_the_right_children_in_order(
    strategy: str, expected_log: list[str], expected_restarts: dict[str, int]
) -> None:
    log: list[str] = []
    a, b, c = probes(log, "a", "b", "c")
    events: list[LifecycleEvent] = []
    async with open_supervisor([a, b, c], strategy=strategy, observer=events.append) as root:
        assert log == ["start a", "start b", "start c"]
        del log[:]
        await send(b, "crash")
        assert log == expected_log
        assert restarts_by_name(await root.children()) == expected_restarts
        restarted = [e.path for e in events if e.kind is EventKind.RESTARTED]
        assert restarted == [f"/root/{line[-1]}" for line in expected_log if "start" in line]


async def test_rest_for_one_restarts_everything_when_the_first_child_crashes() -> None:
    log: list[str] = []
    a, b, c = probes(log, "a", "b", "c")
    async with open_supervisor([a, b, c], strategy=Strategy.REST_FOR_ONE) as root:
        del log[:]
        await send(a, "crash")
        assert log == ["stop a", "stop c", "stop b", "start a", "start b", "start c"]
        await send(c, "crash")
        assert log[6:] == ["stop c", "start c"]
        assert restarts_by_name(await root.children()) == {"a": 1, "b": 1, "c": 2}


async def test_siblings_restarted_with_a_crashed_child_keep_their_queued_messages() -> None:
    log: list[str] = []
    a, b = probes(log, "a", "b")
    async with open_supervisor([a, b], strategy="one_for_all"):
        await a.ref.tell("crash")
        assert await b.ref.ask("still there?") == "still there?"
        assert await a.ref.ask("back?") == "back?"


# -- restart types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "message", "restarted"),
    [
        (Restart.PERMANENT, "crash", True),
        (Restart.PERMANENT, "exit", True),
        (Restart.TRANSIENT, "crash", True),
        (Restart.TRANSIENT, "exit", False),
        (Restart.TEMPORARY, "crash", False),
        (Restart.TEMPORARY, "exit", False),
    ],
)
async def test_restart_type_decides_whether_a_child_comes_back(
    restart: Restart, message: str, restarted: bool
) -> None:
    log: list[str] = []
    [child] = probes(log, "child", restart=restart)
    async with open_supervisor([child]) as root:
        await send(child, message)
        children = await root.children()
        if restarted:
            assert log == ["start child", "stop child", "start child"]
            assert [(c.name, c.state, c.restarts) for c in children] == [
                ("child", ChildState.RUNNING, 1)
            ]
            assert await child.ref.ask("ping") == "ping"
        else:
            assert log == ["start child", "stop child"]
            with pytest.raises(ActorStopped):
                await child.ref.ask("ping")
            if restart is Restart.TEMPORARY:
                assert children == []  # a temporary child is forgotten
            else:
                assert [(c.name, c.state) for c in children] == [("child", ChildState.STOPPED)]


async def test_last_error_records_the_crash_and_survives_a_normal_restart() -> None:
    log: list[str] = []
    [child] = probes(log, "child")
    async with open_supervisor([child]) as root:
        await send(child, "crash")
        [info] = await root.children()
        assert isinstance(info.last_error, Boom)
        assert info.path == "/root/child"
        await send(child, "exit")
        [info] = await root.children()
        assert info.restarts == 2
        assert isinstance(info.last_error, Boom)


# -- intensity and escalation ------------------------------------------------------------------


async def test_too_many_restarts_make_the_supervisor_give_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    a, b, c = probes(log, "a", "b", "c")
    events: list[LifecycleEvent] = []

    async def crash_b_three_times() -> None:
        async with open_supervisor(
            [a, b, c], max_restarts=2, within=5, observer=events.append
        ) as root:
            for _ in range(3):
                await send(b, "crash")
            with trio.fail_after(1):
                await root.children()  # the block was cancelled before this answers

    with pytest.raises(SupervisorGaveUp) as info:
        await crash_b_three_times()
    assert info.value.path == "/root"
    assert isinstance(info.value.error, Boom)
    assert "gave up after 2 restarts within 5s" in str(info.value)
    # giving up stops the others in reverse start order
    assert log[-3:] == ["stop b", "stop c", "stop a"]
    assert [(e.kind, e.path) for e in events][-5:] == [
        (EventKind.CRASHED, "/root/b"),
        (EventKind.GAVE_UP, "/root"),
        (EventKind.STOPPED, "/root/c"),
        (EventKind.STOPPED, "/root/b"),
        (EventKind.STOPPED, "/root/a"),
    ]


async def test_restarts_spread_wider_than_the_window_never_give_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    [child] = probes(log, "child")
    async with open_supervisor([child], max_restarts=1, within=5) as root:
        for _ in range(4):
            await send(child, "crash")
            await trio.sleep(5.1)
        [info] = await root.children()
        assert info.restarts == 4


async def test_restarts_inside_the_window_add_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    [child] = probes(log, "child")

    async def crash_twice_within_five_seconds() -> None:
        async with open_supervisor([child], max_restarts=1, within=5):
            await send(child, "crash")
            await trio.sleep(4.9)
            await send(child, "crash")
            with trio.fail_after(1):
                await trio.sleep_forever()

    with pytest.raises(SupervisorGaveUp):
        await crash_twice_within_five_seconds()


async def test_zero_max_restarts_gives_up_at_the_first_exit_even_a_normal_one() -> None:
    log: list[str] = []
    [child] = probes(log, "child")

    async def exit_once() -> None:
        async with open_supervisor([child], max_restarts=0):
            await send(child, "exit")
            raise AssertionError("the block should have been cancelled")

    with pytest.raises(SupervisorGaveUp) as info:
        await exit_once()
    assert info.value.error is None


async def test_escalation_through_two_levels_reaches_the_caller() -> None:
    leaf = ChildSpec("leaf", CrashOnStart)
    mid = supervisor_spec("mid", [leaf], max_restarts=1)
    events: list[LifecycleEvent] = []
    with pytest.raises(SupervisorGaveUp) as info:
        async with open_supervisor([mid], max_restarts=1, observer=events.append):
            await trio.sleep_forever()
    root_gave_up = info.value
    assert root_gave_up.path == "/root"
    mid_gave_up = root_gave_up.error
    assert isinstance(mid_gave_up, SupervisorGaveUp)
    assert mid_gave_up.path == "/root/mid"
    assert isinstance(mid_gave_up.error, Boom)
    assert "/root/mid/leaf cannot start" in str(mid_gave_up.error)
    # each level's events are in order; how the levels interleave is up to the scheduler
    leaf_events = [e.kind for e in events if e.path == "/root/mid/leaf"]
    one_life_of_mid = [
        EventKind.STARTED,
        EventKind.CRASHED,
        EventKind.RESTARTED,
        EventKind.CRASHED,
        EventKind.STOPPED,
    ]
    assert leaf_events == one_life_of_mid * 2
    mid_events = [e.kind for e in events if e.path == "/root/mid"]
    assert mid_events == [
        EventKind.STARTED,
        EventKind.GAVE_UP,
        EventKind.CRASHED,
        EventKind.RESTARTED,
        EventKind.GAVE_UP,
        EventKind.CRASHED,
        EventKind.STOPPED,
    ]
    assert [(e.kind, e.path) for e in events][-2:] == [
        (EventKind.GAVE_UP, "/root"),
        (EventKind.STOPPED, "/root/mid"),
    ]


async def test_a_nested_supervisor_that_gives_up_is_restarted_by_its_parent() -> None:
    log: list[str] = []
    [store] = probes(log, "store")
    [leaf] = probes(log, "leaf")
    mid = supervisor_spec("mid", [leaf], max_restarts=0)
    async with open_supervisor([store, mid], max_restarts=3) as root:
        await leaf.ref.tell("crash")
        # queued behind the crash: answered by the leaf inside mid's next incarnation
        assert await leaf.ref.ask("hello") == "hello"
        assert log == ["start store", "start leaf", "stop leaf", "start leaf"]
        store_info, mid_info = await root.children()
        assert store_info.restarts == 0
        assert mid_info.restarts == 1
        assert isinstance(mid_info.last_error, SupervisorGaveUp)
        [leaf_info] = await SupervisorRef(mid.ref).children()
        assert leaf_info.restarts == 0  # a fresh supervisor has fresh counts


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Supervisor(max_restarts=-1), "max_restarts"),
        (lambda: Supervisor(max_restarts=1.5), "max_restarts"),  # type: ignore[arg-type]
        (lambda: Supervisor(within=0), "within"),
        (lambda: Supervisor(strategy="one_for_some"), "strategy"),
        (lambda: Supervisor(probes([], "a", "a")), "children names"),
        (lambda: ChildSpec("a", Actor, restart="sometimes"), "restart"),
        (lambda: ChildSpec("a", Actor, shutdown=-1), "shutdown"),
        (lambda: ChildSpec("", Actor), "name"),
        (lambda: ChildSpec("a/b", Actor), "name"),
        (lambda: supervisor_spec("mid", [], strategy="all_for_one"), "strategy"),
        (lambda: supervisor_spec("mid", [], max_restarts=-1), "max_restarts"),
    ],
)
def test_invalid_configuration_raises_value_error_naming_the_field(make: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()


async def test_open_supervisor_rejects_a_bad_configuration_before_starting_anything() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="children names"):
        async with open_supervisor(probes(log, "twin", "twin")):
            raise AssertionError("unreachable")
    with pytest.raises(ValueError, match="max_restarts"):
        async with open_supervisor(probes(log, "a"), max_restarts=-3):
            raise AssertionError("unreachable")
    assert log == []


def test_strategy_and_restart_accept_enum_members_and_their_values() -> None:
    assert Supervisor(strategy="rest_for_one").strategy is Strategy.REST_FOR_ONE
    assert ChildSpec("a", Actor, restart="transient").restart is Restart.TRANSIENT


async def test_a_supervisor_refuses_a_message_it_does_not_understand_and_lives_on() -> None:
    async with open_supervisor(probes([], "a")) as root:
        with pytest.raises(ValueError, match="does not understand"):
            await root.ref.ask("hello")
        assert len(await root.children()) == 1


# -- lifecycle events --------------------------------------------------------------------------


async def test_lifecycle_events_reach_the_observer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    [child] = probes(log, "child")
    events: list[LifecycleEvent] = []
    async with open_supervisor([child], observer=events.append):
        await trio.sleep(1)
        await send(child, "crash")
    assert [(e.kind, e.path, e.restarts) for e in events] == [
        (EventKind.STARTED, "/root/child", 0),
        (EventKind.CRASHED, "/root/child", 0),
        (EventKind.RESTARTED, "/root/child", 1),
        (EventKind.STOPPED, "/root/child", 1),
    ]
    crashed = events[1]
    assert isinstance(crashed.error, Boom)
    assert crashed.time == 1
    assert 'raise Boom(f"{context.name} crashed")' in crashed.traceback
    assert events[0].traceback == ""


async def test_lifecycle_events_are_logged_under_the_oncue_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="oncue")
    [child] = probes([], "child")

    async def crash_twice() -> None:
        async with open_supervisor([child], max_restarts=1):
            await send(child, "crash")
            await send(child, "crash")

    with pytest.raises(SupervisorGaveUp):
        await crash_twice()
    records = [r for r in caplog.records if r.name.startswith("oncue")]
    lines = [(r.levelno, r.getMessage(), getattr(r, "path", None)) for r in records]
    assert (logging.DEBUG, "actor.started", "/root/child") in lines
    assert (logging.WARNING, "actor.restarted", "/root/child") in lines
    assert [r.restarts for r in records if r.getMessage() == "actor.restarted"] == [1]
    assert (logging.DEBUG, "actor.stopped", "/root/child") in lines
    crashed = [r for r in records if (r.getMessage(), r.path) == ("actor.crashed", "/root/child")]
    assert len(crashed) == 2
    assert all(r.levelno == logging.ERROR and r.exc_info for r in crashed)
    gave_up = [r for r in records if (r.getMessage(), r.path) == ("actor.gave_up", "/root")]
    assert len(gave_up) == 1
    assert gave_up[0].levelno == logging.ERROR


async def test_an_observer_that_raises_is_logged_and_the_tree_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def observer(event: LifecycleEvent) -> None:
        raise RuntimeError("observer bug")

    [child] = probes([], "child")
    async with open_supervisor([child], observer=observer):
        await send(child, "crash")
        assert await child.ref.ask("ping") == "ping"
    failures = [r for r in caplog.records if "observer_failed" in r.getMessage()]
    assert failures
    assert failures[0].exc_info is not None


async def test_a_crash_while_holding_an_ask_fails_it_with_actor_crashed() -> None:
    [child] = probes([], "child")
    async with open_supervisor([child]):
        await child.ref.tell("crash")
        assert await child.ref.ask("ping") == "ping"
        with pytest.raises(ActorCrashed):
            await child.ref.ask("crash")
